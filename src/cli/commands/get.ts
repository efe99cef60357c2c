import type { Command } from 'commander';
import { stringify } from 'yaml';

import type { KindDefinition, ResourceObject } from '../../api/kinds/types.js';
import { UsageError } from '../../util/errors.js';
import { formatAge } from '../../util/quantity.js';
import { addClientOptions, clientFrom, collectionPath, KindResolver, objectPath, ref, table } from '../common.js';

interface GetOpts {
  output?: string;
  server?: string;
  token?: string;
  namespace?: string;
  allNamespaces?: boolean;
  selector?: string;
  watch?: boolean;
}

/** `skiff get KIND [NAME]`: kubectl-like tables, or the objects as YAML/JSON. */
export function register(program: Command): void {
  addClientOptions(
    program
      .command('get')
      .description('list resources of a kind, or show one')
      .argument('<kind>', 'resource type: functions, routes, services, events, namespaces (or their short names)')
      .argument('[name]', 'one object by name')
      .option('-o, --output <format>', 'wide, yaml or json')
      .option('-A, --all-namespaces', 'list across all namespaces')
      .option('-l, --selector <labels>', 'label selector, e.g. app=web,tier!=db')
      .option('-w, --watch', 'after listing, print changes as they happen'),
  ).action(async (kind: string, name: string | undefined, opts: GetOpts) => {
    const fmt = opts.output;
    if (fmt && !['wide', 'yaml', 'json', 'name'].includes(fmt)) throw new UsageError(`unknown output format "${fmt}": use wide, yaml, json or name`);
    const client = clientFrom(opts);
    const def = await new KindResolver(client).resolve(kind);
    const ns = opts.allNamespaces ? undefined : opts.namespace;
    if (name) {
      const obj = (await client.request<ResourceObject>('GET', objectPath(def, ns ?? 'default', name))).body;
      process.stdout.write(render(def, [obj], fmt, false, true));
      return;
    }
    const q = new URLSearchParams();
    if (opts.selector) q.set('labelSelector', opts.selector);
    const list = (await client.request<{ items: ResourceObject[]; metadata: { resourceVersion: string } }>('GET', `${collectionPath(def, ns)}${q.size ? `?${q}` : ''}`)).body;
    if (fmt === 'json' || fmt === 'yaml') {
      const wrapped = { apiVersion: 'v1', kind: 'List', items: list.items };
      process.stdout.write(fmt === 'json' ? JSON.stringify(wrapped, null, 2) + '\n' : stringify(wrapped));
    } else if (list.items.length === 0 && !opts.watch) {
      process.stderr.write(ns ? `No resources found in ${ns} namespace.\n` : 'No resources found.\n');
    } else if (list.items.length) {
      process.stdout.write(render(def, list.items, fmt, !ns && def.namespaced, true));
    }
    if (opts.watch) {
      q.set('watch', 'true');
      q.set('resourceVersion', list.metadata.resourceVersion);
      const res = await client.stream('GET', `${collectionPath(def, ns)}?${q}`);
      const decoder = new TextDecoder();
      let buf = '';
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buf += decoder.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const ev = JSON.parse(buf.slice(0, nl)) as { type: string; object: ResourceObject };
          buf = buf.slice(nl + 1);
          process.stdout.write(render(def, [ev.object], fmt, !ns && def.namespaced, false));
        }
      }
    }
  });
}

function render(def: KindDefinition, items: ResourceObject[], fmt: string | undefined, withNs: boolean, headers: boolean): string {
  if (fmt === 'json') return items.map((o) => JSON.stringify(o, null, 2)).join('\n') + '\n';
  if (fmt === 'yaml') return items.map((o) => stringify(o)).join('---\n');
  if (fmt === 'name') return items.map((o) => `${ref(def, o.metadata.name)}\n`).join('');
  const cols = def.printerColumns.filter((c) => !c.wide || fmt === 'wide');
  // Kinds learnt from discovery without columns still show their age.
  if (!cols.length) cols.push({ name: 'AGE', value: (o) => formatAge(o.metadata.creationTimestamp) });
  const head = [...(withNs ? ['NAMESPACE'] : []), 'NAME', ...cols.map((c) => c.name)];
  const rows = items.map((o) => [...(withNs ? [o.metadata.namespace ?? ''] : []), o.metadata.name, ...cols.map((c) => c.value(o))]);
  const out = table(head, rows);
  return headers ? out : out.slice(out.indexOf('\n') + 1);
}

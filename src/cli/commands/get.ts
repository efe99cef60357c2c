import type { Command } from 'commander';
import { stringify } from 'yaml';

import type { KindDefinition, ResourceObject } from '../../api/kinds/types.js';
import type { Table } from '../../api/table.js';
import { UsageError } from '../../util/errors.js';
import { type ApiClient,ApiRequestError } from '../client.js';
import { addClientOptions, clientFrom, collectionPath, KindResolver, objectPath, ref, table } from '../common.js';

interface GetOpts {
  output?: string;
  server?: string;
  token?: string;
  namespace?: string;
  allNamespaces?: boolean;
  selector?: string;
  fieldSelector?: string;
  chunkSize?: string;
  watch?: boolean;
}

/** What `skiff get` asks for to print a table: the server's Table, as kubectl asks for it. */
export const TABLE_ACCEPT = 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json';

/** `skiff get KIND [NAME]`: the server's Table printed as kubectl prints it, or the objects as YAML/JSON. */
export function register(program: Command): void {
  addClientOptions(
    program
      .command('get')
      .description('list resources of a kind, or show one')
      .argument('<kind>', 'resource type: functions, routes, services, events, namespaces (or their short names)')
      .argument('[name]', 'one object by name')
      .option('-o, --output <format>', 'wide, yaml, json or name')
      .option('-A, --all-namespaces', 'list across all namespaces')
      .option('-l, --selector <labels>', 'label selector, e.g. app=web,tier!=db')
      .option('--field-selector <fields>', 'field selector, e.g. metadata.name=web (Events: involvedObject.name=web)')
      .option('--chunk-size <n>', 'list this many objects per request (0: all at once)', '500')
      .option('-w, --watch', 'after listing, print changes as they happen'),
  ).action(async (kind: string, name: string | undefined, opts: GetOpts) => {
    const fmt = opts.output;
    if (fmt && !['wide', 'yaml', 'json', 'name'].includes(fmt)) throw new UsageError(`unknown output format "${fmt}": use wide, yaml, json or name`);
    const chunk = Number(opts.chunkSize ?? '500');
    if (!Number.isInteger(chunk) || chunk < 0) throw new UsageError(`--chunk-size must be a non-negative integer, not "${opts.chunkSize}"`);
    const client = clientFrom(opts);
    const def = await new KindResolver(client).resolve(kind);
    const ns = opts.allNamespaces ? undefined : opts.namespace;
    const tabular = fmt === undefined || fmt === 'wide';
    const print = { wide: fmt === 'wide', withNamespace: !ns && def.namespaced };
    if (name) {
      if (tabular) {
        const t = (await client.request<Table>('GET', objectPath(def, ns ?? 'default', name), undefined, { accept: TABLE_ACCEPT })).body;
        process.stdout.write(printTable(asTable(t), print));
      } else {
        const obj = (await client.request<ResourceObject>('GET', objectPath(def, ns ?? 'default', name))).body;
        process.stdout.write(render(def, [obj], fmt));
      }
      return;
    }
    const q = new URLSearchParams();
    if (opts.selector) q.set('labelSelector', opts.selector);
    if (opts.fieldSelector) q.set('fieldSelector', opts.fieldSelector);
    const base = collectionPath(def, ns);
    let resourceVersion: string;
    let count: number;
    if (tabular) {
      const tables = await listPages<Table>(client, base, q, chunk, TABLE_ACCEPT);
      const all: Table = { ...asTable(tables[0]!), rows: tables.flatMap((t) => asTable(t).rows) };
      resourceVersion = all.metadata.resourceVersion ?? '0';
      count = all.rows.length;
      if (count) process.stdout.write(printTable(all, print));
    } else {
      const lists = await listPages<{ items: ResourceObject[]; metadata: { resourceVersion: string; continue?: string } }>(client, base, q, chunk);
      const items = lists.flatMap((l) => l.items);
      resourceVersion = lists[0]!.metadata.resourceVersion;
      count = items.length;
      if (fmt === 'json' || fmt === 'yaml') {
        const wrapped = { apiVersion: 'v1', kind: 'List', items };
        process.stdout.write(fmt === 'json' ? JSON.stringify(wrapped, null, 2) + '\n' : stringify(wrapped));
      } else {
        process.stdout.write(render(def, items, fmt));
      }
    }
    if (count === 0 && !opts.watch && fmt !== 'json' && fmt !== 'yaml') process.stderr.write(ns ? `No resources found in ${ns} namespace.\n` : 'No resources found.\n');
    if (opts.watch) await watch(client, def, base, q, resourceVersion, fmt, print);
  });
}

/** listPages reads a list in chunks of `chunk` objects (kubectl's --chunk-size), following continue tokens. */
async function listPages<T extends { metadata?: { continue?: string } }>(client: ApiClient, base: string, q: URLSearchParams, chunk: number, accept?: string): Promise<T[]> {
  const pages: T[] = [];
  let token: string | undefined;
  do {
    const pq = new URLSearchParams(q);
    if (chunk > 0) pq.set('limit', String(chunk));
    if (token) pq.set('continue', token);
    const page = (await client.request<T>('GET', `${base}${pq.size ? `?${pq}` : ''}`, undefined, accept ? { accept } : {})).body;
    pages.push(page);
    token = page.metadata?.continue;
  } while (token);
  return pages;
}

async function watch(client: ApiClient, def: KindDefinition, base: string, q: URLSearchParams, resourceVersion: string, fmt: string | undefined, print: PrintOptions): Promise<void> {
  const tabular = fmt === undefined || fmt === 'wide';
  const wq = new URLSearchParams(q);
  wq.set('watch', 'true');
  wq.set('resourceVersion', resourceVersion);
  const res = await client.stream('GET', `${base}?${wq}`, tabular ? { accept: TABLE_ACCEPT } : {});
  const decoder = new TextDecoder();
  let buf = '';
  let columns: Table['columnDefinitions'];
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const ev = JSON.parse(buf.slice(0, nl)) as { type: string; object: unknown };
      buf = buf.slice(nl + 1);
      if (ev.type === 'ERROR') {
        const st = ev.object as { code?: number; message?: string; kind?: string; reason?: string };
        throw new ApiRequestError(st.code ?? 500, st.kind === 'Status' ? (ev.object as never) : undefined, `the watch ended: ${st.message ?? 'unknown error'}`);
      }
      if (ev.type === 'BOOKMARK') continue;
      if (tabular) {
        // Only the first Table of a watch carries the column definitions.
        const t = asTable(ev.object as Table);
        columns = t.columnDefinitions ?? columns;
        process.stdout.write(printTable({ ...t, columnDefinitions: columns }, { ...print, noHeaders: true }));
      } else {
        process.stdout.write(render(def, [ev.object as ResourceObject], fmt));
      }
    }
  }
}

function asTable(body: unknown): Table {
  if ((body as Table | undefined)?.kind !== 'Table') throw new UsageError('the server did not answer with a Table; it may be older than this CLI (use -o yaml or -o json)');
  return body as Table;
}

interface PrintOptions {
  wide: boolean;
  withNamespace: boolean;
  noHeaders?: boolean;
}

/**
 * printTable prints a server Table the way kubectl does: the columns of priority 0 (all with `-o wide`),
 * upper-case headers, NAMESPACE first across namespaces, `<none>` for an empty cell.
 */
export function printTable(t: Table, opts: PrintOptions): string {
  const cols = (t.columnDefinitions ?? []).map((c, i) => ({ c, i })).filter(({ c }) => opts.wide || c.priority === 0);
  const head = [...(opts.withNamespace ? ['NAMESPACE'] : []), ...cols.map(({ c }) => c.name.toUpperCase())];
  const rows = t.rows.map((r) => {
    const meta = (r.object as { metadata?: { namespace?: string } } | undefined)?.metadata;
    return [...(opts.withNamespace ? [meta?.namespace ?? ''] : []), ...cols.map(({ i }) => cell(r.cells[i]))];
  });
  const out = table(head, rows);
  return opts.noHeaders ? out.slice(out.indexOf('\n') + 1) : out;
}

function cell(v: unknown): string {
  if (v === null || v === undefined) return '<none>';
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

function render(def: KindDefinition, items: ResourceObject[], fmt: string | undefined): string {
  if (fmt === 'json') return items.map((o) => JSON.stringify(o, null, 2)).join('\n') + '\n';
  if (fmt === 'yaml') return items.map((o) => stringify(o)).join('---\n');
  return items.map((o) => `${ref(def, o.metadata.name)}\n`).join('');
}

import type { Command } from 'commander';

import { builtinKinds } from '../api/kinds/index.js';
import { apiPathOf, apiVersionOf, CORE_GROUP, groupOf, type KindDefinition, type ResourceObject, versionOf } from '../api/kinds/types.js';
import { UsageError } from '../util/errors.js';

import { ApiClient } from './client.js';

/** addClientOptions gives a command the options every API-talking command shares. */
export function addClientOptions(cmd: Command, namespaced = true): Command {
  cmd.option('--server <url>', 'Skiff API server (default: $SKIFF_SERVER or http://127.0.0.1:7070)');
  cmd.option('--token <token>', 'API bearer token (default: $SKIFF_TOKEN, else $SKIFF_DATA_DIR/token, else ./.skiff/token)');
  if (namespaced) cmd.option('-n, --namespace <ns>', 'namespace', 'default');
  return cmd;
}

/** clientFrom builds the API client from a command's options (`--server`, `--token`, and `--data-dir` where a command has one). */
export function clientFrom(opts: { server?: string; token?: string; dataDir?: string }): ApiClient {
  return new ApiClient({ server: opts.server, token: opts.token, dataDir: opts.dataDir });
}

const local = builtinKinds();

interface DiscoveredResource {
  name: string;
  singularName: string;
  namespaced: boolean;
  kind: string;
  shortNames?: string[];
  columns?: Array<{ name: string; wide?: boolean; jsonPath?: string }>;
}

/**
 * KindResolver maps what a person types (fn, functions, Function) or what a manifest declares
 * (apiVersion + kind) to a kind definition: Skiff's built-in kinds directly, any other kind (for
 * example a constraint kind a ConstraintTemplate created) through the server's discovery documents.
 */
export class KindResolver {
  private discovered?: Array<KindDefinition & { preferred: boolean }>;

  constructor(private readonly client: ApiClient) {}

  async resolve(name: string): Promise<KindDefinition> {
    const def = local.lookup(name) ?? (await this.find((d) => [d.kind, d.plural, d.singular, ...(d.shortNames ?? [])].some((n) => n.toLowerCase() === name.toLowerCase())));
    if (!def) throw new UsageError(`unknown resource type "${name}"; known types: ${(await this.all()).map((k) => k.plural).join(', ')}`);
    return def;
  }

  /** forObject finds the kind of a manifest object; waitMs allows for kinds that appear shortly (constraints after their template). */
  async forObject(apiVersion: string, kind: string, waitMs = 0): Promise<KindDefinition | undefined> {
    const builtin = local.byApiVersionKind(apiVersion, kind);
    if (builtin) return builtin;
    const end = Date.now() + waitMs;
    for (;;) {
      const def = await this.find((d) => d.kind === kind && apiVersionOf(d) === apiVersion);
      if (def || Date.now() >= end) return def;
      this.discovered = undefined;
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** all lists every kind once, at its group's preferred version. */
  async all(): Promise<KindDefinition[]> {
    try {
      const discovered = await this.discover();
      return [...local.all(), ...discovered.filter((d) => d.preferred && !local.byApiVersionKind(apiVersionOf(d), d.kind))];
    } catch {
      return local.all();
    }
  }

  private async find(pred: (d: KindDefinition) => boolean): Promise<KindDefinition | undefined> {
    return (await this.discover()).find(pred);
  }

  /**
   * discover reads every version of every group but Skiff's own, the preferred version first, so that a
   * name resolves to the preferred version and a manifest in another served version (a v1beta1
   * ConstraintTemplate) finds its kind too.
   */
  private async discover(): Promise<Array<KindDefinition & { preferred: boolean }>> {
    if (this.discovered) return this.discovered;
    const groups = (await this.client.request<{ groups: Array<{ name: string; versions: Array<{ version: string }>; preferredVersion: { version: string } }> }>('GET', '/apis')).body.groups;
    const out: Array<KindDefinition & { preferred: boolean }> = [];
    for (const g of groups) {
      if (g.name === 'skiff.dev') continue;
      const preferred = g.preferredVersion.version;
      const versions = [preferred, ...(g.versions ?? []).map((v) => v.version).filter((v) => v !== preferred)];
      for (const version of versions) {
        const list = (await this.client.request<{ resources: DiscoveredResource[] }>('GET', `/apis/${g.name}/${version}`)).body.resources;
        for (const r of list) {
          // `PLURAL/status` and other subresources are not kinds of their own.
          if (r.name.includes('/')) continue;
          out.push(discovered(g.name, version, version === preferred, r));
        }
      }
    }
    this.discovered = out;
    return out;
  }
}

/** discovered is a kind as a group/version's discovery document describes it: enough to address and print it. */
function discovered(group: string, version: string, preferred: boolean, r: DiscoveredResource): KindDefinition & { preferred: boolean } {
  return {
    preferred,
    group,
    version,
    kind: r.kind,
    plural: r.name,
    singular: r.singularName,
    shortNames: r.shortNames,
    namespaced: r.namespaced,
    specSchema: {},
    printerColumns: (r.columns ?? []).filter((c) => c.jsonPath).map((c) => ({ name: c.name, wide: c.wide, jsonPath: c.jsonPath, value: (o: ResourceObject) => readPath(o, c.jsonPath!) })),
  };
}

/** readPath evaluates a simple `.a.b[0].c` path for printing. */
export function readPath(obj: unknown, path: string): string {
  let cur: unknown = obj;
  for (const part of path.replace(/\[(\d+)\]/g, '.$1').split('.').filter(Boolean)) {
    if (cur === null || typeof cur !== 'object') return '<none>';
    cur = (cur as Record<string, unknown>)[part];
  }
  if (cur === undefined || cur === null) return '<none>';
  return typeof cur === 'object' ? JSON.stringify(cur) : String(cur);
}

/** collectionPath is the API path of a kind's collection. */
export function collectionPath(def: KindDefinition, ns: string | undefined): string {
  const base = apiPathOf(groupOf(def), versionOf(def));
  if (!def.namespaced) return `${base}/${def.plural}`;
  return ns === undefined ? `${base}/${def.plural}` : `${base}/namespaces/${encodeURIComponent(ns)}/${def.plural}`;
}

export function objectPath(def: KindDefinition, ns: string | undefined, name: string): string {
  return `${collectionPath(def, ns ?? 'default')}/${encodeURIComponent(name)}`;
}

/** ref renders kubectl's `kind.group/name` form (`kind/name` in the core group). */
export function ref(def: KindDefinition, name: string): string {
  return groupOf(def) === CORE_GROUP ? `${def.singular}/${name}` : `${def.singular}.${groupOf(def)}/${name}`;
}

export function printWarnings(warnings: string[]): void {
  for (const w of warnings) process.stderr.write(`Warning: ${w}\n`);
}

/** table renders rows as kubectl does: upper-case headers, columns separated by three spaces. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('   ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

export type { ResourceObject };

import type { Command } from 'commander';
import { ApiClient } from './client.js';
import { builtinKinds } from '../api/kinds/index.js';
import type { KindDefinition, ResourceObject } from '../api/kinds/types.js';
import { UsageError } from '../util/errors.js';

/** addClientOptions gives a command the options every API-talking command shares. */
export function addClientOptions(cmd: Command, namespaced = true): Command {
  cmd.option('--server <url>', 'Skiff API server (default: $SKIFF_SERVER or http://127.0.0.1:7070)');
  if (namespaced) cmd.option('-n, --namespace <ns>', 'namespace', 'default');
  return cmd;
}

export function clientFrom(opts: { server?: string }): ApiClient {
  return new ApiClient({ server: opts.server });
}

const kinds = builtinKinds();

/** resolveKind maps any of a kind's names to its definition, or explains which names exist. */
export function resolveKind(name: string): KindDefinition {
  const def = kinds.lookup(name);
  if (!def) throw new UsageError(`unknown resource type "${name}"; known types: ${kinds.all().map((k) => k.plural).join(', ')}`);
  return def;
}

export function kindByKindName(kind: string): KindDefinition | undefined {
  const def = kinds.lookup(kind);
  return def && def.kind === kind ? def : undefined;
}

/** collectionPath is the API path of a kind's collection. */
export function collectionPath(def: KindDefinition, ns: string | undefined): string {
  if (!def.namespaced) return `/apis/skiff.dev/v1/${def.plural}`;
  return ns === undefined ? `/apis/skiff.dev/v1/${def.plural}` : `/apis/skiff.dev/v1/namespaces/${encodeURIComponent(ns)}/${def.plural}`;
}

export function objectPath(def: KindDefinition, ns: string | undefined, name: string): string {
  return `${collectionPath(def, ns ?? 'default')}/${encodeURIComponent(name)}`;
}

/** ref renders kubectl's `kind.group/name` form. */
export function ref(def: KindDefinition, name: string): string {
  return `${def.singular}.skiff.dev/${name}`;
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

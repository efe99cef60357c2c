import type { Command } from 'commander';
import { stringify } from 'yaml';

import type { Condition } from '../../api/kinds/conditions.js';
import type { ResourceObject } from '../../api/kinds/types.js';
import { formatAge } from '../../util/quantity.js';
import { addClientOptions, clientFrom, collectionPath, KindResolver, objectPath, table } from '../common.js';

/** `skiff describe KIND NAME`: the object, its conditions and the Events about it. */
export function register(program: Command): void {
  addClientOptions(
    program.command('describe').description('show one resource in detail, with its conditions and events').argument('<kind>').argument('<name>'),
  ).action(async (kind: string, name: string, opts: { server?: string; token?: string; namespace?: string }) => {
    const client = clientFrom(opts);
    const kinds = new KindResolver(client);
    const def = await kinds.resolve(kind);
    const ns = def.namespaced ? (opts.namespace ?? 'default') : undefined;
    const obj = (await client.request<ResourceObject>('GET', objectPath(def, ns, name))).body;
    const m = obj.metadata;
    const lines: string[] = [];
    const kv = (k: string, v: string) => lines.push(`${(k + ':').padEnd(20)}${v}`);
    kv('Name', m.name);
    if (m.namespace) kv('Namespace', m.namespace);
    kv('Labels', fmtMap(m.labels));
    kv('Annotations', fmtMap(m.annotations));
    kv('API Version', obj.apiVersion);
    kv('Kind', obj.kind);
    kv('UID', m.uid ?? '');
    kv('Created', `${m.creationTimestamp ?? ''} (${formatAge(m.creationTimestamp)} ago)`);
    kv('Generation', String(m.generation ?? ''));
    kv('Resource Version', m.resourceVersion ?? '');
    const { metadata: _m, apiVersion: _a, kind: _k, status, ...body } = obj;
    if (Object.keys(body).length) lines.push(indentBlock(body.spec !== undefined ? 'Spec' : 'Fields', body.spec ?? body));
    if (status) {
      const { conditions, replicaStatuses, isolation, autoscaler, ...rest } = status as { conditions?: Condition[]; replicaStatuses?: ReplicaRow[]; isolation?: Record<string, unknown>; autoscaler?: AutoscalerStatus };
      if (Object.keys(rest).length) lines.push(indentBlock('Status', rest));
      if (autoscaler) lines.push(...autoscalerLines(autoscaler));
      if (replicaStatuses) lines.push(...replicaLines(replicaStatuses));
      if (isolation) lines.push(...isolationLines(isolation));
      if (conditions?.length) {
        lines.push('Conditions:');
        lines.push(indent(table(['TYPE', 'STATUS', 'REASON', 'AGE', 'MESSAGE'], conditions.map((c) => [c.type, c.status, c.reason, formatAge(c.lastTransitionTime), c.message]))));
      }
    }
    if (def.kind !== 'Event') {
      const evDef = await kinds.resolve('events');
      const events = (await client.request<{ items: ResourceObject[] }>('GET', collectionPath(evDef, ns ?? 'default'))).body.items
        .filter((e) => {
          const io = e.involvedObject as { kind?: string; name?: string; uid?: string };
          return io?.kind === obj.kind && io.name === m.name && (!io.uid || io.uid === m.uid);
        })
        .sort((a, b) => String(a.lastTimestamp).localeCompare(String(b.lastTimestamp)));
      lines.push('Events:' + (events.length ? '' : '  <none>'));
      if (events.length) {
        lines.push(indent(table(['TYPE', 'REASON', 'AGE', 'COUNT', 'MESSAGE'], events.map((e) => [String(e.type), String(e.reason), formatAge(String(e.lastTimestamp)), String(e.count ?? 1), String(e.message)]))));
      }
    }
    process.stdout.write(lines.join('\n') + '\n');
  });
}

/** status.autoscaler as the autoscaler writes it. */
interface AutoscalerStatus {
  recommendation?: number;
  reason?: string;
  message?: string;
  panic?: boolean;
  metric?: { name?: string; value?: number; target?: number };
  forecast?: { ratePerSecond?: number; next?: number[]; pRequest?: number; error?: number; usable?: boolean; model?: string };
  coldStartMs?: number;
}

/** autoscalerLines: the recommendation, why, and the forecast behind it, one fact a line. */
function autoscalerLines(a: AutoscalerStatus): string[] {
  const out = ['Autoscaler:'];
  const kv = (k: string, v: string) => out.push(`  ${(k + ':').padEnd(18)}${v}`);
  kv('Recommendation', `${a.recommendation ?? 0} replica(s)`);
  kv('Reason', `${a.reason ?? 'unknown'}${a.message ? ` (${a.message})` : ''}`);
  kv('Panic mode', a.panic ? 'yes' : 'no');
  if (a.metric) kv('Metric', `${a.metric.name}: ${a.metric.value ?? 0} now, target ${a.metric.target ?? '?'} per replica`);
  if (a.forecast) {
    const f = a.forecast;
    kv('Forecast', `${f.ratePerSecond ?? 0} req/s over the lead window, p(request) ${f.pRequest ?? 0}, model ${f.model ?? 'none'}`);
    kv('Forecast error', `${f.error ?? 0} sMAPE (${f.usable ? 'used' : 'too poor or too little history: reactive only'})`);
    if (f.next?.length) kv('Next buckets', f.next.map((x) => `${x}`).join(', ') + ' req/s');
  }
  if (a.coldStartMs !== undefined) kv('Cold start', `${a.coldStartMs} ms (measured)`);
  return out;
}

/** A container or VM replica as the workload controller writes it to status.replicaStatuses. */
interface ReplicaRow {
  name: string;
  state: string;
  ready?: boolean;
  restarts?: number;
  revision?: string;
  startedAt?: string;
  message?: string;
  nodeName?: string;
  lastExit?: { reason?: string; code?: number | null; signal?: string | null; message?: string; at?: string };
}

function replicaLines(rows: ReplicaRow[]): string[] {
  if (rows.length === 0) return ['Replicas:           <none> (scaled to zero)'];
  const exit = (e: ReplicaRow['lastExit']) => (e ? `${e.reason ?? ''}${e.code !== null && e.code !== undefined ? ` (code ${e.code})` : e.signal ? ` (${e.signal})` : ''} ${formatAge(e.at)} ago` : '-');
  // In a cluster each node tags its replicas (their names repeat across nodes): the node gets a column.
  const nodes = rows.some((r) => r.nodeName !== undefined);
  const headers = ['NAME', ...(nodes ? ['NODE'] : []), 'STATE', 'READY', 'RESTARTS', 'AGE', 'REVISION', 'LAST EXIT', 'MESSAGE'];
  return ['Replicas:', indent(table(headers, rows.map((r) => [r.name, ...(nodes ? [r.nodeName ?? '-'] : []), r.state, r.ready ? 'yes' : 'no', String(r.restarts ?? 0), r.startedAt ? formatAge(r.startedAt) : '-', r.revision ?? '', exit(r.lastExit), r.message ?? ''])))];
}

/** isolationLines shows what the replicas actually got, one property a line, as kubectl describe shows a pod's security context. */
function isolationLines(iso: Record<string, unknown>): string[] {
  const out = ['Isolation:'];
  const label: Record<string, string> = { handler: 'Handler', namespaces: 'Namespaces', capabilities: 'Capabilities', noNewPrivs: 'No new privileges', seccomp: 'Seccomp', limits: 'Limits', network: 'Network', rootfs: 'Root filesystem', machine: 'Machine' };
  for (const [k, v] of Object.entries(iso)) {
    const value = Array.isArray(v) ? (v.length ? v.join(', ') : 'none (a separate kernel)') : typeof v === 'boolean' ? (v ? 'yes' : 'no') : String(v);
    out.push(`  ${((label[k] ?? k) + ':').padEnd(20)}${value}`);
  }
  return out;
}

function fmtMap(m: Record<string, string> | undefined): string {
  const entries = Object.entries(m ?? {});
  return entries.length ? entries.map(([k, v]) => `${k}=${v}`).join('\n' + ' '.repeat(20)) : '<none>';
}

function indentBlock(title: string, value: unknown): string {
  return `${title}:\n${indent(stringify(value))}`;
}

function indent(s: string): string {
  return s
    .trimEnd()
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}

import type { Command } from 'commander';

import { DRAIN_ANNOTATION } from '../../api/kinds/index.js';
import type { ResourceObject } from '../../api/kinds/types.js';
import { parseDurationMs } from '../../util/quantity.js';
import type { ApiClient } from '../client.js';
import { addClientOptions, clientFrom, collectionPath, KindResolver, objectPath, printWarnings, ref } from '../common.js';

/**
 * `skiff cordon NODE` / `skiff uncordon NODE`: set or clear a Node's spec.unschedulable, as kubectl
 * does, with a merge patch so that nothing else of the Node is touched. `skiff drain NODE` cordons it
 * and waits while the scheduler moves its replicas to other nodes.
 */
export function register(program: Command): void {
  for (const [verb, unschedulable] of [['cordon', true], ['uncordon', false]] as const) {
    addClientOptions(
      program
        .command(verb)
        .description(unschedulable ? 'mark a node unschedulable: no new work is placed on it' : 'mark a node schedulable again')
        .argument('<node>'),
    ).action(async (name: string, opts: { server?: string; token?: string }) => {
      const client = clientFrom(opts);
      const def = await new KindResolver(client).resolve('nodes');
      const path = objectPath(def, undefined, name);
      const current = await client.request<ResourceObject>('GET', path);
      const draining = current.body.metadata?.annotations?.[DRAIN_ANNOTATION] !== undefined;
      if ((current.body.spec?.unschedulable === true) === unschedulable && (unschedulable || !draining)) {
        process.stdout.write(`${ref(def, name)} already ${unschedulable ? 'cordoned' : 'uncordoned'}\n`);
        return;
      }
      // Schedulable is the field's absence (false is omitted), so uncordon removes it, as kubectl's patch does;
      // it also ends a drain.
      const patch = unschedulable ? { spec: { unschedulable: true } } : { spec: { unschedulable: null }, ...(draining ? { metadata: { annotations: { [DRAIN_ANNOTATION]: null } } } : {}) };
      const res = await client.request('PATCH', path, patch, { 'content-type': 'application/merge-patch+json' });
      printWarnings(res.warnings);
      process.stdout.write(`${ref(def, name)} ${unschedulable ? 'cordoned' : 'uncordoned'}\n`);
    });
  }

  addClientOptions(
    program
      .command('drain')
      .description('cordon a node and move its container and VM replicas to other nodes (new ones first), waiting until it runs none')
      .argument('<node>')
      .option('--timeout <duration>', 'how long to wait for the replicas to move (e.g. 60s, 2m)', '60s'),
    false,
  ).action(async (name: string, opts: { server?: string; token?: string; timeout: string }) => {
    const timeoutMs = parseDurationMs(opts.timeout);
    if (timeoutMs === undefined) throw new Error(`--timeout ${opts.timeout}: not a duration (e.g. 60s)`);
    const client = clientFrom(opts);
    const resolver = new KindResolver(client);
    const nodeDef = await resolver.resolve('nodes');
    const path = objectPath(nodeDef, undefined, name);
    await client.request('GET', path);
    const res = await client.request('PATCH', path, { metadata: { annotations: { [DRAIN_ANNOTATION]: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z') } }, spec: { unschedulable: true } }, { 'content-type': 'application/merge-patch+json' });
    printWarnings(res.warnings);
    process.stdout.write(`${ref(nodeDef, name)} cordoned\n`);

    const fnDef = await resolver.resolve('functions');
    const sliceDef = await resolver.resolve('endpointslices');
    const onNode = async () => {
      const fns = (await client.request<{ items: ResourceObject[] }>('GET', collectionPath(fnDef, undefined))).body.items;
      return fns.filter((f) => placedOn(f, name) > 0);
    };
    const before = await onNode();
    for (const f of before) process.stdout.write(`moving function ${f.metadata.namespace}/${f.metadata.name} (${placedOn(f, name)} replica(s))\n`);
    const waiting = new Map(before.map((f) => [`${f.metadata.namespace}/${f.metadata.name}`, f]));
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const still = new Map((await onNode()).map((f) => [`${f.metadata.namespace}/${f.metadata.name}`, f]));
      // A replica has left once the scheduler moved it and the node stopped listing it in its slice.
      const slices = await runningHere(client, sliceDef, name);
      for (const [key, f] of waiting) {
        if (still.has(key) || slices.has(key)) {
          waiting.set(key, still.get(key) ?? f);
          continue;
        }
        waiting.delete(key);
        process.stdout.write(`function ${key} moved\n`);
      }
      for (const [key, f] of still) if (!waiting.has(key)) waiting.set(key, f);
      if (waiting.size === 0) break;
      if (Date.now() >= deadline) {
        const why = [...waiting].map(([key, f]) => `function ${key}: ${stuckReason(f, name)}`);
        process.stderr.write(`error: unable to drain node "${name}" within ${opts.timeout}: ${why.join('; ')}\n`);
        process.stderr.write(`There are pending nodes to be drained:\n ${name}\n`);
        process.exitCode = 1;
        return;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    process.stdout.write(`${ref(nodeDef, name)} drained\n`);
  });
}

function placedOn(f: ResourceObject, node: string): number {
  const p: unknown = f.status?.placement;
  if (!Array.isArray(p)) return 0;
  return p.filter((e: { nodeName?: string }) => e?.nodeName === node).reduce((a: number, e: { replicas?: number }) => a + Number(e.replicas ?? 0), 0);
}

/** runningHere lists the container and VM Functions a node still lists replicas of (namespace/name). */
async function runningHere(client: ApiClient, sliceDef: Parameters<typeof collectionPath>[0], node: string): Promise<Set<string>> {
  const q = `?labelSelector=${encodeURIComponent(`skiff.dev/node=${node}`)}`;
  const slices = (await client.request<{ items: ResourceObject[] }>('GET', collectionPath(sliceDef, undefined) + q)).body.items;
  return new Set(slices.filter((s) => Array.isArray(s.endpoints) && s.endpoints.length > 0).map((s) => `${s.metadata.namespace}/${s.metadata.labels?.['kubernetes.io/service-name'] ?? ''}`));
}

function stuckReason(f: ResourceObject, node: string): string {
  const sched = (f.status?.conditions as Array<{ type: string; status: string; message?: string }> | undefined)?.find((c) => c.type === 'Scheduled');
  if (sched?.status === 'False') return sched.message ?? 'its replicas cannot be placed elsewhere';
  if (placedOn(f, node) > 0) return `${placedOn(f, node)} replica(s) still placed here, waiting for their replacements to be ready`;
  return 'its replicas here are still stopping';
}

import type { Command } from 'commander';

import { addClientOptions, clientFrom, KindResolver, objectPath, printWarnings, ref } from '../common.js';

/**
 * `skiff cordon NODE` / `skiff uncordon NODE`: set or clear a Node's spec.unschedulable, as kubectl
 * does, with a merge patch so that nothing else of the Node is touched.
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
      const current = await client.request<{ spec?: { unschedulable?: boolean } }>('GET', path);
      if ((current.body.spec?.unschedulable === true) === unschedulable) {
        process.stdout.write(`${ref(def, name)} already ${unschedulable ? 'cordoned' : 'uncordoned'}\n`);
        return;
      }
      // Schedulable is the field's absence (false is omitted), so uncordon removes it, as kubectl's patch does.
      const res = await client.request('PATCH', path, { spec: { unschedulable: unschedulable ? true : null } }, { 'content-type': 'application/merge-patch+json' });
      printWarnings(res.warnings);
      process.stdout.write(`${ref(def, name)} ${unschedulable ? 'cordoned' : 'uncordoned'}\n`);
    });
  }
}

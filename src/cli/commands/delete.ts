import type { Command } from 'commander';

import type { KindDefinition } from '../../api/kinds/types.js';
import { readManifests } from '../../manifests/index.js';
import { CheckFailedError, UsageError } from '../../util/errors.js';
import { ApiRequestError } from '../client.js';
import { addClientOptions, clientFrom, KindResolver, objectPath, printWarnings, ref } from '../common.js';

/** `skiff delete KIND NAME...` or `skiff delete -f PATH`. */
export function register(program: Command): void {
  addClientOptions(
    program
      .command('delete')
      .description('delete resources by kind and name, or those in manifests')
      .argument('[kind]')
      .argument('[names...]')
      .option('-f, --filename <path...>', 'delete the objects defined in these manifests')
      .option('--ignore-not-found', 'treat missing objects as deleted'),
  ).action(async (kind: string | undefined, names: string[], opts: { filename?: string[]; server?: string; token?: string; namespace?: string; ignoreNotFound?: boolean }) => {
    const targets: Array<{ def: KindDefinition; ns?: string; name: string }> = [];
    const client = clientFrom(opts);
    const kinds = new KindResolver(client);
    if (opts.filename?.length) {
      if (kind) throw new UsageError('give either -f PATH or KIND NAME, not both');
      for (const it of readManifests(opts.filename)) {
        const def = await kinds.forObject(String(it.object.apiVersion), String(it.object.kind));
        if (!def) throw new CheckFailedError(`error: ${it.source}:${it.line}: unknown kind "${String(it.object.kind)}"`);
        targets.push({ def, ns: def.namespaced ? (it.object.metadata?.namespace ?? opts.namespace) : undefined, name: String(it.object.metadata?.name) });
      }
    } else {
      if (!kind || names.length === 0) throw new UsageError('delete needs KIND NAME... or -f PATH');
      const def = await kinds.resolve(kind);
      for (const name of names) targets.push({ def, ns: def.namespaced ? opts.namespace : undefined, name });
    }
    let failed = 0;
    for (const t of targets) {
      try {
        const res = await client.request('DELETE', objectPath(t.def, t.ns, t.name));
        printWarnings(res.warnings);
        process.stdout.write(`${ref(t.def, t.name)} deleted\n`);
      } catch (err) {
        if (!(err instanceof ApiRequestError)) throw err;
        if (err.httpStatus === 404 && opts.ignoreNotFound) continue;
        failed++;
        process.stderr.write(`Error from server (${err.reason ?? err.httpStatus}): ${err.message}\n`);
      }
    }
    if (failed) process.exitCode = 1;
  });
}

import type { Command } from 'commander';

import type { ResourceObject } from '../../api/kinds/types.js';
import { CheckFailedError, UsageError } from '../../util/errors.js';
import { parseDurationMs } from '../../util/quantity.js';
import { ApiRequestError } from '../client.js';
import { addClientOptions, clientFrom, KindResolver, objectPath } from '../common.js';

/** The "reconcile now" annotation the sync and source controllers react to. */
const RECONCILE_AT = 'skiff.dev/reconcile-at';
const MERGE_PATCH = { 'content-type': 'application/merge-patch+json' };

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

const readyOf = (o: ResourceObject): Condition | undefined => (o.status?.conditions as Condition[] | undefined)?.find((c) => c.type === 'Ready');

/** `skiff sync NAME`: reconcile a Sync and its source now, and say what was applied. */
export function register(program: Command): void {
  addClientOptions(
    program
      .command('sync')
      .description('fetch the source of a Sync and apply it now; prints what was applied and exits 1 if the revision failed')
      .argument('<name>', 'the Sync')
      .option('--timeout <duration>', 'how long to wait for the Sync to apply the source\'s revision', '60s'),
  ).action(async (name: string, opts: { server?: string; token?: string; namespace?: string; timeout: string }) => {
    const timeoutMs = parseDurationMs(opts.timeout);
    if (timeoutMs === undefined || timeoutMs <= 0) throw new UsageError(`--timeout ${opts.timeout}: use a duration such as 30s or 2m`);
    const client = clientFrom(opts);
    const kinds = new KindResolver(client);
    const ns = opts.namespace ?? 'default';
    const syncDef = await kinds.resolve('syncs');
    const syncPath = objectPath(syncDef, ns, name);
    const get = async (path: string): Promise<ResourceObject | undefined> => {
      try {
        return (await client.request<ResourceObject>('GET', path)).body;
      } catch (err) {
        if (err instanceof ApiRequestError && err.httpStatus === 404) return undefined;
        throw err;
      }
    };
    const sync = await get(syncPath);
    if (!sync) throw new CheckFailedError(`sync/${name} not found in namespace ${ns}`);
    const ref = sync.spec?.sourceRef ?? {};
    const srcNs = ref.namespace ?? ns;
    // RFC 3339 with milliseconds: two requests within a second still differ.
    const at = new Date().toISOString();
    const patch = { metadata: { annotations: { [RECONCILE_AT]: at } } };
    if (ref.kind !== 'GitRepository') throw new CheckFailedError(`sync/${name}: spec.sourceRef.kind ${String(ref.kind)} is not a source this command knows`);
    // The kind's plural is fixed by the contract; addressing it directly works whether or not this CLI was built with the source kind.
    const srcPath = `/apis/skiff.dev/v1/namespaces/${encodeURIComponent(srcNs)}/gitrepositories/${encodeURIComponent(String(ref.name))}`;
    try {
      await client.request('PATCH', srcPath, patch, MERGE_PATCH);
    } catch (err) {
      if (err instanceof ApiRequestError && err.httpStatus === 404) throw new CheckFailedError(`sync/${name}: its source GitRepository/${String(ref.name)} in namespace ${srcNs} does not exist`);
      throw err;
    }
    await client.request('PATCH', syncPath, patch, MERGE_PATCH);
    const end = Date.now() + timeoutMs;
    let last: ResourceObject | undefined;
    for (;;) {
      last = await get(syncPath);
      if (!last) throw new CheckFailedError(`sync/${name} was deleted while waiting`);
      const ready = readyOf(last);
      if (last.spec?.suspend) throw new CheckFailedError(`sync/${name} is suspended (spec.suspend); nothing was applied`);
      const src = await get(srcPath);
      const art = src?.status?.artifact as { revision?: string } | undefined;
      const st = last.status ?? {};
      const sourceDone = src?.status?.lastHandledReconcileAt === undefined || src.status.lastHandledReconcileAt === at;
      if (st.lastHandledReconcileAt === at && sourceDone && art?.revision && st.lastAttemptedRevision === art.revision) {
        const count = (st.inventory?.entries as unknown[] | undefined)?.length ?? 0;
        if (ready?.status === 'True' && st.lastAppliedRevision === art.revision) {
          process.stdout.write(`sync/${name} applied ${art.revision} (${count} objects, ${Number(st.lastPruned ?? 0)} pruned)\n`);
          return;
        }
        process.stderr.write(`sync/${name} failed at ${art.revision}: ${ready?.reason ?? 'Unknown'}: ${ready?.message ?? ''}${st.lastAppliedRevision ? ` (still applied: ${st.lastAppliedRevision})` : ''}\n`);
        process.exitCode = 1;
        return;
      }
      if (Date.now() >= end) {
        const why = ready && ready.status !== 'True' ? ` (Ready=${ready.status}, ${ready.reason}: ${ready.message})` : '';
        throw new CheckFailedError(`sync/${name}: the source's revision was not attempted within ${opts.timeout}${why}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  });
}

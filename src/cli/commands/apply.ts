import type { Command } from 'commander';
import { ApiRequestError } from '../client.js';
import { KindResolver, addClientOptions, clientFrom, collectionPath, objectPath, printWarnings, ref } from '../common.js';
import { readManifests, resolveModuleRef, type ManifestObject } from '../../manifests/index.js';
import { CheckFailedError, UsageError } from '../../util/errors.js';
import type { KindDefinition, ResourceObject } from '../../api/kinds/types.js';

interface ApplyOpts {
  filename?: string[];
  server?: string;
  token?: string;
  namespace?: string;
  dryRun?: string;
}

/** `skiff apply -f PATH|-`: create or update every object in the manifests. */
export function register(program: Command): void {
  addClientOptions(
    program
      .command('apply')
      .description('create or update resources from YAML/JSON manifests (file, directory or - for stdin)')
      .option('-f, --filename <path...>', 'manifest file, directory, or - for stdin')
      .option('--dry-run <mode>', "'server' validates and admits without storing, 'none' applies"),
  ).action(async (opts: ApplyOpts) => {
    if (!opts.filename?.length) throw new UsageError('apply needs -f PATH (a file, a directory, or - for stdin)');
    if (opts.dryRun && opts.dryRun !== 'server' && opts.dryRun !== 'none') throw new UsageError(`--dry-run must be 'server' or 'none', not '${opts.dryRun}'`);
    const items = readManifests(opts.filename);
    const client = clientFrom(opts);
    const kinds = new KindResolver(client);
    const { planned, deferred } = await plan(items, opts.namespace ?? 'default', kinds);
    const dry = opts.dryRun === 'server';
    let failed = 0;
    const run = async (p: Planned): Promise<string> => {
      try {
        const verb = await applyOne(client, p.def, p.ns, p.obj, dry);
        return `${ref(p.def, p.obj.metadata.name)} ${verb}${dry ? ' (server dry run)' : ''}\n`;
      } catch (err) {
        if (!(err instanceof ApiRequestError)) throw err;
        failed++;
        printWarnings(err.warnings);
        process.stderr.write(`Error from server (${err.reason ?? err.httpStatus}) applying ${p.where}: ${err.message}\n`);
        return '';
      }
    };
    // Namespaces first, so objects in them never race their namespace; the rest a few at a time,
    // reported in manifest order.
    for (const p of planned.filter((x) => x.def.kind === 'Namespace')) process.stdout.write(await run(p));
    const rest = planned.filter((x) => x.def.kind !== 'Namespace');
    const results: Array<Promise<string>> = [];
    let next = 0;
    let printed = 0;
    const window = 8;
    const start = () => {
      while (next < rest.length && next - printed < window) {
        const i = next++;
        results[i] = run(rest[i]!);
        // Failures are awaited in order below; this only keeps an early one from counting as unhandled.
        results[i]!.catch(() => {});
      }
    };
    start();
    while (printed < rest.length) {
      process.stdout.write(await results[printed]!);
      printed++;
      start();
    }
    // Objects of kinds that the objects just applied create (constraints after their template).
    if (deferred.length) {
      const late = await plan(deferred, opts.namespace ?? 'default', kinds, 10_000);
      for (const p of late.planned) process.stdout.write(await run(p));
    }
    if (failed) process.exitCode = 1;
  });
}

interface Planned {
  def: KindDefinition;
  ns: string | undefined;
  obj: ResourceObject;
  where: string;
}

/**
 * plan checks every object before anything is sent: a known kind, a name, no object twice. Objects
 * of a kind the server does not know yet are deferred when the same apply creates kinds (a
 * ConstraintTemplate); with waitMs they are given that long to appear.
 */
async function plan(items: ManifestObject[], defaultNs: string, kinds: KindResolver, waitMs = 0): Promise<{ planned: Planned[]; deferred: ManifestObject[] }> {
  const errors: string[] = [];
  const seen = new Map<string, string>();
  const out: Planned[] = [];
  const deferred: ManifestObject[] = [];
  const createsKinds = items.some((it) => it.object?.kind === 'ConstraintTemplate');
  for (const it of items) {
    const where = `${it.source}:${it.line}`;
    const o = it.object as ResourceObject;
    if (typeof o.kind !== 'string' || typeof o.apiVersion !== 'string') {
      errors.push(`${where}: the object needs apiVersion and kind`);
      continue;
    }
    const def = await kinds.forObject(o.apiVersion, o.kind, waitMs);
    if (!def) {
      if (createsKinds && waitMs === 0 && !o.apiVersion.startsWith('skiff.dev/')) {
        deferred.push(it);
        continue;
      }
      errors.push(`${where}: unknown kind "${o.kind}" in ${o.apiVersion}; known kinds: ${(await kinds.all()).map((k) => k.kind).join(', ')}`);
      continue;
    }
    const name = o.metadata?.name;
    if (typeof name !== 'string' || !name) {
      errors.push(`${where}: ${o.kind} has no metadata.name`);
      continue;
    }
    const ns = def.namespaced ? (o.metadata.namespace ?? defaultNs) : undefined;
    const id = `${o.apiVersion}/${def.kind}/${ns ?? ''}/${name}`;
    const prev = seen.get(id);
    if (prev) {
      errors.push(`${where}: ${o.kind} "${name}"${ns ? ` in namespace ${ns}` : ''} is also defined at ${prev}; each object may appear once per apply`);
      continue;
    }
    seen.set(id, where);
    const obj = structuredClone(o);
    if (def.namespaced) obj.metadata.namespace = ns;
    resolveModuleRef(obj, it.baseDir);
    out.push({ def, ns, obj, where });
  }
  if (errors.length) throw new CheckFailedError(errors.map((e) => `error: ${e}`).join('\n'));
  return { planned: out, deferred };
}

async function applyOne(client: ReturnType<typeof clientFrom>, def: KindDefinition, ns: string | undefined, desired: ResourceObject, dry: boolean): Promise<string> {
  const q = dry ? '?dryRun=All' : '';
  for (let attempt = 0; ; attempt++) {
    // Most applies create: try that first and fall back to read-compare-replace when it exists.
    if (attempt === 0) {
      try {
        const res = await client.request('POST', collectionPath(def, ns ?? 'default') + q, desired);
        printWarnings(res.warnings);
        return 'created';
      } catch (err) {
        if (!(err instanceof ApiRequestError && err.reason === 'AlreadyExists')) throw err;
      }
    }
    let live: ResourceObject;
    try {
      live = (await client.request<ResourceObject>('GET', objectPath(def, ns, desired.metadata.name))).body;
    } catch (err) {
      // Deleted between our create attempt and this read: create again.
      if (err instanceof ApiRequestError && err.httpStatus === 404 && attempt < 2) {
        const res = await client.request('POST', collectionPath(def, ns ?? 'default') + q, desired);
        printWarnings(res.warnings);
        return 'created';
      }
      throw err;
    }
    const next = merge(live, desired);
    if (same(live, next)) return 'unchanged';
    try {
      const res = await client.request('PUT', objectPath(def, ns, desired.metadata.name) + q, next);
      printWarnings(res.warnings);
      return 'configured';
    } catch (err) {
      // Someone changed it between our read and write: read again and re-apply once or twice.
      if (err instanceof ApiRequestError && err.httpStatus === 409 && attempt < 2) continue;
      throw err;
    }
  }
}

/** merge puts what the manifest declares over the live object, keeping server-owned metadata. */
function merge(live: ResourceObject, desired: ResourceObject): ResourceObject {
  const { status: _s, ...rest } = desired;
  return {
    ...rest,
    metadata: {
      ...desired.metadata,
      resourceVersion: live.metadata.resourceVersion,
    },
  } as ResourceObject;
}

function same(live: ResourceObject, next: ResourceObject): boolean {
  const strip = (o: ResourceObject) => {
    const { status: _s, metadata, ...rest } = o;
    return JSON.stringify(canonical({ ...rest, labels: metadata.labels ?? {}, annotations: metadata.annotations ?? {} }));
  };
  return strip(live) === strip(next);
}

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v as object).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])]));
  return v;
}

import type { Command } from 'commander';

import { blobRef } from '../../api/kinds/index.js';
import { apiVersionOf, type KindDefinition, type ResourceObject } from '../../api/kinds/types.js';
import { SKIFF_APPLY_MANAGER } from '../../api/patch/field-manager.js';
import { type ManifestObject,readManifests, resolveModuleRef } from '../../manifests/index.js';
import { CheckFailedError, UsageError } from '../../util/errors.js';
import { applyAndWatch } from '../apply-watch.js';
import { type ApiClient,ApiRequestError } from '../client.js';
import { addClientOptions, clientFrom, KindResolver, objectPath, printWarnings, ref } from '../common.js';
import { type LocalModule,LocalModules, uploadModules, useUpload } from '../module-upload.js';

interface ApplyOpts {
  filename?: string[];
  server?: string;
  token?: string;
  namespace?: string;
  dryRun?: string;
  watch?: boolean;
  forceConflicts?: boolean;
  fieldManager: string;
  /** false with --no-upload: local module paths go to the server as host paths. */
  upload: boolean;
}

/**
 * `skiff apply -f PATH|- [--watch]`: server-side apply of every object in the manifests (field manager
 * `skiff`), uploading local module files first.
 */
export function register(program: Command): void {
  addClientOptions(
    program
      .command('apply')
      .description('create or update resources from YAML/JSON manifests (file, directory or - for stdin); uploads the local module files Functions name')
      .option('-f, --filename <path...>', 'manifest file, directory, or - for stdin')
      .option('--dry-run <mode>', "'server' validates and admits without storing, 'none' applies")
      .option('--force-conflicts', 'take over fields another manager (kubectl, a controller) set to other values, instead of failing with the conflicts')
      .option('--field-manager <name>', 'the name the server records as the owner of the applied fields', SKIFF_APPLY_MANAGER)
      .option('-w, --watch', 'after applying, apply again whenever a manifest or a local module file changes, until interrupted')
      .option('--no-upload', 'send local module paths as absolute host paths instead of uploading the files (the server must be started with --allow-host-dir for their folder)'),
  ).action(async (opts: ApplyOpts) => {
    if (!opts.filename?.length) throw new UsageError('apply needs -f PATH (a file, a directory, or - for stdin)');
    if (opts.dryRun && opts.dryRun !== 'server' && opts.dryRun !== 'none') throw new UsageError(`--dry-run must be 'server' or 'none', not '${opts.dryRun}'`);
    if (opts.watch && opts.filename.includes('-')) throw new UsageError('--watch needs files or directories to watch; it cannot watch stdin (-f -)');
    if (opts.watch && opts.dryRun === 'server') throw new UsageError('--watch applies for real; drop --dry-run=server');
    const client = clientFrom(opts);
    if (!opts.watch) {
      const failed = await applyAll(opts, client, new LocalModules(), (s) => process.stdout.write(s), false);
      if (failed) process.exitCode = 1;
      return;
    }
    await applyAndWatch({
      inputs: opts.filename,
      apply: async (round, emit) => {
        // Even when this round fails (a manifest mid-edit, a module not built yet), the files it tried to read are watched.
        const modules = new LocalModules();
        try {
          const failed = await applyAll(opts, client, modules, emit, round > 0);
          return { files: modules.files(), failed: failed > 0 };
        } catch (err) {
          return { files: modules.files(), failed: true, error: err };
        }
      },
    });
  });
}

/**
 * applyAll applies every object once: it reads the manifests, checks them, uploads the module files
 * they name, then sends the objects. With quiet, objects that did not change are not reported.
 * Returns how many objects the server refused.
 */
async function applyAll(opts: ApplyOpts, client: ApiClient, modules: LocalModules, emit: (s: string) => void, quiet: boolean): Promise<number> {
  const kinds = new KindResolver(client);
  const ns = opts.namespace ?? 'default';
  const dry = opts.dryRun === 'server';
  const items = readManifests(opts.filename!);
  const { planned, deferred } = await plan(items, ns, kinds, modules, opts.upload);
  await uploadModules(client, planned.flatMap((p) => (p.module ? [p.module] : [])));
  let failed = 0;
  const run = async (p: Planned): Promise<string> => {
    try {
      const verb = await applyOne(client, p.def, p.ns, p.obj, { dry, force: !!opts.forceConflicts, manager: opts.fieldManager });
      if (quiet && verb === 'unchanged') return '';
      return `${ref(p.def, p.obj.metadata.name)} ${verb}${dry ? ' (server dry run)' : ''}\n`;
    } catch (err) {
      if (!(err instanceof ApiRequestError)) throw err;
      failed++;
      printWarnings(err.warnings);
      const ownership = err.status?.details?.causes?.some((c) => (c as { reason?: string }).reason === 'FieldManagerConflict');
      const hint = ownership ? '\n(other managers own these fields: re-run with --force-conflicts to take them over, or leave them out of the manifest)' : '';
      process.stderr.write(`Error from server (${err.reason ?? err.httpStatus}) applying ${p.where}: ${err.message}${hint}\n`);
      return '';
    }
  };
  // Namespaces first, so objects in them never race their namespace; the rest a few at a time,
  // reported in manifest order.
  for (const p of planned.filter((x) => x.def.kind === 'Namespace')) emit(await run(p));
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
    emit(await results[printed]!);
    printed++;
    start();
  }
  // Objects of kinds that the objects just applied create (constraints after their template).
  if (deferred.length) {
    const late = await plan(deferred, ns, kinds, modules, opts.upload, 10_000);
    await uploadModules(client, late.planned.flatMap((p) => (p.module ? [p.module] : [])));
    for (const p of late.planned) emit(await run(p));
  }
  return failed;
}

interface Planned {
  def: KindDefinition;
  ns: string | undefined;
  obj: ResourceObject;
  where: string;
  /** The local module file this Function's module is uploaded from. */
  module?: LocalModule;
}

/**
 * plan checks every object before anything is sent: a known kind, a name, no object twice. Objects
 * of a kind the server does not know yet are deferred when the same apply creates kinds (a
 * ConstraintTemplate); with waitMs they are given that long to appear.
 */
async function plan(items: ManifestObject[], defaultNs: string, kinds: KindResolver, modules: LocalModules, upload: boolean, waitMs = 0): Promise<{ planned: Planned[]; deferred: ManifestObject[] }> {
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
    // A legacy alias (skiff.dev/v1 Namespace) names the same object as the kind's own apiVersion.
    const id = `${apiVersionOf(def)}/${def.kind}/${ns ?? ''}/${name}`;
    const prev = seen.get(id);
    if (prev) {
      errors.push(`${where}: ${o.kind} "${name}"${ns ? ` in namespace ${ns}` : ''} is also defined at ${prev}; each object may appear once per apply`);
      continue;
    }
    seen.set(id, where);
    const obj = structuredClone(o);
    if (def.namespaced) obj.metadata.namespace = ns;
    let module: LocalModule | undefined;
    const skiffKind = apiVersionOf(def) === 'skiff.dev/v1';
    // A Rollout's new version is a module file like a Function's, so it is sent the same way.
    const rollout = skiffKind && def.kind === 'Rollout';
    const written = rollout ? obj.spec?.canary?.module : def.kind === 'Function' && skiffKind ? obj.spec?.module : undefined;
    const local = LocalModules.localPathOf(written, it.baseDir);
    if (local && upload) {
      try {
        module = modules.load(local, String(written));
        if (rollout) obj.spec.canary = { ...obj.spec.canary, module: blobRef(module.hex) };
        else useUpload(obj, module);
      } catch (err) {
        const message = (err as Error).message;
        errors.push(`${where}: ${rollout ? message.replace(/^spec\.module:/, 'spec.canary.module:') : message}`);
        continue;
      }
    } else resolveModuleRef(obj, it.baseDir);
    out.push({ def, ns, obj, where, module });
  }
  if (errors.length) throw new CheckFailedError(errors.map((e) => `error: ${e}`).join('\n'));
  return { planned: out, deferred };
}


/**
 * applyOne sends one object as a server-side apply (the same apply kubectl --server-side uses) and
 * says what happened: created (201), configured (the object apart from its status changed), or
 * unchanged.
 */
async function applyOne(client: ApiClient, def: KindDefinition, ns: string | undefined, desired: ResourceObject, opts: { dry: boolean; force: boolean; manager: string }): Promise<string> {
  const name = desired.metadata.name;
  const q = new URLSearchParams({ fieldManager: opts.manager });
  if (opts.force) q.set('force', 'true');
  if (opts.dry) q.set('dryRun', 'All');
  const path = objectPath(def, ns, name);
  let before: ResourceObject | undefined;
  try {
    before = (await client.request<ResourceObject>('GET', path)).body;
  } catch (err) {
    if (!(err instanceof ApiRequestError && err.httpStatus === 404)) throw err;
  }
  const res = await client.request<ResourceObject>('PATCH', `${path}?${q}`, applied(desired), { 'content-type': 'application/apply-patch+yaml' });
  printWarnings(res.warnings);
  if (res.status === 201 || !before) return 'created';
  if (!opts.dry && res.body.metadata.resourceVersion === before.metadata.resourceVersion) return 'unchanged';
  // A controller may write status between the GET and the apply; that is not this apply's doing.
  return sameApart(before, res.body) ? 'unchanged' : 'configured';
}

/**
 * applied is the manifest as an applied configuration: what the server keeps for itself
 * (resourceVersion, uid, managedFields, status, as in a file saved from `get -o yaml`) is left out.
 */
function applied(o: ResourceObject): ResourceObject {
  const { status: _s, ...rest } = o;
  const { resourceVersion: _r, uid: _u, managedFields: _m, creationTimestamp: _c, generation: _g, ...metadata } = o.metadata;
  return { ...rest, metadata } as ResourceObject;
}

/** sameApart compares two versions of an object apart from what controllers and the server write. */
function sameApart(a: ResourceObject, b: ResourceObject): boolean {
  const strip = (o: ResourceObject) => JSON.stringify(canonical({ ...o, status: undefined, metadata: { ...o.metadata, managedFields: undefined, resourceVersion: undefined } }));
  return strip(a) === strip(b);
}

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v as object).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])]));
  return v;
}

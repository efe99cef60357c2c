import { type FSWatcher,watch } from 'node:fs';
import { basename,dirname } from 'node:path';

import type { Logger } from 'pino';

import { ApiError } from '../api/errors.js';
import { type Condition,setCondition } from '../api/kinds/conditions.js';
import { runsImage } from '../api/kinds/function-workload.js';
import { parseModuleRef } from '../api/kinds/module-ref.js';
import type { ResourceObject } from '../api/kinds/types.js';
import type { ResourceService } from '../api/resources.js';
import { type FunctionInvoker, type FunctionSpec,ModuleLoadError, type ModuleSource } from '../functions/index.js';
import type { Runtime } from '../runtime/index.js';

import { cacheKey,Controller, EventRecorder, Informer } from './runtime/index.js';

/** The slice of the sandbox runtime the controller needs: compile and describe a module. */
export type ModuleCompiler = Pick<Runtime, 'compile'>;

export interface FunctionControllerOptions {
  resources: ResourceService;
  compiler: ModuleCompiler;
  invoker: FunctionInvoker;
  logger: Logger;
  /** Where modules are loaded from: uploads, allowed host files, allowed URLs. */
  modules: ModuleSource;
  /**
   * In a cluster: whether this node may run the Function (its nodeSelector and node affinity match
   * this node's labels). A Function it may not run is not loaded here. Without it every Function loads.
   */
  eligible?: (obj: ResourceObject) => boolean;
  /** Whether this node serves a Function's module now (for its EndpointSlice). */
  serving?: (namespace: string, name: string, serving: boolean) => void;
}

interface Loaded {
  digest: string;
  generation: number;
}

/**
 * FunctionController makes each Function servable: it loads the module (an upload, an allowed host
 * file or URL), checks its digest, compiles it once, publishes it to the invoker and reports the
 * outcome in status and Events. Host module files inside an `--allow-host-dir` are watched, so
 * rebuilding one rolls it out without re-applying. When a new version fails to load, the last good one
 * keeps serving and Ready turns False with the reason.
 */
export class FunctionController {
  readonly informer: Informer;
  readonly controller: Controller;
  private readonly classes: Informer;
  private readonly events: EventRecorder;
  private readonly loaded = new Map<string, Loaded>();
  private readonly watchers = new Map<string, { path: string; w: FSWatcher }>();

  constructor(private readonly opts: FunctionControllerOptions) {
    this.informer = new Informer(opts.resources, opts.resources.kind('Function'), opts.logger);
    this.events = new EventRecorder(opts.resources, 'function-controller', opts.logger);
    this.classes = new Informer(opts.resources, opts.resources.kind('RuntimeClass'), opts.logger);
    this.controller = new Controller({
      name: 'functions',
      logger: opts.logger,
      keys: () => this.informer.list().map(cacheKey),
      reconcile: (key) => this.reconcile(key),
      resyncMs: 60_000,
    });
    this.informer.addHandlers({
      onAdd: (o) => this.controller.enqueue(cacheKey(o)),
      onUpdate: (a, b) => {
        // Status-only writes (our own) do not need another pass.
        if (a.metadata.generation !== b.metadata.generation || JSON.stringify(a.metadata.labels) !== JSON.stringify(b.metadata.labels)) this.controller.enqueue(cacheKey(b));
      },
      onDelete: (o) => this.controller.enqueue(cacheKey(o)),
    });
  }

  async start(): Promise<void> {
    // A RuntimeClass of one's own that appears, changes or goes affects the module Functions naming it.
    const requeue = (rc: ResourceObject) => {
      for (const f of this.informer.list()) if (f.spec?.runtimeClassName === rc.metadata.name && !runsImage(f.spec ?? {})) this.controller.enqueue(cacheKey(f));
    };
    this.classes.addHandlers({ onAdd: requeue, onUpdate: (_a, b) => requeue(b), onDelete: requeue });
    await this.classes.start();
    await this.informer.start();
    this.controller.start();
  }

  /** requeueAll looks at every Function again (this node's labels changed, so which it may run). */
  requeueAll(): void {
    for (const f of this.informer.list()) this.controller.enqueue(cacheKey(f));
  }

  async stop(): Promise<void> {
    this.informer.stop();
    this.classes.stop();
    await this.controller.stop();
    for (const { w } of this.watchers.values()) w.close();
    this.watchers.clear();
  }

  private async reconcile(key: string): Promise<void> {
    const [ns, name] = key.split('/') as [string, string];
    const obj = this.informer.get(key);
    // A container or VM Function is the workload controller's; a Wasm one that became one stops here.
    if (!obj || runsImage(obj.spec ?? {}) || (this.opts.eligible && !this.opts.eligible(obj))) {
      if (obj && this.opts.invoker.has(ns, name)) this.opts.logger.info({ fn: key }, 'the Function\'s node selector does not match this node: not serving it here');
      this.opts.invoker.remove(ns, name);
      this.loaded.delete(key);
      this.unwatch(key);
      this.opts.serving?.(ns, name, false);
      return;
    }
    const spec = obj.spec as FunctionSpec;
    const generation = obj.metadata.generation ?? 1;
    const watched = this.opts.modules.watchPath(spec.module);
    if (watched) this.watchFile(key, watched);
    else this.unwatch(key);
    const prev = this.loaded.get(key);
    const ref = parseModuleRef(spec.module);
    // A remote module already loaded for this generation needs no refetch; an upload is named by its digest, so it cannot have changed.
    if (prev && prev.generation === generation && this.opts.invoker.has(ns, name)) {
      if ((ref.type === 'url' || ref.type === 'oci') && (spec.digest ? prev.digest === spec.digest : true)) return this.opts.serving?.(ns, name, true);
      if (ref.type === 'blob' && prev.digest === ref.digest) return this.opts.serving?.(ns, name, true);
    }
    try {
      this.checkClass((obj.spec as { runtimeClassName?: string }).runtimeClassName);
      // A tag pinned earlier (status.resolvedModule) stays pinned across restarts and spec changes that keep spec.module.
      const mod = await this.opts.modules.load(spec.module, spec.digest, { namespace: ns, imagePullSecrets: spec.imagePullSecrets?.map((s) => s.name), pinned: obj.status?.resolvedModule });
      if (prev && prev.digest === mod.digest && prev.generation === generation && this.opts.invoker.has(ns, name)) {
        await this.writeStatus(obj, { digest: mod.digest, resolvedModule: mod.resolved }, { status: 'True', reason: 'ModuleLoaded', message: `serving ${mod.digest.slice(0, 19)}` });
        return;
      }
      const info = await this.opts.compiler.compile(mod.bytes);
      this.opts.invoker.set({ namespace: ns, name, digest: mod.digest, spec });
      this.loaded.set(key, { digest: mod.digest, generation });
      this.opts.serving?.(ns, name, true);
      const unused = unusedGrants(spec, info.capabilities);
      if (unused.length) await this.events.record(obj, 'Warning', 'CapabilityUnused', `the Function grants ${unused.join(', ')} but its module imports nothing that could use ${unused.length > 1 ? 'them' : 'it'}`);
      await this.writeStatus(
        obj,
        { digest: mod.digest, resolvedModule: mod.resolved, size: info.size, compileMs: round(info.compileMs), imports: info.imports.map((i) => `${i.module}.${i.name}`), capabilities: info.capabilities },
        { status: 'True', reason: 'ModuleLoaded', message: `serving ${mod.digest.slice(0, 19)}` },
      );
      if (!prev || prev.digest !== mod.digest) {
        await this.events.record(obj, 'Normal', prev ? 'ModuleUpdated' : 'ModuleLoaded', `loaded ${mod.digest.slice(0, 19)}${mod.resolved ? ` from ${mod.resolved}` : ''} (${info.size} bytes, compiled in ${round(info.compileMs)} ms)`);
      }
    } catch (err) {
      const reason = err instanceof ModuleLoadError ? err.reason : ((err as { code?: string }).code ? pascal((err as { code: string }).code) : 'ModuleLoadFailed');
      const message = (err as Error).message;
      if (!this.opts.invoker.has(ns, name)) this.opts.invoker.markNotReady(ns, name, message);
      const keeping = this.opts.invoker.has(ns, name) ? ` (still serving ${this.loaded.get(key)?.digest.slice(0, 19)})` : '';
      await this.writeStatus(obj, {}, { status: 'False', reason, message: message + keeping });
      await this.events.record(obj, 'Warning', reason, message);
      // Rethrow so the work queue retries with backoff: the file may appear or be fixed later.
      throw err;
    }
  }

  /** checkClass refuses a module Function whose RuntimeClass is missing or names a handler other than wasm. */
  private checkClass(className: string | undefined): void {
    if (className === undefined || className === 'wasm') return;
    const rc = this.classes.get(className);
    if (!rc) throw new ModuleLoadError('RuntimeClassNotFound', `spec.runtimeClassName: there is no RuntimeClass "${className}"; create it with handler wasm, or use the built-in class wasm`);
    const handler = String((rc.handler as string | undefined) ?? '');
    if (handler !== 'wasm') throw new ModuleLoadError('HandlerMismatch', `RuntimeClass ${className} has handler "${handler}", which runs images: set spec.image instead of spec.module, or name a class whose handler is wasm`);
  }

  private async writeStatus(obj: ResourceObject, fields: Record<string, unknown>, ready: Omit<Condition, 'type' | 'lastTransitionTime' | 'observedGeneration'>): Promise<void> {
    const def = this.opts.resources.kind('Function');
    const current = (await this.opts.resources.tryGet(def, obj.metadata.namespace, obj.metadata.name)) ?? obj;
    const old = current.status ?? {};
    const conditions = setCondition(old.conditions, { type: 'Ready', ...ready, observedGeneration: current.metadata.generation });
    const next = { ...old, ...fields, observedGeneration: current.metadata.generation, conditions };
    if (JSON.stringify(next) === JSON.stringify(old)) return;
    try {
      await this.opts.resources.updateStatus(def, current.metadata.namespace, current.metadata.name, { metadata: { resourceVersion: current.metadata.resourceVersion }, status: next });
    } catch (err) {
      if (err instanceof ApiError && (err.reason === 'Conflict' || err.reason === 'NotFound')) {
        this.controller.enqueue(cacheKey(obj));
        return;
      }
      throw err;
    }
  }

  private watchFile(key: string, path: string): void {
    const existing = this.watchers.get(key);
    if (existing?.path === path) return;
    this.unwatch(key);
    try {
      // Watch the directory: build tools often replace the file (new inode), which a file watch would miss.
      const file = basename(path);
      let timer: NodeJS.Timeout | undefined;
      const w = watch(dirname(path), { persistent: false }, (_ev, changed) => {
        if (changed && changed !== file) return;
        if (timer) clearTimeout(timer);
        timer = setTimeout(() => this.controller.enqueue(key), 100);
      });
      w.on('error', () => this.unwatch(key));
      this.watchers.set(key, { path, w });
    } catch {
      // The directory may not exist yet; resync and retries will pick the module up.
    }
  }

  private unwatch(key: string): void {
    const w = this.watchers.get(key);
    if (w) {
      w.w.close();
      this.watchers.delete(key);
    }
  }
}

/** unusedGrants lists capabilities a Function grants that its module cannot use. */
export function unusedGrants(spec: FunctionSpec, moduleCaps: string[]): string[] {
  const caps = new Set(moduleCaps);
  const c = spec.capabilities ?? {};
  const out: string[] = [];
  if (c.dirs?.length && !caps.has('dirs')) out.push('directories');
  if (c.memfs && !caps.has('dirs')) out.push('an in-memory filesystem');
  if ((Object.keys(c.env ?? {}).length || Object.keys(spec.env ?? {}).length) && !caps.has('env')) out.push('environment variables');
  if (c.clock && !caps.has('clocks')) out.push('a clock');
  if (c.random && !caps.has('random')) out.push('randomness');
  return out;
}

function pascal(code: string): string {
  return code.replace(/(^|_)([a-z])/g, (_m, _u, c: string) => c.toUpperCase());
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

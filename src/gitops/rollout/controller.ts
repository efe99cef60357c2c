import type { Logger } from 'pino';

import { ApiError } from '../../api/errors.js';
import { type Condition, ROLLOUT_ABORT_ANNOTATION as ABORT_ANNOTATION, ROLLOUT_PROMOTE_ANNOTATION as PROMOTE_ANNOTATION, type RolloutPlan, rolloutPlan, setCondition } from '../../api/kinds/index.js';
import type { ResourceObject } from '../../api/kinds/types.js';
import type { ResourceService } from '../../api/resources.js';
import { cacheKey, Controller, EventRecorder, Informer } from '../../controllers/runtime/index.js';

import { type FunctionMetricsReader, type FunctionSample, measure, type Measurement, type RegoCondition, windowBetween } from './analysis.js';
import { RolloutConflictError } from './errors.js';
import { RegoConditions } from './rego.js';
import { advance, type Phase, startState, type StepState } from './steps.js';
import { previewTraffic, splitTraffic } from './traffic.js';
import { CANARY_LABEL, canaryName, RolloutWrites } from './writes.js';

export interface RolloutControllerOptions {
  resources: ResourceService;
  logger: Logger;
  /** The per-Function counters the analysis measures. */
  metrics: FunctionMetricsReader;
  /** The Function and Route informers to share (the function and route controllers'); made here when absent. */
  functions?: Informer;
  routes?: Informer;
  /** Milliseconds since the epoch; injected so tests drive time. */
  clock?: () => number;
  /** How often a rollout waiting on another object (a Function becoming Ready, a Route programmed) looks again. */
  pollMs?: number;
  /** How long a canary Function may take to become Ready before the rollout aborts. */
  canaryReadyTimeoutMs?: number;
  /** Deadline of one rego condition. */
  regoTimeoutMs?: number;
}

type Finishing = { action: 'promote' } | { action: 'abort'; reason: string };

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- status as stored, written only by this controller
type Any = any;

/**
 * RolloutController runs Rollouts: it keeps a canary Function beside the stable one, moves the
 * Route's weights through the steps, measures the canary at the analysis interval, and promotes (the
 * stable Function takes the new version, the Route returns to it) or aborts (the Route returns to
 * stable at once). Everything it needs to resume is in the Rollout's status, except the counters'
 * baseline, which a restart takes anew.
 */
export class RolloutController {
  readonly rollouts: Informer;
  readonly functions: Informer;
  readonly routes: Informer;
  readonly controller: Controller;
  private readonly events: EventRecorder;
  private readonly clock: () => number;
  private readonly pollMs: number;
  private readonly rego: RegoConditions;
  private readonly writes: RolloutWrites;
  /** The last counters read per rollout, to measure the next window from. */
  private readonly baselines = new Map<string, { module: string; sample: FunctionSample | undefined; at: number }>();
  /** The resourceVersion of each Rollout's last status write, so a cached copy older than it is not acted on. */
  private readonly written = new Map<string, number>();
  /** Deleted Rollouts whose canary and Routes still need cleaning up. */
  private readonly tombstones = new Map<string, ResourceObject>();

  constructor(private readonly opts: RolloutControllerOptions) {
    const { resources, logger } = opts;
    this.clock = opts.clock ?? Date.now;
    this.pollMs = opts.pollMs ?? 200;
    this.rego = new RegoConditions(opts.regoTimeoutMs ?? 250);
    this.writes = new RolloutWrites(resources);
    this.rollouts = new Informer(resources, resources.kind('Rollout'), logger);
    this.functions = opts.functions ?? new Informer(resources, resources.kind('Function'), logger);
    this.routes = opts.routes ?? new Informer(resources, resources.kind('Route'), logger);
    this.events = new EventRecorder(resources, 'rollout-controller', logger);
    this.controller = new Controller({ name: 'rollouts', logger, keys: () => this.rollouts.list().map(cacheKey), reconcile: (k) => this.reconcile(k), resyncMs: 30_000 });
    const enqueue = (o: ResourceObject) => this.controller.enqueue(cacheKey(o));
    this.rollouts.addHandlers({
      onAdd: enqueue,
      onDelete: (o) => {
        this.tombstones.set(cacheKey(o), o);
        enqueue(o);
      },
      // Promote and abort are annotations: they do not change the generation but must act at once.
      onUpdate: (a, b) => (a.metadata.generation !== b.metadata.generation || JSON.stringify(a.metadata.annotations) !== JSON.stringify(b.metadata.annotations)) && enqueue(b),
    });
    const related = (o: ResourceObject) => {
      const ns = o.metadata.namespace ?? 'default';
      for (const ro of this.rollouts.list()) {
        if ((ro.metadata.namespace ?? 'default') !== ns) continue;
        const s = ro.spec ?? {};
        const names = [s.functionRef?.name, s.functionRef?.name && canaryName(s.functionRef.name), s.routeRef?.name, s.strategy?.blueGreen?.previewRouteRef?.name];
        if (names.includes(o.metadata.name)) enqueue(ro);
      }
    };
    for (const inf of [this.functions, this.routes]) inf.addHandlers({ onAdd: related, onDelete: related, onUpdate: (_a, b) => related(b) });
  }

  async start(): Promise<void> {
    await Promise.all([this.rollouts.start(), this.opts.functions ? undefined : this.functions.start(), this.opts.routes ? undefined : this.routes.start()]);
    this.controller.start();
  }

  async stop(): Promise<void> {
    this.rollouts.stop();
    if (!this.opts.functions) this.functions.stop();
    if (!this.opts.routes) this.routes.stop();
    await this.controller.stop();
  }

  private async reconcile(key: string): Promise<{ requeueAfterMs?: number } | void> {
    const ro = this.rollouts.get(key);
    if (!ro) {
      this.written.delete(key);
      return this.cleanUpDeleted(key);
    }
    this.tombstones.delete(key);
    // Acting on a status older than our last write would replay steps already taken (a weight set
    // back for a moment): wait for the informer to catch up.
    if (Number(ro.metadata.resourceVersion) < (this.written.get(key) ?? 0)) return { requeueAfterMs: 10 };
    const ns = ro.metadata.namespace ?? 'default';
    const old: Any = ro.status ?? {};
    const status: Any = structuredClone(old);
    status.observedGeneration = ro.metadata.generation;
    const { plan, errors } = rolloutPlan(ro.spec);
    if (!plan) {
      status.message = `invalid spec: ${errors.map((e) => `${e.field}: ${e.message}`).join('; ')}`;
      return this.writeStatus(ro, status);
    }
    const fn = this.functions.get(`${ns}/${plan.functionName}`);
    const route = this.routes.get(`${ns}/${plan.routeName}`);
    const preview = plan.strategy.kind === 'blueGreen' ? this.routes.get(`${ns}/${plan.strategy.previewRouteName}`) : undefined;
    const missing = [!fn && `Function ${plan.functionName}`, !route && `Route ${plan.routeName}`, plan.strategy.kind === 'blueGreen' && !preview && `Route ${plan.strategy.previewRouteName}`].filter(Boolean);
    if (missing.length || !fn || !route) {
      status.message = `waiting for ${missing.join(' and ')} in namespace ${ns}`;
      return this.writeStatus(ro, status);
    }

    const now = this.clock();
    const requests = this.manualRequests(ro, status);
    if (status.stableModule === undefined) {
      // First sight: what the stable Function serves now is the stable version.
      status.stableModule = fn.spec?.[plan.canaryField];
      status.phase = 'Healthy';
      status.canaryWeight = 0;
      status.currentStepIndex = 0;
      delete status.message;
    }
    let wake: number | undefined;
    if (status.finishing === undefined) {
      const running = status.phase === 'Progressing' || status.phase === 'Paused';
      if (plan.canaryRef === status.stableModule) {
        if (running) status.finishing = this.abortNow(ro, status, 'spec.canary was set back to the stable version');
        // Healthy already (just promoted, say) keeps its message.
        else if (status.phase !== 'Healthy' || !status.message) this.settle(status, 'Healthy', `the stable Function serves ${short(status.stableModule)}`);
      } else if (status.phase === 'Degraded' && status.canaryModule === plan.canaryRef) {
        // An aborted version stays aborted until spec.canary names another one.
      } else {
        if (!running || status.canaryModule !== plan.canaryRef) this.begin(ro, status, plan, route, preview, now);
        const ready = requests.abort ? 'aborted' : this.canaryReady(ro, status, plan, fn, now);
        if (ready === 'aborted') status.finishing = this.abortNow(ro, status, `aborted by ${requests.abort}`);
        else if (ready === 'waiting') {
          wake = now + this.pollMs;
          // A promote asked for before the canary is Ready applies once it is.
          status.handled = { ...status.handled, promote: old.handled?.promote };
        } else if (ready === 'ready') wake = await this.step(ro, status, plan, key, ns, now, requests);
      }
    }
    try {
      await this.ensureCanary(ro, status, plan, fn);
    } catch (err) {
      // Refused for good (admission, validation, a Function of that name that is not ours): retrying cannot help.
      if (!(err instanceof RolloutConflictError || (err instanceof ApiError && [400, 403, 422].includes(err.httpStatus)))) throw err;
      status.finishing = this.abortNow(ro, status, `the canary Function could not be written: ${err.message}`);
    }
    await this.annotateStable(ro, status, plan, fn);
    const routesDone = await this.ensureRoutes(ro, status, plan, route, preview);
    if (status.finishing) {
      const done = await this.finish(ro, status, plan, fn, routesDone);
      if (!done) wake = now + this.pollMs;
    }
    const next = await this.writeStatus(ro, status);
    if (next === undefined && wake !== undefined) return { requeueAfterMs: Math.max(1, wake - this.clock()) };
    return next;
  }

  /** manualRequests reads promote and abort annotations not acted on yet, and marks them handled. */
  private manualRequests(ro: ResourceObject, status: Any): { promote?: 'step' | 'full'; abort?: string } {
    const ann = ro.metadata.annotations ?? {};
    const handled = { ...(status.handled ?? {}) };
    const out: { promote?: 'step' | 'full'; abort?: string } = {};
    const p = ann[PROMOTE_ANNOTATION];
    if (p !== undefined && p !== handled.promote) {
      out.promote = p.trim().split(/\s+/).includes('full') ? 'full' : 'step';
      handled.promote = p;
    }
    const a = ann[ABORT_ANNOTATION];
    if (a !== undefined && a !== handled.abort) {
      out.abort = 'skiff rollout abort';
      handled.abort = a;
    }
    status.handled = handled;
    return out;
  }

  /** begin starts a rollout of plan.canaryRef (anew when another canary was running). */
  private begin(ro: ResourceObject, status: Any, plan: RolloutPlan, route: ResourceObject, preview: ResourceObject | undefined, now: number): void {
    const s = startState(now);
    // The rules from before the rollout are kept from the first start: a restarted rollout's Route is still split.
    status.stableHttp ??= structuredClone(route.spec?.http ?? []);
    if (preview) status.previewHttp ??= structuredClone(preview.spec?.http ?? []);
    status.canaryModule = plan.canaryRef;
    status.startedAt = new Date(now).toISOString();
    status.analysis = undefined;
    writeState(status, s);
    this.baselines.delete(cacheKey(ro));
    this.opts.logger.info({ rollout: cacheKey(ro), canary: plan.canaryRef }, 'rollout started');
  }

  /**
   * canaryReady says whether the canary Function serves the canary version: `ready`, `waiting`, or
   * `failed` (it did not load, or not in time: the rollout is aborted).
   */
  private canaryReady(ro: ResourceObject, status: Any, plan: RolloutPlan, stable: ResourceObject, now: number): 'ready' | 'waiting' | 'failed' {
    const ns = ro.metadata.namespace ?? 'default';
    if (plan.canaryField === 'module' && stable.spec?.digest && !plan.canaryDigest) {
      status.finishing = this.abortNow(ro, status, `the stable Function ${plan.functionName} pins spec.digest, so the canary needs one too: set spec.canary.digest`);
      return 'failed';
    }
    const c = this.functions.get(`${ns}/${canaryName(plan.functionName)}`);
    const matches = c && c.spec?.[plan.canaryField] === plan.canaryRef && c.metadata.labels?.[CANARY_LABEL] === ro.metadata.name;
    const cond = (c?.status?.conditions as Condition[] | undefined)?.find((x) => x.type === 'Ready');
    const current = matches && c.status?.observedGeneration === c.metadata.generation;
    if (current && cond?.status === 'True') return 'ready';
    const since = Date.parse(status.startedAt ?? '') || now;
    // A wasm module that failed to load will not load on its own; a container may still be starting.
    const failedLoad = current && cond?.status === 'False' && plan.canaryField === 'module';
    if (failedLoad || now - since > (this.opts.canaryReadyTimeoutMs ?? 60_000)) {
      const why = failedLoad ? `${cond!.reason}: ${cond!.message}` : `not Ready after ${Math.round((now - since) / 1000)}s`;
      status.finishing = this.abortNow(ro, status, `the canary Function ${canaryName(plan.functionName)} did not become Ready (${why})`);
      return 'failed';
    }
    status.message = `waiting for the canary Function ${canaryName(plan.functionName)} to become Ready`;
    return 'waiting';
  }

  /** step measures the canary when due and runs the step machine; it returns when to look again. */
  private async step(ro: ResourceObject, status: Any, plan: RolloutPlan, key: string, ns: string, now: number, requests: { promote?: 'step' | 'full'; abort?: string }): Promise<number | undefined> {
    const analysis = plan.strategy.analysis;
    let measurement: Measurement | undefined;
    let nextMeasure: number | undefined;
    const live = plan.strategy.kind === 'blueGreen' || status.canaryWeight > 0;
    if (analysis && live) {
      const canary = canaryName(plan.functionName);
      const base = this.baselines.get(key);
      if (!base || base.module !== plan.canaryRef) {
        this.baselines.set(key, { module: plan.canaryRef, sample: this.opts.metrics.snapshot(ns, canary), at: now });
        nextMeasure = now + analysis.intervalMs;
      } else if (now >= base.at + analysis.intervalMs) {
        const sample = this.opts.metrics.snapshot(ns, canary);
        const rolloutInput = { name: ro.metadata.name, namespace: ns, canaryModule: plan.canaryRef, stableModule: status.stableModule, weight: status.canaryWeight };
        measurement = await measure(analysis, windowBetween(base.sample, sample), rolloutInput, this.regoCondition);
        this.baselines.set(key, { module: plan.canaryRef, sample, at: now });
        nextMeasure = now + analysis.intervalMs;
      } else nextMeasure = base.at + analysis.intervalMs;
    }
    const out = advance(plan.strategy, readState(status, now), { now, measurement, promote: requests.promote, abort: requests.abort });
    writeState(status, out.state);
    if (measurement) {
      status.analysis = { measuredAt: new Date(now).toISOString(), verdict: measurement.verdict, requests: measurement.requests, errors5xx: measurement.errors5xx, metrics: measurement.metrics, passes: out.state.passes, failures: out.state.failures, inconclusive: out.state.inconclusive, ...(measurement.reason ? { reason: measurement.reason } : {}) };
    }
    for (const e of out.effects) {
      if (e.type === 'event') await this.events.record(ro, e.warning ? 'Warning' : 'Normal', e.reason, e.message);
      else if (e.type === 'promote') status.finishing = { action: 'promote' } satisfies Finishing;
      else if (e.type === 'abort') status.finishing = this.abortNow(ro, status, e.reason);
    }
    if (status.finishing) return undefined;
    // A measurement that came in since the weight changed would judge the old split: start the window now.
    if (out.effects.some((e) => e.type === 'setWeight')) {
      const base = this.baselines.get(key);
      if (base && analysis) this.baselines.set(key, { ...base, sample: this.opts.metrics.snapshot(ns, canaryName(plan.functionName)), at: now });
    }
    const wakes = [out.wakeAt, nextMeasure].filter((x): x is number => x !== undefined);
    return wakes.length ? Math.min(...wakes) : undefined;
  }

  private regoCondition: RegoCondition = (m, input) => this.rego.evaluate(m, input);

  /** abortNow turns the rollout Degraded with the reason and starts returning all traffic to stable. */
  private abortNow(ro: ResourceObject, status: Any, reason: string): Finishing {
    status.phase = 'Degraded';
    status.canaryWeight = 0;
    status.message = `aborted: ${reason}; all traffic is back on the stable version`;
    void this.events.record(ro, 'Warning', 'Aborted', `rollout of ${short(status.canaryModule)} aborted: ${reason}`);
    this.opts.logger.warn({ rollout: cacheKey(ro), reason }, 'rollout aborted');
    return { action: 'abort', reason };
  }

  /** ensureCanary keeps the canary Function a copy of the stable one with the canary version, while a rollout runs. */
  private async ensureCanary(ro: ResourceObject, status: Any, plan: RolloutPlan, stable: ResourceObject): Promise<void> {
    const running = (status.phase === 'Progressing' || status.phase === 'Paused') && status.finishing === undefined && status.canaryModule === plan.canaryRef;
    if (!running) return;
    await this.writes.canary(ro, plan, stable, this.functions.get(`${ro.metadata.namespace ?? 'default'}/${canaryName(plan.functionName)}`));
  }

  /** annotateStable keeps the stable Function annotated and at its version: the canary's once a promotion begins. */
  private async annotateStable(ro: ResourceObject, status: Any, plan: RolloutPlan, fn: ResourceObject): Promise<void> {
    const promoting = status.finishing?.action === 'promote';
    const version = promoting ? plan.canaryRef : status.stableModule;
    if (version !== undefined) await this.writes.stable(ro, plan, fn, version, promoting ? plan.canaryDigest : undefined);
  }

  /**
   * ensureRoutes writes the Routes' rules for where the rollout stands (one write per Route, so each
   * weight change is one gateway update) and says whether the gateway has programmed them.
   */
  private async ensureRoutes(ro: ResourceObject, status: Any, plan: RolloutPlan, route: ResourceObject, preview: ResourceObject | undefined): Promise<boolean> {
    const stable = plan.functionName;
    const canary = canaryName(plan.functionName);
    const running = (status.phase === 'Progressing' || status.phase === 'Paused') && status.finishing === undefined;
    // While promoting, the split stays until the stable Function serves the new version, so no request meets the old one late.
    const holdSplit = status.finishing?.action === 'promote' && !status.stableServesCanary;
    let done = true;
    const desiredMain = status.stableHttp ? (plan.strategy.kind === 'canary' && (running || holdSplit) ? splitTraffic(status.stableHttp, stable, canary, status.canaryWeight ?? 0) : status.stableHttp) : route.spec?.http;
    done = (await this.writes.route(ro, route, desiredMain)) && done;
    if (preview) {
      const desiredPreview = status.previewHttp ? ((running || holdSplit) && plan.strategy.kind === 'blueGreen' ? previewTraffic(status.previewHttp, stable, canary) : status.previewHttp) : preview.spec?.http;
      done = (await this.writes.route(ro, preview, desiredPreview)) && done;
    }
    return done;
  }

  /**
   * finish runs a promotion or an abort to its end: for a promotion the stable Function first serves
   * the new version; then (both) the Routes go back to their rules from before the rollout and the
   * gateway runs them; then the canary is deleted. It says whether everything is done.
   */
  private async finish(ro: ResourceObject, status: Any, plan: RolloutPlan, fn: ResourceObject, routesDone: boolean): Promise<boolean> {
    const f = status.finishing as Finishing;
    const ns = ro.metadata.namespace ?? 'default';
    if (f.action === 'promote' && !status.stableServesCanary) {
      const cond = (fn.status?.conditions as Condition[] | undefined)?.find((x) => x.type === 'Ready');
      if (fn.spec?.[plan.canaryField] === plan.canaryRef && fn.status?.observedGeneration === fn.metadata.generation && cond?.status === 'True') {
        // The Routes go back to the stable Function on the next turn, now that it serves the new version.
        status.stableServesCanary = true;
      } else {
        status.message = `promoting: waiting for the stable Function ${plan.functionName} to serve ${short(plan.canaryRef)}${cond?.status === 'False' ? ` (${cond.reason}: ${cond.message})` : ''}`;
      }
      return false;
    }
    if (!routesDone) return false;
    const canary = this.functions.get(`${ns}/${canaryName(plan.functionName)}`);
    if (canary && canary.metadata.labels?.[CANARY_LABEL] === ro.metadata.name) await this.writes.deleteCanary(ns, canary.metadata.name);
    delete status.finishing;
    delete status.stableServesCanary;
    delete status.stableHttp;
    delete status.previewHttp;
    if (f.action === 'promote') {
      const steps = plan.strategy.kind === 'canary' ? plan.strategy.steps.length : 1;
      status.stableModule = plan.canaryRef;
      status.currentStepIndex = steps;
      this.settle(status, 'Healthy', `promoted: the stable Function serves ${short(plan.canaryRef)}`);
      await this.events.record(ro, 'Normal', 'Promoted', `${short(plan.canaryRef)} promoted: the stable Function ${plan.functionName} serves it and takes all the traffic`);
      this.opts.logger.info({ rollout: cacheKey(ro), module: plan.canaryRef }, 'rollout promoted');
    } else {
      status.phase = 'Degraded';
      status.canaryWeight = 0;
    }
    this.baselines.delete(cacheKey(ro));
    return true;
  }

  private settle(status: Any, phase: Phase, message: string): void {
    status.phase = phase;
    status.canaryWeight = 0;
    status.message = message;
  }

  /** cleanUpDeleted returns a deleted Rollout's Routes to their rules from before and removes its canary. */
  private async cleanUpDeleted(key: string): Promise<void> {
    const ro = this.tombstones.get(key);
    this.baselines.delete(key);
    if (!ro) return;
    const ns = ro.metadata.namespace ?? 'default';
    const status: Any = ro.status ?? {};
    const restore: Array<[string | undefined, unknown[] | undefined]> = [[ro.spec?.routeRef?.name, status.stableHttp], [ro.spec?.strategy?.blueGreen?.previewRouteRef?.name, status.previewHttp]];
    for (const [name, http] of restore) if (name && this.routes.get(`${ns}/${name}`)) await this.writes.restoreRoute(ns, name, http);
    const fnName = ro.spec?.functionRef?.name;
    if (fnName) {
      if (this.functions.get(`${ns}/${fnName}`)) await this.writes.dropAnnotation('Function', ns, fnName);
      const canary = this.functions.get(`${ns}/${canaryName(fnName)}`);
      if (canary?.metadata.labels?.[CANARY_LABEL] === ro.metadata.name) await this.writes.deleteCanary(ns, canary.metadata.name);
    }
    this.tombstones.delete(key);
  }

  private async writeStatus(ro: ResourceObject, status: Any): Promise<{ requeueAfterMs: number } | undefined> {
    const gen = ro.metadata.generation;
    const phase = status.phase as Phase | undefined;
    status.conditions = setCondition(status.conditions, { type: 'Ready', status: phase === 'Healthy' ? 'True' : 'False', reason: phase ?? 'Pending', message: status.message ?? '', observedGeneration: gen });
    status.conditions = setCondition(status.conditions, { type: 'Progressing', status: phase === 'Progressing' || phase === 'Paused' ? 'True' : 'False', reason: phase ?? 'Pending', message: status.message ?? '', observedGeneration: gen });
    for (const k of Object.keys(status)) if (status[k] === undefined) delete status[k];
    if (JSON.stringify(status) === JSON.stringify(ro.status ?? {})) return undefined;
    try {
      const out = await this.opts.resources.updateStatus(this.opts.resources.kind('Rollout'), ro.metadata.namespace, ro.metadata.name, { metadata: { resourceVersion: ro.metadata.resourceVersion }, status });
      this.written.set(cacheKey(ro), Number(out.object.metadata.resourceVersion));
      return undefined;
    } catch (err) {
      // The informer has not seen the latest version yet: look again shortly with it.
      if (err instanceof ApiError && (err.reason === 'Conflict' || err.reason === 'NotFound')) return { requeueAfterMs: 20 };
      throw err;
    }
  }
}

function readState(status: Any, now: number): StepState {
  return {
    phase: status.phase ?? 'Progressing',
    stepIndex: status.currentStepIndex ?? 0,
    weight: status.canaryWeight ?? 0,
    stepStartedAt: Date.parse(status.stepStartedAt ?? '') || now,
    passes: status.analysis?.passes ?? 0,
    failures: status.analysis?.failures ?? 0,
    inconclusive: status.analysis?.inconclusive ?? 0,
    message: status.message ?? '',
  };
}

function writeState(status: Any, s: StepState): void {
  status.phase = s.phase;
  status.currentStepIndex = s.stepIndex;
  status.canaryWeight = s.weight;
  status.stepStartedAt = new Date(s.stepStartedAt).toISOString();
  status.message = s.message;
  status.analysis = { ...(status.analysis ?? {}), passes: s.passes, failures: s.failures, inconclusive: s.inconclusive };
}

/** short shortens a module reference for messages (a blob digest to its first hex digits). */
function short(ref: string | undefined): string {
  if (!ref) return '<none>';
  return ref.startsWith('blob:sha256:') ? ref.slice(0, 24) : ref;
}

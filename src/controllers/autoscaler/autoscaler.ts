import type { Logger } from 'pino';

import { ApiError } from '../../api/errors.js';
import { runsImage } from '../../api/kinds/function-workload.js';
import { parseCpuMillis } from '../../api/kinds/function-workload.js';
import type { ResourceObject } from '../../api/kinds/types.js';
import type { ResourceService } from '../../api/resources.js';
import { type Clock, systemClock } from '../../autoscaling/clock.js';
import { type Forecast, IdleHistogram, type IdleWindow, Predictor, RequestHistory } from '../../autoscaling/forecast/index.js';
import { HpaScaler, replicasFor } from '../../autoscaling/hpa.js';
import { KpaScaler } from '../../autoscaling/kpa.js';
import { resolveScalePolicy, type ScalePolicy, type ScaleSpec } from '../../autoscaling/policy.js';
import { cronDesired, readMetricsApi } from '../../autoscaling/triggers/index.js';
import type { Store } from '../../store/index.js';
import { cacheKey, EventRecorder, Informer } from '../runtime/index.js';

import { type Candidate, decide, type Decision, type ScaleReason } from './decide.js';
import { evaluateHpa, type HpaEvaluation, type MetricSource } from './hpa-metrics.js';
import type { ScaleTarget } from './targets.js';

/** The gateway's side of a Function (its ScaleGate): what the autoscaler samples and opens. */
export interface Gate {
  readonly ready: boolean;
  readonly inflight: number;
  readonly waiting: number;
  readonly totalColdStarts: number;
  sample(): { requests: number; concurrency: number; coldStarts: number; waiting: number; periodMs: number };
  open(): void;
  close(): void;
  fail(why: string): void;
}

/** The gateway's gates, by `namespace/name`. */
export interface Gates {
  ensure(key: string): Gate;
  get(key: string): Gate | undefined;
  remove(key: string, why?: string): void;
  useOwner(owner: { activate(key: string): string | undefined }): void;
}

/** One Function's traffic at one node's gateway over that node's last tick. */
export interface TrafficSample {
  /** Requests per second. */
  rps: number;
  /** Average requests in flight (time-weighted). */
  concurrency: number;
}

/** What another node's gateway saw, by Function (`namespace/name`). */
export interface PeerSamples {
  node: string;
  functions: Record<string, TrafficSample>;
}

/**
 * PeerSampler reaches the cluster's other nodes for the leader: their own gates' samples, which
 * it adds to its own before deciding, so that traffic entering any node's gateway counts.
 */
export interface PeerSampler {
  /** Whether there is another node to ask now: without one a tick decides at once, as a lone node does. */
  hasPeers(): boolean;
  /** The answering peers' samples; a peer that fails or is late is left out (the sampler logs and counts it). */
  collect(): Promise<PeerSamples[]>;
  /** Failed fetches so far, by node. */
  failures?(): ReadonlyMap<string, number>;
}

/** A counter or gauge of Skiff's own metrics, summed over the series that carry the labels. */
export type MetricReader = (name: string, labels: Record<string, string>) => Promise<{ value: number; type: string } | undefined>;

export interface AutoscalerOptions {
  resources: ResourceService;
  store: Store;
  logger: Logger;
  gates: Gates;
  /** Wasm Functions' replicas (warm instances) and container/VM Functions' (processes, VMs). */
  wasm: ScaleTarget;
  workloads: ScaleTarget;
  clock?: Clock;
  /** How often decisions are made (default 2 s, Knative's tick). 0: only when `tick()` is called (tests, the benchmark). */
  tickMs?: number;
  /** Skiff's own metrics, for `skiff` triggers and an HPA's Object/External metrics. */
  readMetric?: MetricReader;
  /** Fetches a metrics-api trigger's URL (through the upstream guard). */
  fetchJson?: (url: string, signal: AbortSignal) => Promise<unknown>;
  /** Time a new replica of each class takes to become ready, the predictive lead when a Function sets none. */
  coldStartMs?: { wasm: number; container: number; vm: number };
  /**
   * In a cluster, what makes the decisions once: while `isLeader()` this node decides every
   * Function's replica count, evaluates HPAs and writes (status, spec.replicas of an HPA's target,
   * HPA status, Events, request histories) through the leader's fenced `resources` and `store`. A
   * node that does not lead still samples its own gates and owns their activation, and sizes its own
   * replicas to the count the leader last recorded in the Function's status. Without it this node
   * decides alone.
   */
  leader?: { isLeader(): boolean; resources: ResourceService; store: Store };
  /** In a cluster, the other nodes' samples the leader adds to its own gates' each tick. */
  peers?: PeerSampler;
}

/** AutoscalerStats is one Function's scaling state, for the metrics exporter and the dashboard. */
export interface AutoscalerStats {
  namespace: string;
  name: string;
  class: 'wasm' | 'container' | 'vm';
  desired: number;
  replicas: number;
  ready: number;
  panic: boolean;
  reason: ScaleReason;
  coldStarts: number;
  waiting: number;
  scaleUps: number;
  scaleDowns: number;
  forecastRate?: number;
  forecastError?: number;
}

/**
 * The keep-alive predictive scaling must do at least as well as: ten minutes after the last request,
 * the common FaaS default. A forecast keeps a replica when requests are expected more often than
 * that; the idle-time window meets no more requests cold than it would have, for less replica time.
 */
const REFERENCE_KEEPALIVE_MS = 10 * 60_000;
/** Requests expected within the reference keep-alive below which an hour counts as quiet. */
const QUIET_EXPECTED = 0.2;
/** The forecast, idle-time window and cold start in status are rewritten at most this often (when they changed). */
const STATUS_REFRESH_MS = 30_000;
/** The request history is written to the store this often (it survives restarts; a crash loses at most this much). */
const HISTORY_SAVE_MS = 5 * 60_000;
/** External readings (metrics-api, Skiff metrics) are refreshed this often, like KEDA's polling interval. */
const EXTERNAL_POLL_MS = 15_000;
const HISTORY_PREFIX = '/skiff/autoscaling/history/';
const IDLE_PREFIX = '/skiff/autoscaling/idle/';
/** Scale Events are written this long after the decision, together. */
const EVENT_DELAY_MS = 50;
/** HorizontalPodAutoscalers are evaluated this often, kube-controller-manager's default sync period. */
const HPA_SYNC_MS = 15_000;
/** A node's own sample is served to the leader for at least this long after its tick. */
const SAMPLE_FRESH_MS = 6_000;

interface Scaled {
  key: string;
  namespace: string;
  name: string;
  obj: ResourceObject;
  cls: 'wasm' | 'container' | 'vm';
  policy: ScalePolicy;
  kpa: KpaScaler;
  /** The HPA algorithm, for `class: hpa` and for Functions an HPA object targets. */
  hpa: HpaScaler;
  /** spec.scale.behavior's limits on top of a KPA recommendation, when given. */
  behavior?: HpaScaler;
  history: RequestHistory;
  predictor: Predictor;
  /** Idle times between the Function's busy moments, for the idle-time window of rarely called Functions. */
  idle: IdleHistogram;
  /** When the last tick with requests was. */
  lastRequestAt?: number;
  idleWindow?: IdleWindow;
  /** Replicas applied last. */
  applied: number;
  decision: Decision;
  panic: boolean;
  forecast?: Forecast;
  /** When the recommendation first became zero (the grace before the last replica goes). */
  zeroSince?: number;
  createdAt: number;
  lastTickAt: number;
  /** Whether traffic has been seen since the Function was created (initialScale holds until then). */
  seenTraffic: boolean;
  /** Seconds per request, smoothed: turns a forecast request rate into concurrency. */
  latencyS: number;
  /** The scaling metric's last value, for status. */
  metricValue: number;
  activationAt?: number;
  coldStartMs?: number;
  statusAt: number;
  statusSig: string;
  slowSig: string;
  historySavedAt: number;
  historyDirty: boolean;
  scaleUps: number;
  scaleDowns: number;
  /** Trigger readings: name → desired replicas, refreshed in the background. */
  external: Map<string, Candidate>;
  hpaEval?: HpaEvaluation;
  /** When an HPA targeting the Function was last evaluated, and what it decided. */
  hpaAt?: number;
  hpaDecision?: Decision;
  /** The gate's figures of the last tick, for HPA Object metrics naming this Function. */
  lastConcurrency: number;
  lastRps: number;
  /** This node's own gate over its last tick (not the cluster's sum): what other nodes' leader reads. */
  local?: TrafficSample & { at: number };
}

/**
 * FunctionAutoscaler decides every Function's replica count and applies it: Knative's KPA (or the
 * HPA algorithm) on the traffic the gateway's gates count, Holt-Winters forecasts of the request
 * rate, KEDA-style cron and metric triggers, spec.replicas set by hand or through the scale
 * subresource, and HorizontalPodAutoscaler objects. It is also the gates' owner: a request for a
 * Function at zero activates it here at once. Every change is an Event with its reason and inputs;
 * status shows the recommendation, its reason and the forecast.
 */
export class FunctionAutoscaler {
  readonly functions: Informer;
  private readonly hpas?: Informer;
  private readonly events: EventRecorder;
  private readonly clock: Clock;
  private readonly states = new Map<string, Scaled>();
  private timer?: NodeJS.Timeout;
  private externalAt = 0;
  private externalBusy = false;
  private readonly rates = new Map<string, { value: number; at: number }>();
  private readonly metricCache = new Map<string, number>();
  private stopped = false;
  private readonly pendingEvents: Array<{ obj: ResourceObject; reason: string; message: string }> = [];
  private eventTimer?: NodeJS.Timeout;
  private ledLastTick = false;
  /** Whether a tick is waiting for the peers' samples (a timer tick meanwhile is skipped). */
  private collecting = false;

  constructor(private readonly opts: AutoscalerOptions) {
    this.clock = opts.clock ?? systemClock;
    this.functions = new Informer(opts.resources, opts.resources.kind('Function'), opts.logger);
    try {
      this.hpas = new Informer(opts.resources, opts.resources.kind('HorizontalPodAutoscaler'), opts.logger);
    } catch {
      this.hpas = undefined;
    }
    this.events = new EventRecorder(opts.leader?.resources ?? opts.resources, 'autoscaler', opts.logger);
    this.functions.addHandlers({
      onAdd: (o) => this.upsert(o),
      // Status writes (the autoscaler's own among them) change no policy: only the object is kept.
      onUpdate: (a, b) => {
        const st = this.states.get(cacheKey(b));
        if (st && a.metadata.generation === b.metadata.generation) st.obj = b;
        else this.upsert(b);
      },
      onDelete: (o) => void this.forget(o),
    });
    opts.gates.useOwner({ activate: (key) => this.activate(key) });
  }

  async start(): Promise<void> {
    await this.hpas?.start();
    await this.functions.start();
    const tickMs = this.opts.tickMs ?? 2_000;
    if (tickMs > 0) {
      this.timer = setInterval(() => this.tick(), tickMs);
      this.timer.unref();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.functions.stop();
    this.hpas?.stop();
    if (this.eventTimer) clearTimeout(this.eventTimer);
    for (const e of this.pendingEvents.splice(0)) await this.events.record(e.obj, 'Normal', e.reason, e.message).catch(() => {});
    await Promise.all([...this.states.values()].map((st) => this.saveHistory(st)));
  }

  /** stats is every Function's scaling state, read at scrape time. */
  stats(): AutoscalerStats[] {
    const out: AutoscalerStats[] = [];
    for (const st of this.states.values()) {
      const obs = this.target(st).observe(st.namespace, st.name);
      const gate = this.opts.gates.get(st.key);
      out.push({
        namespace: st.namespace,
        name: st.name,
        class: st.cls,
        desired: st.applied,
        replicas: obs?.replicas ?? 0,
        ready: obs?.ready ?? 0,
        panic: st.panic,
        reason: st.decision.reason,
        coldStarts: gate?.totalColdStarts ?? 0,
        waiting: gate?.waiting ?? 0,
        scaleUps: st.scaleUps,
        scaleDowns: st.scaleDowns,
        forecastRate: st.forecast?.rate,
        forecastError: st.forecast?.error,
      });
    }
    return out;
  }

  /** seedHistory replaces a Function's request history and idle times (an import of recorded traffic). */
  seedHistory(namespace: string, name: string, history: RequestHistory, idle?: IdleHistogram, lastRequestAt?: number): void {
    const st = this.states.get(`${namespace}/${name}`);
    if (!st) return;
    st.history = history;
    st.predictor = new Predictor(history);
    if (idle) st.idle = idle;
    if (lastRequestAt !== undefined) st.lastRequestAt = lastRequestAt;
    st.historyDirty = true;
  }

  private target(st: Scaled): ScaleTarget {
    return st.cls === 'wasm' ? this.opts.wasm : this.opts.workloads;
  }

  private upsert(obj: ResourceObject): void {
    const key = cacheKey(obj);
    const spec = (obj.spec ?? {}) as { scale?: ScaleSpec; replicas?: number; runtimeClassName?: string; image?: string };
    const cls: Scaled['cls'] = runsImage(spec) ? (spec.runtimeClassName === 'vm' ? 'vm' : 'container') : 'wasm';
    let policy: ScalePolicy;
    try {
      policy = resolveScalePolicy(spec.scale, { replicas: spec.replicas, defaultMinScale: cls === 'wasm' ? 0 : 1 });
    } catch (err) {
      // Admission validated spec.scale; an object stored before that rule keeps its last policy.
      this.opts.logger.warn({ fn: key, err: (err as Error).message }, 'spec.scale does not resolve');
      return;
    }
    const gate = this.opts.gates.ensure(key);
    const st = this.states.get(key);
    if (st) {
      const classChanged = st.cls !== cls;
      st.obj = obj;
      st.policy = policy;
      st.cls = cls;
      st.kpa.update(policy);
      st.hpa.update(policy.behavior);
      st.behavior = spec.scale?.behavior ? (st.behavior ?? new HpaScaler(policy.behavior)) : undefined;
      st.behavior?.update(policy.behavior);
      if (classChanged) {
        st.applied = -1;
        gate.close();
      }
      return;
    }
    const now = this.clock.now();
    const history = new RequestHistory();
    const fresh: Scaled = {
      key,
      namespace: obj.metadata.namespace ?? 'default',
      name: obj.metadata.name,
      obj,
      cls,
      policy,
      kpa: new KpaScaler(policy),
      hpa: new HpaScaler(policy.behavior),
      behavior: spec.scale?.behavior ? new HpaScaler(policy.behavior) : undefined,
      history,
      predictor: new Predictor(history),
      idle: new IdleHistogram(),
      applied: -1,
      decision: { desired: policy.fixedReplicas ?? policy.initialScale, reason: policy.fixedReplicas !== undefined ? 'fixed' : 'initial' },
      panic: false,
      createdAt: now,
      lastTickAt: now,
      seenTraffic: false,
      latencyS: 0.01,
      metricValue: 0,
      statusAt: 0,
      statusSig: '',
      slowSig: '',
      historySavedAt: now,
      historyDirty: false,
      scaleUps: 0,
      scaleDowns: 0,
      external: new Map(),
      lastConcurrency: 0,
      lastRps: 0,
    };
    this.states.set(key, fresh);
    void this.loadHistory(fresh);
  }

  private async forget(obj: ResourceObject): Promise<void> {
    const key = cacheKey(obj);
    const st = this.states.get(key);
    this.states.delete(key);
    this.opts.gates.remove(key, 'the Function was deleted while the request waited for a replica');
    if (!st || !this.leads()) return;
    try {
      await this.writer().store.delete(HISTORY_PREFIX + key);
      await this.writer().store.delete(IDLE_PREFIX + key);
    } catch (err) {
      this.opts.logger.warn({ fn: key, err: (err as Error).message }, 'could not delete the request history');
    }
  }

  /**
   * activate is the gates' call for a request that found no ready replica: scale up now, without
   * waiting for the next tick. A Wasm Function is ready when this returns.
   */
  activate(key: string): string | undefined {
    const st = this.states.get(key);
    if (!st) return 'the Function is not known to the autoscaler yet';
    const target = this.target(st);
    if (!target.has(st.namespace, st.name)) return st.cls === 'wasm' ? 'its module is not loaded (see the Function\'s Ready condition)' : 'its image is not prepared yet (see the Function\'s Ready condition)';
    // spec.replicas set by hand holds; one an HPA writes is the HPA's, which scales from zero like KEDA.
    if (st.policy.fixedReplicas === 0 && !this.hpasByTarget().has(key)) return `spec.replicas is 0; scale it up (kubectl scale function ${st.name} --replicas=1)`;
    const blocked = target.blocked?.(st.namespace, st.name);
    if (blocked) return blocked;
    const n = Math.max(1, st.policy.activationScale, st.applied);
    st.activationAt ??= this.clock.now();
    // An HPA at zero counts the activated replica as its own until its next sync sees the traffic.
    if (st.hpaDecision && st.hpaDecision.desired < n) st.hpaDecision = { desired: n, reason: 'activation', detail: 'a request arrived with no replica ready' };
    st.zeroSince = undefined;
    if (st.applied !== n) this.apply(st, n, { desired: n, reason: 'activation', detail: 'a request arrived with no replica ready' });
    return undefined;
  }

  /**
   * samples is this node's own traffic per Function over its last tick, as served to the leader:
   * Functions with traffic only, and none older than a few ticks (a stalled autoscaler's last
   * figures would otherwise count forever).
   */
  samples(): Record<string, TrafficSample> {
    const now = this.clock.now();
    const fresh = Math.max(3 * (this.opts.tickMs ?? 2_000), SAMPLE_FRESH_MS);
    const out: Record<string, TrafficSample> = {};
    for (const st of this.states.values()) {
      const l = st.local;
      if (!l || now - l.at > fresh || (l.rps === 0 && l.concurrency === 0)) continue;
      out[st.key] = { rps: l.rps, concurrency: l.concurrency };
    }
    return out;
  }

  /** peerSampleFailures are the failed fetches of other nodes' samples, by node. */
  peerSampleFailures(): ReadonlyMap<string, number> {
    return this.opts.peers?.failures?.() ?? new Map();
  }

  /**
   * tick makes one round of decisions for every Function. On a lone node, a follower, or a leader
   * with no other node up, the round is done when tick returns; a cluster's leader first gathers the
   * other nodes' samples (tickAndWait tells when that round is done).
   */
  tick(): void {
    this.tickAndWait().catch((err: unknown) => this.opts.logger.error({ err: (err as Error).message }, 'autoscaler tick failed'));
  }

  /** tickAndWait is tick, resolving when the round's decisions are made. */
  async tickAndWait(): Promise<void> {
    if (this.stopped || this.collecting) return;
    const peers = this.opts.peers;
    let remote: Map<string, TrafficSample> | undefined;
    if (peers && this.leads() && peers.hasPeers()) {
      this.collecting = true;
      try {
        remote = sumPeers(await peers.collect());
      } catch (err) {
        this.opts.logger.warn({ err: (err as Error).message }, 'could not gather the other nodes\' autoscaler samples');
      } finally {
        this.collecting = false;
      }
    }
    this.decideAll(remote);
  }

  private decideAll(remote: Map<string, TrafficSample> | undefined): void {
    if (this.stopped) return;
    const now = this.clock.now();
    const leads = this.leads();
    if (leads && !this.ledLastTick) {
      // A new leader writes every Function's status afresh and evaluates HPAs at once.
      for (const st of this.states.values()) {
        st.statusSig = '';
        st.hpaAt = undefined;
      }
    }
    this.ledLastTick = leads;
    if (now - this.externalAt >= EXTERNAL_POLL_MS && !this.externalBusy) {
      this.externalAt = now;
      this.externalBusy = true;
      void this.refreshExternal().finally(() => (this.externalBusy = false));
    }
    const hpaByTarget = this.hpasByTarget();
    for (const st of this.states.values()) {
      try {
        this.step(st, now, hpaByTarget.get(st.key), remote?.get(st.key));
      } catch (err) {
        this.opts.logger.error({ fn: st.key, err: (err as Error).message }, 'autoscaler step failed');
      }
    }
  }

  /** refreshExternal re-reads every trigger and every HPA metric that is not the gate's own. */
  async refreshExternal(): Promise<void> {
    const now = this.clock.now();
    await Promise.all(
      [...this.states.values()].map(async (st) => {
        for (const [i, t] of st.policy.triggers.entries()) {
          const name = t.name ?? `${t.type}-${i}`;
          try {
            const c = await this.readTrigger(t, now);
            if (c) st.external.set(name, c);
            else st.external.delete(name);
          } catch (err) {
            st.external.delete(name);
            this.opts.logger.warn({ fn: st.key, trigger: name, err: (err as Error).message }, 'trigger could not be read');
            if (this.leads()) void this.events.record(st.obj, 'Warning', 'TriggerFailed', `trigger ${name}: ${(err as Error).message}`).catch(() => {});
          }
        }
      }),
    );
    for (const hpa of this.hpas?.list() ?? []) {
      for (const m of (hpa.spec?.metrics ?? []) as Array<Record<string, { metric?: { name: string; selector?: { matchLabels?: Record<string, string> } }; describedObject?: { kind: string; name: string } }>>) {
        const ext = m.external ?? m.object;
        if (!ext?.metric?.name) continue;
        const labels = { ...(ext.metric.selector?.matchLabels ?? {}) };
        if (m.object?.describedObject?.kind === 'Route') labels.route = `${hpa.metadata.namespace}/${m.object.describedObject.name}`;
        const v = await this.readSkiffMetric(ext.metric.name, labels, now);
        const k = metricKey(ext.metric.name, labels);
        if (v === undefined) this.metricCache.delete(k);
        else this.metricCache.set(k, v);
      }
    }
  }

  private async readTrigger(t: ScalePolicy['triggers'][number], now: number): Promise<Candidate | undefined> {
    const meta = t.metadata ?? {};
    if (t.type === 'cron') {
      const c = cronDesired(meta as never, now);
      return c.active ? { reason: 'cron', desired: c.desired, detail: `cron ${meta.start} – ${meta.end} ${meta.timezone ?? 'UTC'}` } : undefined;
    }
    const target = Number(meta.targetValue);
    const activation = Number(meta.activationTargetValue ?? 0);
    let value: number;
    if (t.type === 'metrics-api') {
      if (!this.opts.fetchJson) throw new Error('metrics-api triggers are not available on this server');
      value = await readMetricsApi(meta as never, { fetchJson: this.opts.fetchJson, timeoutMs: 5_000 });
    } else if (t.type === 'skiff') {
      const labels = meta.labels ? (JSON.parse(meta.labels) as Record<string, string>) : {};
      const got = await this.readSkiffMetric(meta.metricName ?? '', labels, now);
      if (got === undefined) throw new Error(`no series of ${meta.metricName} with labels ${meta.labels ?? '{}'}`);
      value = got;
    } else return undefined;
    if (!(value > activation)) return { reason: 'external', desired: 0, detail: `${t.type} ${value} ≤ activation ${activation}` };
    return { reason: 'external', desired: Math.ceil(value / target), detail: `${t.type} ${round(value)} / target ${target}` };
  }

  /** readSkiffMetric reads one of Skiff's own metrics: a gauge as it is, a counter as a per-second rate over the polls. */
  private async readSkiffMetric(name: string, labels: Record<string, string>, now: number): Promise<number | undefined> {
    const got = await this.opts.readMetric?.(name, labels);
    if (!got) return undefined;
    if (got.type !== 'counter') return got.value;
    const k = metricKey(name, labels);
    const prev = this.rates.get(k);
    this.rates.set(k, { value: got.value, at: now });
    if (!prev || now <= prev.at) return 0;
    return Math.max(0, (got.value - prev.value) / ((now - prev.at) / 1000));
  }

  private hpasByTarget(): Map<string, ResourceObject> {
    const out = new Map<string, ResourceObject>();
    for (const h of this.hpas?.list() ?? []) {
      const ref = h.spec?.scaleTargetRef as { kind?: string; name?: string } | undefined;
      if (ref?.kind === 'Function' && ref.name) out.set(`${h.metadata.namespace ?? 'default'}/${ref.name}`, h);
    }
    return out;
  }

  /** step is one Function's decision this tick. */
  private step(st: Scaled, now: number, hpa: ResourceObject | undefined, remote: TrafficSample | undefined): void {
    const gate = this.opts.gates.ensure(st.key);
    const s = gate.sample();
    const periodS = Math.max((now - st.lastTickAt) / 1000, 1e-3);
    st.lastTickAt = now;
    st.local = { rps: s.requests / periodS, concurrency: s.concurrency, at: now };
    // The cluster's traffic: this gateway's and, on the leader, the other nodes' over the same period.
    const requests = s.requests + (remote ? remote.rps * periodS : 0);
    const concurrency = s.concurrency + (remote?.concurrency ?? 0);
    const rps = requests / periodS;
    if (requests > 0) {
      // An idle period ends: one with no request for at least a whole tick.
      if (st.lastRequestAt !== undefined && now - st.lastRequestAt > periodS * 1000) st.idle.add(now - st.lastRequestAt);
      st.lastRequestAt = now;
      st.seenTraffic = true;
      // Little's law over the sample: in-flight time per request.
      const busyS = s.concurrency * (s.periodMs / 1000) + (remote ? remote.concurrency * periodS : 0);
      st.latencyS += (busyS / requests - st.latencyS) / 8;
    }
    const value = st.policy.metric === 'rps' ? rps : concurrency;
    st.metricValue = value;
    st.lastConcurrency = concurrency;
    st.lastRps = rps;
    st.kpa.record(now, value);
    // The history counts whole requests; other nodes' are estimated from their rates.
    st.predictor.observe(now, Math.round(requests));
    if (requests > 0) st.historyDirty = true;
    const target = this.target(st);
    const obs = target.observe(st.namespace, st.name) ?? { replicas: 0, ready: 0 };
    if (st.activationAt !== undefined && obs.ready > 0) {
      const ms = now - st.activationAt;
      st.coldStartMs = st.coldStartMs === undefined ? ms : st.coldStartMs + (ms - st.coldStartMs) / 4;
      st.activationAt = undefined;
    }
    const current = Math.max(st.applied, 0);
    let decision: Decision;
    const leads = this.leads();
    if (hpa && !leads) {
      // The leader's HPA evaluation lands in the target's spec.replicas.
      decision = { desired: Number(st.obj.spec?.replicas ?? current), reason: 'hpa', detail: `${hpa.metadata.name}: decided by the cluster leader` };
      st.panic = false;
    } else if (hpa) {
      if (st.hpaDecision === undefined || st.hpaAt === undefined || now - st.hpaAt >= HPA_SYNC_MS) {
        st.hpaAt = now;
        st.hpaEval = evaluateHpa(hpa, { current, ready: obs.ready, concurrency, rps, cpuMillis: cpuRequest(st.obj) }, this.metricSource(st.namespace));
        const min = Number(hpa.spec?.minReplicas ?? 1);
        const max = Number(hpa.spec?.maxReplicas ?? 1);
        const raw = replicasFor(current, st.hpaEval.readings);
        const rec = st.hpa.recommend(now, current, raw, min, max);
        st.hpaDecision = { desired: rec.desired, reason: 'hpa', detail: `${hpa.metadata.name}: ${st.hpaEval.summary}${rec.limited ? ` (limited by ${rec.limited})` : ''}` };
        void this.writeHpa(st, hpa, rec.desired);
      }
      decision = st.hpaDecision;
      st.panic = false;
    } else if (st.policy.fixedReplicas !== undefined) {
      decision = { desired: st.policy.fixedReplicas, reason: 'fixed', detail: 'spec.replicas' };
      st.panic = false;
    } else if (!leads) {
      decision = this.followLeader(st, current);
    } else {
      decision = this.recommend(st, now, obs.ready, current, value);
    }
    let desired = decision.desired;
    // The last replica stays for the grace period after the decision to go to zero, and while requests are in flight.
    if (desired > 0) st.zeroSince = undefined;
    else if (current > 0) {
      if (gate.inflight > 0 || gate.waiting > 0) {
        desired = 1;
        st.zeroSince = undefined;
      } else {
        st.zeroSince ??= now;
        if (now - st.zeroSince < st.policy.scaleToZeroGraceMs) desired = 1;
      }
    }
    if (gate.waiting > 0 && desired === 0) desired = Math.max(1, st.policy.activationScale);
    st.decision = { ...decision, desired };
    if (desired !== st.applied) this.apply(st, desired, st.decision);
    else if (desired > 0 && st.cls === 'wasm' && !gate.ready && target.has(st.namespace, st.name)) {
      // The module was loaded after the count was applied: the replicas exist now.
      if (target.scale(st.namespace, st.name, desired)) gate.open();
    }
    // What the replicas are now, after this tick's change.
    this.maybeWriteStatus(st, now, target.observe(st.namespace, st.name) ?? obs);
    if (st.historyDirty && now - st.historySavedAt >= HISTORY_SAVE_MS) void this.saveHistory(st);
  }

  /** recommend is the autoscaled case: the reactive algorithm, the forecast, triggers, the floors. */
  private recommend(st: Scaled, now: number, ready: number, current: number, value: number): Decision {
    const p = st.policy;
    const candidates: Candidate[] = [];
    const perReplica = p.target * p.targetUtilization;
    const unit = p.metric === 'rps' ? 'req/s' : 'in flight';
    if (p.class === 'hpa') {
      // The HPA algorithm on the same smoothed metric as the KPA's stable window: the total over the target per replica.
      const avg = st.kpa.windowAverage(now, p.stableWindowMs) ?? value;
      const raw = replicasFor(current, [{ kind: 'total', value: avg, targetAverage: perReplica }]);
      const rec = st.hpa.recommend(now, current, raw, p.minScale, p.maxScale > 0 ? p.maxScale : Number.MAX_SAFE_INTEGER);
      st.panic = false;
      candidates.push({ reason: 'reactive', desired: rec.desired, detail: `${round(avg)} ${unit} for ${ready} ready, target ${round(perReplica)} each` });
    } else {
      const rec = st.kpa.recommend(now, ready);
      st.panic = rec.panic;
      if (rec.reason !== 'noData') {
        candidates.push({ reason: rec.panic ? 'panic' : 'reactive', desired: rec.desired, detail: `stable ${round(rec.stable ?? 0)}, panic ${round(rec.panicValue ?? 0)} ${unit}; target ${round(perReplica)} per replica` });
      } else candidates.push({ reason: 'reactive', desired: current, detail: 'no data yet' });
    }
    if (!st.seenTraffic && now - st.createdAt < p.stableWindowMs) candidates.push({ reason: 'initial', desired: p.initialScale, detail: 'initialScale until traffic decides' });
    if (p.predictive.enabled) {
      const lead = p.predictive.leadTimeMs ?? Math.max(st.coldStartMs ?? 0, this.classColdStart(st.cls));
      const f = st.predictor.forecast(now, lead + st.history.bucketMs);
      st.forecast = f;
      if (f?.usable) {
        const demand = p.metric === 'rps' ? f.rate : f.rate * st.latencyS;
        let n = Math.ceil(demand / perReplica - 1e-9);
        // Requests expected more often than the reference keep-alive: it would be warm for them too.
        if (f.rate * (REFERENCE_KEEPALIVE_MS / 1000) >= 1) n = Math.max(n, 1);
        candidates.push({ reason: 'predicted', desired: n, detail: `${round(f.rate)} req/s expected, p(request within ${Math.round((lead + st.history.bucketMs) / 1000)}s) ${round(f.pWarm)}, error ${round(f.error)}` });
      }
      // Too rare for a rate forecast: when the idle times are regular, be warm when the next call is due.
      const w = (st.idleWindow = st.idle.window({ holdMs: p.stableWindowMs + p.scaleToZeroGraceMs, keepAliveMs: REFERENCE_KEEPALIVE_MS }));
      // Even a forecast too noisy to size replicas with tells the quiet hours: when it expects hardly a
      // request within the reference keep-alive, keeping a replica waiting would be waste.
      const quiet = f !== undefined && f.model !== 'none' && f.rate * (REFERENCE_KEEPALIVE_MS / 1000) < QUIET_EXPECTED;
      if (w && st.lastRequestAt !== undefined && !quiet) {
        const since = now - st.lastRequestAt;
        if (since >= w.fromMs - lead && since <= w.toMs) candidates.push({ reason: 'predicted', desired: 1, detail: `idle times: warm ${minutes(w.fromMs)}–${minutes(w.toMs)} after the last request (${w.samples} idle periods)` });
      }
    } else {
      st.forecast = undefined;
      st.idleWindow = undefined;
    }
    for (const c of st.external.values()) candidates.push(c);
    let d = decide(p, candidates);
    if (st.behavior) {
      const rec = st.behavior.recommend(now, current, d.desired, p.minScale, p.maxScale > 0 ? p.maxScale : Number.MAX_SAFE_INTEGER);
      if (rec.desired !== d.desired) d = { ...d, desired: rec.desired, detail: `${d.detail ?? ''}${d.detail ? '; ' : ''}behavior: ${rec.limited ?? rec.reason}` };
    }
    return d;
  }

  /** Whether this node makes the decisions (always, outside a cluster). */
  private leads(): boolean {
    return this.opts.leader?.isLeader() ?? true;
  }

  /** Where decisions are written: the leader's fenced service and store in a cluster. */
  private writer(): { resources: ResourceService; store: Store } {
    return this.opts.leader ?? this.opts;
  }

  /** followLeader is a non-leading node's decision: the count the leader last recorded in status. */
  private followLeader(st: Scaled, current: number): Decision {
    const recorded = st.obj.status?.autoscaler as { recommendation?: number; reason?: ScaleReason } | undefined;
    const desired = typeof recorded?.recommendation === 'number' ? recorded.recommendation : current;
    st.panic = false;
    return { desired, reason: recorded?.reason ?? 'reactive', detail: 'decided by the cluster leader' };
  }

  private classColdStart(cls: Scaled['cls']): number {
    const c = this.opts.coldStartMs ?? { wasm: 0, container: 1_000, vm: 5_000 };
    return c[cls];
  }

  /** apply sets the replica count and tells everyone: the gate, an Event, the counters. */
  private apply(st: Scaled, desired: number, decision: Decision): void {
    const from = Math.max(st.applied, 0);
    const target = this.target(st);
    if (!target.has(st.namespace, st.name)) {
      st.decision = decision;
      return;
    }
    st.applied = desired;
    st.decision = decision;
    // The HPA algorithm's rate policies count the changes that were made.
    const now = this.clock.now();
    st.hpa.record(now, from, desired);
    st.behavior?.record(now, from, desired);
    const gate = this.opts.gates.ensure(st.key);
    const readyNow = target.scale(st.namespace, st.name, desired);
    if (desired === 0) gate.close();
    else if (readyNow) gate.open();
    if (desired === from) return;
    if (desired > from) st.scaleUps++;
    else st.scaleDowns++;
    const message = `${from} → ${desired} replica(s): ${decision.reason}${decision.detail ? ` (${decision.detail})` : ''}`;
    this.opts.logger.info({ fn: st.key, from, to: desired, reason: decision.reason }, 'scaled');
    this.queueEvent(st.obj, desired > from ? 'ScaledUp' : 'ScaledDown', message);
    st.statusSig = '';
  }

  /**
   * queueEvent writes an Event shortly after, with the others of the moment: an activation answers
   * its request first, and a burst of decisions costs one round of store writes.
   */
  private queueEvent(obj: ResourceObject, reason: string, message: string): void {
    if (!this.leads()) return;
    this.pendingEvents.push({ obj, reason, message });
    if (this.eventTimer) return;
    this.eventTimer = setTimeout(() => {
      this.eventTimer = undefined;
      const batch = this.pendingEvents.splice(0);
      void (async () => {
        for (const e of batch) await this.events.record(e.obj, 'Normal', e.reason, e.message).catch(() => {});
      })();
    }, EVENT_DELAY_MS);
    this.eventTimer.unref();
  }

  /**
   * maybeWriteStatus writes status.autoscaler when the decision changed (count, replicas, reason,
   * panic), and the slower facts (forecast, idle-time window, measured cold start) when they changed,
   * at most every STATUS_REFRESH_MS. The inputs of the moment (the message, the metric's value) go
   * along with those writes but never cause one: every write is a new resourceVersion and a watch event.
   */
  private maybeWriteStatus(st: Scaled, now: number, obs: { replicas: number; ready: number }): void {
    if (!this.leads()) return;
    const f = st.forecast;
    const slow = {
      ...(f ? { forecast: { ratePerSecond: round(f.rate), next: f.next.map(round), pRequest: round(f.pWarm), error: round(f.error), usable: f.usable, model: f.model } } : {}),
      ...(st.idleWindow ? { idleWindow: { fromSeconds: Math.round(st.idleWindow.fromMs / 1000), toSeconds: Math.round(st.idleWindow.toMs / 1000), samples: st.idleWindow.samples } } : {}),
      ...(st.coldStartMs !== undefined ? { coldStartMs: Math.round(st.coldStartMs) } : {}),
    };
    const sig = `${st.applied}/${obs.replicas}/${obs.ready}/${st.decision.reason}/${st.panic}`;
    const slowSig = JSON.stringify(slow);
    if (sig === st.statusSig && (slowSig === st.slowSig || now - st.statusAt < STATUS_REFRESH_MS)) return;
    st.statusSig = sig;
    st.slowSig = slowSig;
    st.statusAt = now;
    const status: Record<string, unknown> = {
      desiredReplicas: Math.max(st.applied, 0),
      autoscaler: {
        recommendation: Math.max(st.applied, 0),
        reason: st.decision.reason,
        ...(st.decision.detail ? { message: st.decision.detail } : {}),
        panic: st.panic,
        metric: { name: st.policy.metric, value: round(st.metricValue), target: round(st.policy.target * st.policy.targetUtilization) },
        ...slow,
      },
    };
    // A Wasm Function's replicas are the autoscaler's to report; a workload's are the workload controller's.
    if (st.cls === 'wasm') Object.assign(status, { replicas: obs.replicas, readyReplicas: obs.ready });
    const def = this.opts.resources.kind('Function');
    void this.writer().resources.patch(def, st.namespace, st.name, { status }, { subresource: 'status' }).catch((err: unknown) => {
      if (err instanceof ApiError && err.reason === 'NotFound') return;
      st.statusSig = '';
      this.opts.logger.warn({ fn: st.key, err: (err as Error).message }, 'could not write the autoscaler status');
    });
  }

  /** writeHpa sets the target's spec.replicas (what the scale subresource shows) and the HPA's status. */
  private async writeHpa(st: Scaled, hpa: ResourceObject, desired: number): Promise<void> {
    const ev = st.hpaEval!;
    const fnDef = this.opts.resources.kind('Function');
    try {
      if (st.obj.spec?.replicas !== desired) await this.writer().resources.patch(fnDef, st.namespace, st.name, { spec: { replicas: desired } });
      const def = this.opts.resources.kind('HorizontalPodAutoscaler');
      const old = hpa.status ?? {};
      const scaled = old.desiredReplicas !== desired;
      const status = {
        ...old,
        currentReplicas: Math.max(st.applied, 0),
        desiredReplicas: desired,
        currentMetrics: ev.current,
        conditions: ev.conditions,
        ...(scaled ? { lastScaleTime: new Date(this.clock.now()).toISOString().replace(/\.\d{3}Z$/, 'Z') } : {}),
      };
      if (JSON.stringify(status) === JSON.stringify(old)) return;
      await this.writer().resources.patch(def, hpa.metadata.namespace, hpa.metadata.name, { status }, { subresource: 'status' });
    } catch (err) {
      if (err instanceof ApiError && err.reason === 'NotFound') return;
      this.opts.logger.warn({ hpa: cacheKey(hpa), err: (err as Error).message }, 'could not write the HPA status');
    }
  }

  private metricSource(namespace: string): MetricSource {
    return {
      gate: (name) => {
        const st = this.states.get(`${namespace}/${name}`);
        return st && { concurrency: st.lastConcurrency, rps: st.lastRps };
      },
      cached: (name, labels) => this.metricCache.get(metricKey(name, labels)),
    };
  }

  private async loadHistory(st: Scaled): Promise<void> {
    try {
      const [kv, idle] = await Promise.all([this.opts.store.get(HISTORY_PREFIX + st.key), this.opts.store.get(IDLE_PREFIX + st.key)]);
      if (this.states.get(st.key) !== st) return;
      if (idle) st.idle = IdleHistogram.decode(idle.value);
      if (!kv) return;
      st.history = RequestHistory.decode(kv.value);
      st.predictor = new Predictor(st.history);
    } catch (err) {
      this.opts.logger.warn({ fn: st.key, err: (err as Error).message }, 'the stored request history could not be read; starting afresh');
    }
  }

  private async saveHistory(st: Scaled): Promise<void> {
    if (!st.historyDirty || !this.states.has(st.key) || !this.leads()) return;
    st.historyDirty = false;
    st.historySavedAt = this.clock.now();
    try {
      await this.writer().store.put(HISTORY_PREFIX + st.key, st.history.encode());
      await this.writer().store.put(IDLE_PREFIX + st.key, st.idle.encode());
    } catch (err) {
      st.historyDirty = true;
      this.opts.logger.warn({ fn: st.key, err: (err as Error).message }, 'could not save the request history');
    }
  }
}

/** sumPeers adds up the other nodes' samples per Function. */
function sumPeers(peers: PeerSamples[]): Map<string, TrafficSample> {
  const out = new Map<string, TrafficSample>();
  for (const p of peers) {
    for (const [key, t] of Object.entries(p.functions)) {
      const rps = finite(t.rps);
      const concurrency = finite(t.concurrency);
      const cur = out.get(key);
      if (cur) {
        cur.rps += rps;
        cur.concurrency += concurrency;
      } else out.set(key, { rps, concurrency });
    }
  }
  return out;
}

/** A peer's figure as a count: anything but a finite non-negative number counts nothing. */
function finite(n: unknown): number {
  return typeof n === 'number' && Number.isFinite(n) && n > 0 ? n : 0;
}

function metricKey(name: string, labels: Record<string, string>): string {
  return `${name}${JSON.stringify(Object.entries(labels).sort())}`;
}

function cpuRequest(obj: ResourceObject): number {
  const cpu = (obj.spec?.resources as { cpu?: string | number } | undefined)?.cpu;
  return (cpu !== undefined ? parseCpuMillis(cpu) : undefined) ?? 1000;
}

function minutes(ms: number): string {
  return ms < 60_000 ? `${Math.round(ms / 1000)}s` : `${Math.round(ms / 6000) / 10}m`;
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

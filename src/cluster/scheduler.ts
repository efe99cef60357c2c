import type { Logger } from 'pino';

import { ApiError } from '../api/errors.js';
import { type Condition, setCondition } from '../api/kinds/conditions.js';
import { DRAIN_ANNOTATION, type Endpoint, ENDPOINT_SLICE_FUNCTION_LABEL, ENDPOINT_SLICE_MANAGED_BY_LABEL, ENDPOINT_SLICE_NODE_LABEL, parseCpuMillis, runsImage } from '../api/kinds/index.js';
import type { ResourceObject } from '../api/kinds/types.js';
import type { ResourceService } from '../api/resources.js';
import { type Clock, systemClock } from '../autoscaling/clock.js';
import { cacheKey, Controller, EventRecorder, Informer, type ReconcileResult, writeStatus } from '../controllers/runtime/index.js';
import { parseBytes } from '../util/quantity.js';

import { NODE_AGENT_MANAGER } from './endpoint-slices.js';
import { type NodeView, place, type PlacementEntry, type PlacementRules, type Taint, type Toleration } from './placement.js';

export { DRAIN_ANNOTATION };
/** The Function condition that says whether every desired replica found a node. */
export const SCHEDULED_CONDITION = 'Scheduled';

const DEFAULT_MEMORY = 256 * 1024 * 1024;

export interface SchedulerOptions {
  resources: ResourceService;
  logger: Logger;
  clock?: Clock;
  /** How often every Function is looked at again even if nothing changed (default 30 s). */
  resyncMs?: number;
}

/**
 * Scheduler places the replicas of container and VM Functions onto nodes: how many replicas (what
 * the autoscaler decided, else spec.replicas) and where (placement.ts), written to the Function's
 * status.placement, which each node's workload controller follows. It runs once per cluster (on the
 * leader). It also moves replicas: off a node whose NoExecute taint ran out the Function's
 * toleration, and off a draining node once their replacements are ready elsewhere.
 */
export class Scheduler {
  readonly controller: Controller;
  readonly functions: Informer;
  readonly nodes: Informer;
  readonly slices: Informer;
  readonly classes: Informer;
  private readonly clock: Clock;
  private readonly events: EventRecorder;
  /** What this scheduler last wrote per Function, ahead of its informer: resource use counts it at once. */
  private readonly placed = new Map<string, PlacementEntry[]>();
  private sweeping: Promise<void> = Promise.resolve();
  private readonly failures = new Map<string, { message: string; at: number }>();

  constructor(private readonly opts: SchedulerOptions) {
    this.clock = opts.clock ?? systemClock;
    this.events = new EventRecorder(opts.resources, 'skiff-scheduler', opts.logger);
    this.functions = new Informer(opts.resources, opts.resources.kind('Function'), opts.logger);
    this.nodes = new Informer(opts.resources, opts.resources.kind('Node'), opts.logger);
    this.slices = new Informer(opts.resources, opts.resources.kind('EndpointSlice'), opts.logger);
    this.classes = new Informer(opts.resources, opts.resources.kind('RuntimeClass'), opts.logger);
    // One worker: each decision counts the resources the previous ones placed.
    this.controller = new Controller({ name: 'scheduler', logger: opts.logger, workers: 1, resyncMs: opts.resyncMs ?? 30_000, keys: () => this.imageFunctions().map(cacheKey), reconcile: (key) => this.reconcile(key) });
    const all = () => {
      for (const f of this.imageFunctions()) this.controller.enqueue(cacheKey(f));
    };
    const nodeChanged = () => {
      all();
      this.sweep();
    };
    this.nodes.addHandlers({ onAdd: all, onUpdate: (a, b) => (nodeSignature(a) !== nodeSignature(b) ? nodeChanged() : undefined), onDelete: nodeChanged });
    this.functions.addHandlers({
      onAdd: (o) => this.controller.enqueue(cacheKey(o)),
      onUpdate: (a, b) => {
        if (a.metadata.generation !== b.metadata.generation || a.status?.desiredReplicas !== b.status?.desiredReplicas || JSON.stringify(a.status?.placement) !== JSON.stringify(b.status?.placement)) this.controller.enqueue(cacheKey(b));
      },
      onDelete: (o) => {
        this.placed.delete(cacheKey(o));
        // Freed resources may let another Function's waiting replicas in.
        all();
      },
    });
    const slice = (o: ResourceObject) => {
      const fn = o.metadata.labels?.[ENDPOINT_SLICE_FUNCTION_LABEL];
      if (fn) this.controller.enqueue(`${o.metadata.namespace}/${fn}`);
      const node = o.metadata.labels?.[ENDPOINT_SLICE_NODE_LABEL];
      if (node && !this.nodeReady(node)) this.sweep();
    };
    this.slices.addHandlers({ onAdd: slice, onUpdate: (_, b) => slice(b), onDelete: slice });
    // A RuntimeClass's scheduling constraints apply to the Functions of that class.
    this.classes.addHandlers({ onAdd: all, onUpdate: all, onDelete: all });
  }

  async start(): Promise<void> {
    await this.nodes.start();
    await this.slices.start();
    await this.classes.start();
    await this.functions.start();
    this.controller.start();
    this.sweep();
  }

  /** swept resolves once the slice deletions started so far are done (tests). */
  async swept(): Promise<void> {
    await this.sweeping;
  }

  async stop(): Promise<void> {
    this.functions.stop();
    this.nodes.stop();
    this.slices.stop();
    this.classes.stop();
    await this.controller.stop();
  }

  private imageFunctions(): ResourceObject[] {
    return this.functions.list().filter((f) => runsImage(f.spec ?? {}));
  }

  /** reconcile places one Function; it comes back when a tolerated taint runs out or a drain waits. */
  async reconcile(key: string): Promise<ReconcileResult | void> {
    const fn = this.functions.get(key);
    if (!fn || !runsImage(fn.spec ?? {})) {
      this.placed.delete(key);
      this.failures.delete(key);
      return;
    }
    const rules = rulesOf(fn, this.classes.get(String(fn.spec?.runtimeClassName ?? 'wasm')));
    const nodes = this.nodes.list().map((n) => nodeView(n));
    const usage = new Map<string, NodeView['used']>();
    for (const other of this.imageFunctions()) {
      const k = cacheKey(other);
      if (k === key) continue;
      const r = rulesOf(other, this.classes.get(String(other.spec?.runtimeClassName ?? 'wasm'))).requests;
      for (const e of this.placementOf(other)) {
        const u = usage.get(e.nodeName) ?? { cpuMillis: 0, memoryBytes: 0, replicas: 0 };
        usage.set(e.nodeName, { cpuMillis: u.cpuMillis + r.cpuMillis * e.replicas, memoryBytes: u.memoryBytes + r.memoryBytes * e.replicas, replicas: u.replicas + e.replicas });
      }
    }
    for (const n of nodes) n.used = usage.get(n.name) ?? n.used;
    const current = this.placementOf(fn);
    const now = this.clock.now();
    const result = place({ rules, desired: desiredReplicas(fn), nodes, current, readyByNode: this.readyByNode(fn), now });
    const changed = JSON.stringify(result.placement) !== JSON.stringify(current);
    const cond: Omit<Condition, 'lastTransitionTime'> = result.unschedulable > 0
      ? { type: SCHEDULED_CONDITION, status: 'False', reason: 'Unschedulable', message: `${result.unschedulable} replica(s) could not be placed: ${result.message}`, observedGeneration: fn.metadata.generation }
      : { type: SCHEDULED_CONDITION, status: 'True', reason: 'Scheduled', message: `${sum(result.placement)} replica(s) on ${result.placement.length} node(s)`, observedGeneration: fn.metadata.generation };
    const nodesPlaced = new Set(result.placement.map((e) => e.nodeName));
    await writeStatus(this.opts.resources, this.opts.resources.kind('Function'), fn, (_, old) => {
      const next: Record<string, unknown> = { ...old, placement: result.placement, conditions: setCondition(old.conditions as Condition[] | undefined, cond) };
      // Replicas a node no longer runs (it is gone, or they were moved) leave the merged status.
      const statuses = old.replicaStatuses as Array<{ nodeName?: string; ready?: boolean }> | undefined;
      if (Array.isArray(statuses) && statuses.some((s) => s.nodeName !== undefined && !nodesPlaced.has(s.nodeName))) {
        const kept = statuses.filter((s) => s.nodeName === undefined || nodesPlaced.has(s.nodeName));
        Object.assign(next, { replicaStatuses: kept, replicas: kept.length, readyReplicas: kept.filter((s) => s.ready).length });
      }
      return next;
    });
    this.placed.set(key, result.placement);
    for (const e of result.evicted) {
      if (e.reason === 'node is gone') continue;
      await this.events.record(fn, 'Normal', 'Rescheduled', `moved ${e.replicas} replica(s) off node ${e.nodeName}: ${e.reason}`);
    }
    if (changed && result.placement.length > 0) await this.events.record(fn, 'Normal', 'Scheduled', `Successfully assigned ${key} replicas: ${result.placement.map((e) => `${e.nodeName}=${e.replicas}`).join(', ')}`);
    // The same failure is counted again at most once a minute: the retries come every few seconds.
    const failed = this.failures.get(key);
    if (result.unschedulable === 0) this.failures.delete(key);
    else if (!failed || failed.message !== result.message || now - failed.at >= 60_000) {
      this.failures.set(key, { message: result.message!, at: now });
      await this.events.record(fn, 'Warning', 'FailedScheduling', result.message!);
    }
    if (changed) this.opts.logger.info({ fn: key, placement: result.placement, unschedulable: result.unschedulable }, 'placed replicas');
    const waits: number[] = [];
    if (result.nextEvictionAt !== undefined) waits.push(Math.max(0, result.nextEvictionAt - now) + 10);
    // Nodes that could take the waiting replicas show up through the node informer; this is the backstop.
    if (result.leaving > 0 || result.unschedulable > 0) waits.push(5_000);
    return waits.length ? { requeueAfterMs: Math.min(...waits) } : undefined;
  }

  private nodeReady(name: string): boolean {
    const n = this.nodes.get(name);
    return n !== undefined && nodeView(n).ready;
  }

  /**
   * sweep deletes the EndpointSlices of nodes that are gone or not Ready: such a node cannot take
   * its own out, and gateways should route around it at once rather than after the toleration. A
   * node that comes back writes its slices again (its writer notices their deletion).
   */
  private sweep(): void {
    this.sweeping = this.sweeping.then(async () => {
      const def = this.opts.resources.kind('EndpointSlice');
      for (const s of this.slices.list()) {
        const node = s.metadata.labels?.[ENDPOINT_SLICE_NODE_LABEL];
        if (!node || s.metadata.labels?.[ENDPOINT_SLICE_MANAGED_BY_LABEL] !== NODE_AGENT_MANAGER || this.nodeReady(node)) continue;
        try {
          await this.opts.resources.delete(def, s.metadata.namespace, s.metadata.name);
          this.opts.logger.info({ slice: cacheKey(s), node }, 'removed the EndpointSlice of a node that is not ready');
        } catch (err) {
          if (!(err instanceof ApiError && err.reason === 'NotFound')) this.opts.logger.warn({ slice: cacheKey(s), err: (err as Error).message }, 'could not remove an EndpointSlice');
        }
      }
    });
  }

  private placementOf(fn: ResourceObject): PlacementEntry[] {
    return this.placed.get(cacheKey(fn)) ?? placementOf(fn);
  }

  private readyByNode(fn: ResourceObject): Record<string, number> {
    const out: Record<string, number> = {};
    for (const s of this.slices.list()) {
      if (s.metadata.namespace !== fn.metadata.namespace || s.metadata.labels?.[ENDPOINT_SLICE_FUNCTION_LABEL] !== fn.metadata.name) continue;
      const node = s.metadata.labels?.[ENDPOINT_SLICE_NODE_LABEL];
      if (!node) continue;
      out[node] = (out[node] ?? 0) + ((s.endpoints as Endpoint[] | undefined) ?? []).filter((e) => e.conditions?.ready === true).length;
    }
    return out;
  }
}

/** placementOf reads status.placement, keeping only well-formed entries. */
export function placementOf(fn: ResourceObject): PlacementEntry[] {
  const p: unknown = fn.status?.placement;
  if (!Array.isArray(p)) return [];
  return p.filter((e): e is PlacementEntry => typeof e?.nodeName === 'string' && Number.isInteger(e?.replicas) && e.replicas > 0);
}

/** desiredReplicas: the autoscaler's decision when it made one, else what the spec asks for. */
export function desiredReplicas(fn: ResourceObject): number {
  const st = fn.status?.desiredReplicas;
  if (typeof st === 'number' && st >= 0) return st;
  const spec = fn.spec ?? {};
  if (typeof spec.replicas === 'number') return spec.replicas;
  const scale = spec.scale ?? {};
  return Math.max(scale.initialScale ?? 1, scale.minScale ?? 1);
}

/**
 * rulesOf reads what placement needs from a Function's spec and its RuntimeClass, merged as
 * Kubernetes' RuntimeClass admission does: the class's scheduling.nodeSelector and tolerations join
 * the Function's, and its overhead.podFixed adds to each replica's requests.
 */
export function rulesOf(fn: ResourceObject, runtimeClass?: ResourceObject): PlacementRules {
  const spec = fn.spec ?? {};
  const r = spec.resources ?? {};
  const rc = runtimeClass as { scheduling?: { nodeSelector?: Record<string, string>; tolerations?: Toleration[] }; overhead?: { podFixed?: Record<string, string | number> } } | undefined;
  const overhead = rc?.overhead?.podFixed ?? {};
  const cpu = (r.cpu !== undefined ? (parseCpuMillis(r.cpu) ?? 0) : 0) + (overhead.cpu !== undefined ? (parseCpuMillis(overhead.cpu) ?? 0) : 0);
  const memory = (r.memory !== undefined ? (parseBytes(r.memory) ?? DEFAULT_MEMORY) : DEFAULT_MEMORY) + (overhead.memory !== undefined ? (parseBytes(overhead.memory) ?? 0) : 0);
  const selector = { ...(rc?.scheduling?.nodeSelector ?? {}), ...(spec.nodeSelector ?? {}) };
  const tolerations = [...(spec.tolerations ?? []), ...(rc?.scheduling?.tolerations ?? [])];
  return {
    runtimeClass: String(spec.runtimeClassName ?? 'wasm'),
    ...(Object.keys(selector).length ? { nodeSelector: selector } : {}),
    affinity: spec.affinity,
    ...(tolerations.length ? { tolerations } : {}),
    requests: { cpuMillis: cpu, memoryBytes: memory },
  };
}

/** nodeView reads what placement needs from a Node. */
export function nodeView(n: ResourceObject): NodeView {
  const ready = (n.status?.conditions as Condition[] | undefined)?.find((c) => c.type === 'Ready');
  const alloc = (n.status?.allocatable ?? {}) as Record<string, string>;
  return {
    name: n.metadata.name,
    labels: n.metadata.labels ?? {},
    ready: ready?.status === 'True',
    unschedulable: n.spec?.unschedulable === true,
    draining: n.spec?.unschedulable === true && n.metadata.annotations?.[DRAIN_ANNOTATION] !== undefined,
    taints: (n.spec?.taints as Taint[] | undefined) ?? [],
    runtimeClasses: (n.status?.runtimeClasses as string[] | undefined) ?? [],
    allocatable: { cpuMillis: alloc.cpu !== undefined ? (parseCpuMillis(alloc.cpu) ?? 0) : 0, memoryBytes: alloc.memory !== undefined ? (parseBytes(alloc.memory) ?? 0) : 0 },
    used: { cpuMillis: 0, memoryBytes: 0, replicas: 0 },
  };
}

/** What of a Node placement reads: heartbeats alone do not wake the scheduler. */
function nodeSignature(n: ResourceObject): string {
  const v = nodeView(n);
  return JSON.stringify([v.labels, v.ready, v.unschedulable, v.draining, v.taints, v.runtimeClasses, v.allocatable]);
}

const sum = (p: PlacementEntry[]) => p.reduce((a, e) => a + e.replicas, 0);

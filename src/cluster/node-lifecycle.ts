import type { Logger } from 'pino';

import { ApiError } from '../api/errors.js';
import { NODE_LEASE_NAMESPACE, type NodeCondition } from '../api/kinds/index.js';
import type { ResourceObject } from '../api/kinds/types.js';
import type { ResourceService } from '../api/resources.js';
import { type Clock, systemClock } from '../autoscaling/clock.js';
import { Controller, EventRecorder, Informer, type ReconcileResult, writeStatus } from '../controllers/runtime/index.js';

import { UNREACHABLE_TAINT } from './placement.js';

export interface NodeLifecycleOptions {
  resources: ResourceService;
  logger: Logger;
  clock?: Clock;
  /** How long past a Lease's duration a node may stay silent before it is Unknown (default 40 s). */
  graceMs?: number;
}

/** Reason of a Ready condition the lifecycle controller set because the node went silent. */
export const NODE_STATUS_UNKNOWN = 'NodeStatusUnknown';
const DEFAULT_GRACE_MS = 40_000;
const DEFAULT_LEASE_SECONDS = 40;

/**
 * NodeLifecycleController watches Nodes and their heartbeat Leases. A node whose Lease was not renewed
 * within its duration plus a grace gets Ready Unknown (reason NodeStatusUnknown) and an Event; it is
 * Ready again once its Lease is renewed. An Unknown node also gets the NoExecute taint
 * node.kubernetes.io/unreachable (removed when it is back), from which the scheduler moves its
 * replicas after each Function's toleration. It judges by the Lease, not the Node's status, because the
 * Lease is what a live node writes often.
 */
export class NodeLifecycleController {
  readonly controller: Controller;
  readonly nodes: Informer;
  readonly leases: Informer;
  private readonly clock: Clock;
  private readonly graceMs: number;
  private readonly events: EventRecorder;

  constructor(private readonly opts: NodeLifecycleOptions) {
    this.clock = opts.clock ?? systemClock;
    this.graceMs = opts.graceMs ?? DEFAULT_GRACE_MS;
    this.events = new EventRecorder(opts.resources, 'node-controller', opts.logger);
    this.nodes = new Informer(opts.resources, opts.resources.kind('Node'), opts.logger);
    this.leases = new Informer(opts.resources, opts.resources.kind('Lease'), opts.logger);
    this.controller = new Controller({
      name: 'node-lifecycle',
      logger: opts.logger,
      keys: () => this.nodes.list().map((n) => n.metadata.name),
      reconcile: (name) => this.reconcile(name),
      workers: 1,
      resyncMs: 30_000,
    });
    const enqueue = (o: ResourceObject) => this.controller.enqueue(o.metadata.name);
    this.nodes.addHandlers({ onAdd: enqueue, onUpdate: (_, o) => enqueue(o) });
    const lease = (o: ResourceObject) => {
      if (o.metadata.namespace === NODE_LEASE_NAMESPACE) enqueue(o);
    };
    this.leases.addHandlers({ onAdd: lease, onUpdate: (_, o) => lease(o), onDelete: lease });
  }

  async start(): Promise<void> {
    await this.nodes.start();
    await this.leases.start();
    this.controller.start();
  }

  async stop(): Promise<void> {
    this.nodes.stop();
    this.leases.stop();
    await this.controller.stop();
  }

  /** reconcile judges one node by its Lease now; it comes back when the node would next go silent. */
  async reconcile(name: string): Promise<ReconcileResult | void> {
    const node = this.nodes.get(name);
    if (!node) return;
    const lease = this.leases.get(`${NODE_LEASE_NAMESPACE}/${name}`);
    const conditions = (node.status?.conditions as NodeCondition[] | undefined) ?? [];
    const ready = conditions.find((c) => c.type === 'Ready');
    // Without a Lease the node's own last report is the heartbeat, and before any the registration.
    const last = parseTime(lease?.spec?.renewTime) ?? parseTime(ready?.lastHeartbeatTime) ?? parseTime(node.metadata.creationTimestamp) ?? this.clock.now();
    const durationMs = Number(lease?.spec?.leaseDurationSeconds ?? DEFAULT_LEASE_SECONDS) * 1000;
    const deadline = last + durationMs + this.graceMs;
    const now = this.clock.now();
    const at = new Date(now).toISOString().replace(/\.\d{3}Z$/, 'Z');
    if (now >= deadline) {
      // A node marked before the taint existed (or whose taint an operator removed) gets it back.
      if (ready?.status === 'Unknown') return void (await this.setUnreachableTaint(name, ready.lastTransitionTime ?? at, true));
      const message = `Skiff stopped posting node status: its Lease was last renewed at ${new Date(last).toISOString()}`;
      await this.setReady(node, { status: 'Unknown', reason: NODE_STATUS_UNKNOWN, message }, at);
      // The API's times are whole seconds: truncating would start every toleration up to a second
      // early, so the taint's time is rounded up instead (a replica never leaves before its time).
      await this.setUnreachableTaint(name, new Date(Math.ceil(now / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z'));
      await this.events.record(node, 'Warning', NODE_STATUS_UNKNOWN, `Node ${name} status is now: NodeNotReady (${message})`);
      this.opts.logger.warn({ node: name, lastRenewed: new Date(last).toISOString() }, 'node stopped sending heartbeats');
      return;
    }
    if (ready?.status === 'Unknown' && ready.reason === NODE_STATUS_UNKNOWN) {
      await this.setReady(node, { status: 'True', reason: 'SkiffReady', message: 'heartbeats resumed' }, at);
      await this.events.record(node, 'Normal', 'NodeReady', `Node ${name} status is now: NodeReady`);
      this.opts.logger.info({ node: name }, 'node heartbeats resumed');
    }
    // The node's agent may have set Ready itself already: the taint goes whenever the Lease is fresh.
    if (((node.spec?.taints as Array<{ key: string; effect: string }> | undefined) ?? []).some((t) => t.key === UNREACHABLE_TAINT && t.effect === 'NoExecute')) await this.setUnreachableTaint(name, undefined);
    return { requeueAfterMs: Math.max(1000, deadline - now + 1000) };
  }

  /**
   * setUnreachableTaint adds `node.kubernetes.io/unreachable:NoExecute` (with the time, from which the
   * Functions' tolerationSeconds count) or, with `at` undefined, removes it. keepTime leaves a taint
   * already there untouched.
   */
  private async setUnreachableTaint(name: string, at: string | undefined, keepTime = false): Promise<void> {
    const def = this.opts.resources.kind('Node');
    for (let attempt = 0; attempt < 5; attempt++) {
      const node = await this.opts.resources.tryGet(def, undefined, name);
      if (!node) return;
      const taints = ((node.spec?.taints as Array<{ key: string; effect: string }> | undefined) ?? []);
      const has = taints.some((t) => t.key === UNREACHABLE_TAINT && t.effect === 'NoExecute');
      if (at === undefined ? !has : has && keepTime) return;
      const rest = taints.filter((t) => !(t.key === UNREACHABLE_TAINT && t.effect === 'NoExecute'));
      const next = at === undefined ? rest : [...rest, { key: UNREACHABLE_TAINT, effect: 'NoExecute', timeAdded: at }];
      try {
        await this.opts.resources.update(def, undefined, name, { ...node, spec: { ...node.spec, taints: next.length ? next : undefined } });
        return;
      } catch (err) {
        if (!(err instanceof ApiError && err.reason === 'Conflict')) throw err;
      }
    }
  }

  private async setReady(node: ResourceObject, next: Pick<NodeCondition, 'status' | 'reason' | 'message'>, at: string): Promise<void> {
    await writeStatus(this.opts.resources, this.opts.resources.kind('Node'), node, (_, old) => {
      const list = ((old.conditions as NodeCondition[] | undefined) ?? []).filter((c) => c.type !== 'Ready');
      const prev = ((old.conditions as NodeCondition[] | undefined) ?? []).find((c) => c.type === 'Ready');
      const cond: NodeCondition = {
        type: 'Ready',
        ...next,
        // The heartbeat time stays the node's own: this controller reports on the node, not for it.
        lastHeartbeatTime: prev?.lastHeartbeatTime ?? at,
        lastTransitionTime: prev?.status === next.status ? prev.lastTransitionTime : at,
      };
      return { ...old, conditions: [...list, cond] };
    });
  }
}

function parseTime(v: unknown): number | undefined {
  if (typeof v !== 'string') return undefined;
  const t = Date.parse(v);
  return Number.isFinite(t) ? t : undefined;
}

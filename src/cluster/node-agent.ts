import os from 'node:os';

import type { Logger } from 'pino';

import { ApiError } from '../api/errors.js';
import { microTime, NODE_LEASE_NAMESPACE, type NodeCondition, RUNTIME_CLASS_LABEL_PREFIX } from '../api/kinds/index.js';
import type { KindDefinition, ResourceObject } from '../api/kinds/types.js';
import type { ResourceService } from '../api/resources.js';
import { type Clock, systemClock } from '../autoscaling/clock.js';

/** What the host offers, read once at start (tests give their own). */
export interface HostFacts {
  cpus: number;
  memoryBytes: number;
  os: string;
  arch: string;
  kernel: string;
  hostname: string;
}

export interface NodeAgentOptions {
  resources: ResourceService;
  logger: Logger;
  /** This node's name (`skiff up --node-name`). */
  nodeName: string;
  /** Skiff's version, reported as the node's kubeletVersion. */
  version: string;
  /** The runtime classes whose handlers can run on this host (wasm, container, vm). */
  runtimeClasses: () => Promise<string[]>;
  /** Further addresses to advertise beside the host name (InternalIP, a mesh listener). */
  addresses?: Array<{ type: string; address: string }>;
  /**
   * Ports of this node's listeners, as Kubernetes' `status.daemonEndpoints` (`meshEndpoint` is the
   * node-to-node mTLS listener other nodes' gateways route to, `apiEndpoint` the API).
   */
  daemonEndpoints?: Record<string, { Port: number }>;
  host?: HostFacts;
  clock?: Clock;
  /** How often the Lease is renewed; 0 leaves it to `tick()` (tests). */
  renewMs?: number;
  leaseDurationSeconds?: number;
  /** The Node's Ready heartbeat is written when something changed or when it is this old. */
  statusEveryMs?: number;
}

const DEFAULT_RENEW_MS = 10_000;
const DEFAULT_LEASE_SECONDS = 40;
const DEFAULT_STATUS_EVERY_MS = 60_000;

/** hostFacts reads this machine's CPU count, memory and platform. */
export function hostFacts(): HostFacts {
  return { cpus: os.availableParallelism?.() ?? os.cpus().length, memoryBytes: os.totalmem(), os: os.platform(), arch: os.arch(), kernel: os.release(), hostname: os.hostname() };
}

/** defaultNodeName is the host name lower-cased, in the DNS-subdomain form a Node's name takes. */
export function defaultNodeName(host = os.hostname()): string {
  return host.toLowerCase().replace(/[^a-z0-9.-]/g, '-').replace(/^[-.]+|[-.]+$/g, '') || 'node';
}

/**
 * NodeAgent is this process's kubelet-shaped half of node health: it registers the Node, renews the
 * node's Lease often (a small write every few seconds is the cheap heartbeat), and rewrites the Node's
 * status only when what it reports changed or the last report is a minute old, because a Node's status
 * is large and every watcher of Nodes receives each write.
 */
export class NodeAgent {
  private readonly clock: Clock;
  private readonly host: HostFacts;
  private readonly renewMs: number;
  private readonly leaseSeconds: number;
  private readonly statusEveryMs: number;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private running?: Promise<void>;
  private lastStatusAt = -Infinity;
  private lastReported = '';
  private classes?: string[];

  constructor(private readonly opts: NodeAgentOptions) {
    this.clock = opts.clock ?? systemClock;
    this.host = opts.host ?? hostFacts();
    this.renewMs = opts.renewMs ?? DEFAULT_RENEW_MS;
    this.leaseSeconds = opts.leaseDurationSeconds ?? DEFAULT_LEASE_SECONDS;
    this.statusEveryMs = opts.statusEveryMs ?? DEFAULT_STATUS_EVERY_MS;
  }

  get nodeName(): string {
    return this.opts.nodeName;
  }

  /** start registers the Node and its Lease, reports once, then renews on a timer. */
  async start(): Promise<void> {
    await this.ensureNamespace();
    await this.tick();
    if (this.renewMs > 0 && !this.stopped) {
      this.timer = setInterval(() => void this.tick(), this.renewMs);
      this.timer.unref();
    }
  }

  /** stop ends the heartbeats: once it resolves the agent writes nothing more. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }

  /** tick is one heartbeat: renew the Lease, and report the Node when due. Failures are logged and retried at the next tick. */
  tick(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    // One heartbeat at a time: a slow store must not pile them up.
    this.running ??= this.beat().finally(() => (this.running = undefined));
    return this.running;
  }

  private async beat(): Promise<void> {
    try {
      await this.reportNode();
      await this.renewLease();
    } catch (err) {
      this.opts.logger.warn({ node: this.nodeName, err: (err as Error).message }, 'node heartbeat failed; trying again at the next one');
    }
  }

  private kind(name: string): KindDefinition {
    return this.opts.resources.kind(name);
  }

  private async ensureNamespace(): Promise<void> {
    await this.createIfMissing(this.kind('Namespace'), undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NODE_LEASE_NAMESPACE } });
  }

  private async createIfMissing(def: KindDefinition, ns: string | undefined, obj: unknown): Promise<ResourceObject | undefined> {
    if (this.stopped) return undefined;
    try {
      return (await this.opts.resources.create(def, ns, obj)).object;
    } catch (err) {
      if (err instanceof ApiError && err.reason === 'AlreadyExists') return undefined;
      throw err;
    }
  }

  private async renewLease(): Promise<void> {
    const def = this.kind('Lease');
    const name = this.nodeName;
    const now = microTime(this.clock.now());
    const existing = await this.opts.resources.tryGet(def, NODE_LEASE_NAMESPACE, name);
    if (this.stopped) return;
    if (!existing) {
      const spec = { holderIdentity: name, leaseDurationSeconds: this.leaseSeconds, acquireTime: now, renewTime: now };
      await this.createIfMissing(def, NODE_LEASE_NAMESPACE, { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace: NODE_LEASE_NAMESPACE }, spec });
      return;
    }
    const spec = { ...(existing.spec ?? {}), renewTime: now, leaseDurationSeconds: this.leaseSeconds };
    if (spec.holderIdentity !== name) {
      spec.holderIdentity = name;
      spec.acquireTime = now;
      spec.leaseTransitions = Number(spec.leaseTransitions ?? 0) + 1;
    }
    // Conditional on what was read: a racing writer makes this heartbeat fail and the next one retry.
    await this.opts.resources.update(def, NODE_LEASE_NAMESPACE, name, { ...existing, spec });
  }

  private async reportNode(): Promise<void> {
    const def = this.kind('Node');
    const name = this.nodeName;
    // Asking the handlers may run probes, so it is done at the Node's slower pace, not at every renewal.
    const due = this.clock.now() - this.lastStatusAt >= this.statusEveryMs;
    if (due || !this.classes) this.classes = [...new Set(await this.opts.runtimeClasses())].sort();
    const classes = this.classes;
    let node = await this.opts.resources.tryGet(def, undefined, name);
    if (this.stopped) return;
    const labels = this.labels(classes);
    if (!node) {
      node = await this.createIfMissing(def, undefined, { apiVersion: 'v1', kind: 'Node', metadata: { name, labels }, spec: {} });
      if (!node) node = await this.opts.resources.get(def, undefined, name);
      this.lastReported = '';
    } else if (!this.labelsMatch(node, labels, classes)) {
      const kept = Object.fromEntries(Object.entries(node.metadata.labels ?? {}).filter(([k]) => !k.startsWith(RUNTIME_CLASS_LABEL_PREFIX)));
      if (this.stopped) return;
      node = (await this.opts.resources.update(def, undefined, name, { ...node, metadata: { ...node.metadata, labels: { ...kept, ...labels } } })).object;
      this.lastReported = '';
    }
    const now = this.clock.now();
    const facts = this.facts(classes);
    const fingerprint = JSON.stringify(facts);
    const ready = (node.status?.conditions as NodeCondition[] | undefined)?.find((c) => c.type === 'Ready');
    if (!due && fingerprint === this.lastReported && ready?.status === 'True') return;
    const at = new Date(now).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const condition: NodeCondition = {
      type: 'Ready',
      status: 'True',
      reason: 'SkiffReady',
      message: 'skiff is posting ready status',
      lastHeartbeatTime: at,
      lastTransitionTime: ready?.status === 'True' ? ready.lastTransitionTime : at,
    };
    const others = ((node.status?.conditions as NodeCondition[] | undefined) ?? []).filter((c) => c.type !== 'Ready');
    if (this.stopped) return;
    await this.opts.resources.updateStatus(def, undefined, name, { metadata: { resourceVersion: node.metadata.resourceVersion }, status: { ...(node.status ?? {}), ...facts, conditions: [...others, condition] } });
    this.lastStatusAt = now;
    this.lastReported = fingerprint;
  }

  private labels(classes: string[]): Record<string, string> {
    const labels: Record<string, string> = { 'kubernetes.io/hostname': this.nodeName, 'kubernetes.io/os': this.host.os, 'kubernetes.io/arch': this.host.arch };
    for (const c of classes) labels[`${RUNTIME_CLASS_LABEL_PREFIX}${c}`] = 'true';
    return labels;
  }

  private labelsMatch(node: ResourceObject, wanted: Record<string, string>, classes: string[]): boolean {
    const have = node.metadata.labels ?? {};
    if (Object.entries(wanted).some(([k, v]) => have[k] !== v)) return false;
    const haveClasses = Object.keys(have).filter((k) => k.startsWith(RUNTIME_CLASS_LABEL_PREFIX)).length;
    return haveClasses === classes.length;
  }

  private facts(classes: string[]): Record<string, unknown> {
    const h = this.host;
    const capacity = { cpu: String(h.cpus), memory: `${Math.floor(h.memoryBytes / 1024)}Ki` };
    return {
      capacity,
      allocatable: { ...capacity },
      runtimeClasses: classes,
      addresses: [{ type: 'Hostname', address: h.hostname }, ...(this.opts.addresses ?? [])],
      ...(this.opts.daemonEndpoints ? { daemonEndpoints: this.opts.daemonEndpoints } : {}),
      nodeInfo: {
        operatingSystem: h.os,
        architecture: h.arch,
        kernelVersion: h.kernel,
        kubeletVersion: `v${this.opts.version}`,
        containerRuntimeVersion: `skiff://${this.opts.version}`,
      },
    };
  }
}

import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';

import type { Logger } from 'pino';

import { ApiError } from '../api/errors.js';
import { type Condition, setCondition } from '../api/kinds/conditions.js';
import { parseCpuMillis, runsImage } from '../api/kinds/function-workload.js';
import type { ResourceObject } from '../api/kinds/types.js';
import type { ResourceService } from '../api/resources.js';
import type { CredentialProvider } from '../oci/index.js';
import { parseBytes } from '../util/quantity.js';
import { DEFAULT_READINESS, type PreparedImage, type ProbeSpec, type ReplicaEndpoint, resolveImageUser, type RuntimeHandler, WorkloadError, type WorkloadManager } from '../workloads/index.js';

import { cacheKey, Controller, EventRecorder, Informer } from './runtime/index.js';

/** Where a container or VM Function's ready replicas are published (the gateway's workload table). */
export interface WorkloadEndpoints {
  set(namespace: string, name: string, endpoints: ReplicaEndpoint[]): void;
  remove(namespace: string, name: string): void;
}

/** Prepares images: pulls or reads them and unpacks their root file system (workloads/image). */
export interface ImagePreparer {
  prepare(reference: string, opts?: { credentials?: CredentialProvider }): Promise<PreparedImage>;
}

export interface WorkloadControllerOptions {
  resources: ResourceService;
  logger: Logger;
  manager: WorkloadManager;
  images: ImagePreparer;
  /** Handlers by name (bwrap, runc, qemu). */
  handlers: ReadonlyMap<string, RuntimeHandler>;
  /** Registry credentials from a Function's imagePullSecrets. */
  pullSecrets?: (namespace: string, names: string[]) => Promise<CredentialProvider>;
  /** The image policies' verdict on a pulled image: undefined when allowed, else why not. */
  verifyArtifact?: (reference: string, digest: string) => Promise<string | undefined>;
  /** Takes a Function that is gone (or back to wasm) out of the gateway's workload table. */
  unpublish?: (namespace: string, name: string) => void;
  /** This node's labels, which a RuntimeClass's scheduling.nodeSelector must match (default: nodeLabels()). */
  nodeLabels?: Readonly<Record<string, string>>;
  /**
   * In a cluster: this node's name. Only the replicas the scheduler placed here (status.placement) run
   * here, and status.replicaStatuses merges every node's replicas, each tagged with its node. Without
   * it every replica runs here, as on a single node.
   */
  placementNode?: string;
  /** The replicas of a Function that run here changed (their readiness, their number, none left). */
  localReplicas?: (namespace: string, name: string, replicas: Array<{ ready: boolean }>) => void;
}

/** localPlacement is how many replicas the scheduler placed on a node (0 when none or not yet placed). */
export function localPlacement(obj: ResourceObject | undefined, node: string): number {
  const p: unknown = obj?.status?.placement;
  if (!Array.isArray(p)) return 0;
  const e = p.find((x: { nodeName?: unknown }) => x?.nodeName === node) as { replicas?: unknown } | undefined;
  return typeof e?.replicas === 'number' && e.replicas > 0 ? e.replicas : 0;
}

/**
 * nodeLabels are the well-known labels of the node Skiff runs on, as a kubelet would set them, plus
 * whether it can run hardware-accelerated VMs: what a RuntimeClass's nodeSelector can ask for.
 */
export function nodeLabels(name = hostname()): Record<string, string> {
  const arch = ({ x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' } as Record<string, string>)[process.arch] ?? process.arch;
  return { 'kubernetes.io/hostname': name, 'kubernetes.io/os': process.platform, 'kubernetes.io/arch': arch, 'skiff.dev/kvm': String(existsSync('/dev/kvm')) };
}

/** The fields of a RuntimeClass the controller applies. */
interface RuntimeClassFields {
  handler?: string;
  overhead?: { podFixed?: Record<string, string | number> };
  scheduling?: { nodeSelector?: Record<string, string> };
}

interface WorkloadSpecFields {
  runtimeClassName?: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: Record<string, string>;
  port?: number;
  workingDir?: string;
  resources?: { cpu?: string | number; memory?: string | number; pids?: number };
  readinessProbe?: ProbeFields;
  livenessProbe?: ProbeFields;
  terminationGracePeriodSeconds?: number;
  imagePullSecrets?: Array<{ name: string }>;
  replicas?: number;
  scale?: { minScale?: number; maxScale?: number; initialScale?: number };
}

interface ProbeFields {
  httpGet?: { path?: string; httpHeaders?: Array<{ name: string; value: string }> };
  tcpSocket?: unknown;
  initialDelaySeconds?: number;
  periodSeconds?: number;
  timeoutSeconds?: number;
  failureThreshold?: number;
  successThreshold?: number;
}

/**
 * WorkloadController runs container and VM Functions: it resolves the runtime class to its handler,
 * prepares the image (verified against the image policies at pull time), hands the resolved
 * definition to the WorkloadManager, which keeps the replicas running and publishes the ready ones
 * to the gateway, and writes what happened to status: replicas, their states, the isolation applied,
 * and a Ready condition whose reason says what is wrong (HandlerUnavailable, ImagePullFailed,
 * CrashLoopBackOff, ...). Wasm Functions are the FunctionController's.
 */
export class WorkloadController {
  readonly informer: Informer;
  private readonly classes: Informer;
  readonly controller: Controller;
  private readonly events: EventRecorder;
  /** The last problem per Function that kept it from running, for status. */
  private readonly problems = new Map<string, { reason: string; message: string }>();
  private readonly prepared = new Map<string, { revision: string; resolvedImage: string; runtimeClass: string; digest: string; resources: Record<string, unknown> }>();
  private readonly statusTimers = new Map<string, NodeJS.Timeout>();
  private labels?: Record<string, string>;

  constructor(private readonly opts: WorkloadControllerOptions) {
    this.informer = new Informer(opts.resources, opts.resources.kind('Function'), opts.logger);
    this.classes = new Informer(opts.resources, opts.resources.kind('RuntimeClass'), opts.logger);
    this.events = new EventRecorder(opts.resources, 'workload-controller', opts.logger);
    this.controller = new Controller({ name: 'workloads', logger: opts.logger, keys: () => this.informer.list().map(cacheKey), reconcile: (key) => this.reconcile(key), resyncMs: 60_000 });
    this.informer.addHandlers({
      onAdd: (o) => this.controller.enqueue(cacheKey(o)),
      onUpdate: (a, b) => {
        const node = opts.placementNode;
        if (a.metadata.generation !== b.metadata.generation || (node !== undefined && localPlacement(a, node) !== localPlacement(b, node))) this.controller.enqueue(cacheKey(b));
      },
      onDelete: (o) => this.controller.enqueue(cacheKey(o)),
    });
    // A RuntimeClass that changes handler affects the Functions of that class.
    const requeue = () => {
      for (const f of this.informer.list()) if (runsImage(f.spec ?? {})) this.controller.enqueue(cacheKey(f));
    };
    this.classes.addHandlers({ onAdd: requeue, onUpdate: requeue, onDelete: requeue });
  }

  async start(): Promise<void> {
    await this.classes.start();
    await this.informer.start();
    this.controller.start();
  }

  async stop(): Promise<void> {
    this.informer.stop();
    this.classes.stop();
    await this.controller.stop();
    for (const t of this.statusTimers.values()) clearTimeout(t);
    this.statusTimers.clear();
  }

  /** changed is the manager's notice that a Function's replicas changed: status is written shortly after. */
  changed(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    if (this.opts.localReplicas) {
      const st = this.opts.manager.status(namespace, name);
      this.opts.localReplicas(namespace, name, (st?.replicaStatuses ?? []).filter((r) => r.state !== 'Stopping').map((r) => ({ ready: r.ready })));
    }
    if (this.statusTimers.has(key)) return;
    this.statusTimers.set(
      key,
      setTimeout(() => {
        this.statusTimers.delete(key);
        const obj = this.informer.get(key);
        if (obj && runsImage(obj.spec ?? {})) void this.writeStatus(obj).catch((err: Error) => this.opts.logger.warn({ err: err.message, fn: key }, 'writing Function status failed'));
      }, 100),
    );
  }

  private async reconcile(key: string): Promise<void> {
    const [ns, name] = key.split('/') as [string, string];
    const obj = this.informer.get(key);
    if (!obj || !runsImage(obj.spec ?? {})) {
      this.prepared.delete(key);
      this.problems.delete(key);
      if (this.opts.manager.has(ns, name)) await this.opts.manager.remove(ns, name);
      this.opts.unpublish?.(ns, name);
      return;
    }
    const spec = obj.spec as WorkloadSpecFields;
    const node = this.opts.placementNode;
    const local = node !== undefined ? localPlacement(obj, node) : undefined;
    if (local === 0) {
      // Nothing placed here (yet, or any more): the replicas run on other nodes.
      this.prepared.delete(key);
      this.problems.delete(key);
      if (this.opts.manager.has(ns, name)) {
        await this.opts.manager.remove(ns, name);
        this.opts.logger.info({ fn: key, node }, 'no replicas placed on this node any more');
      }
      this.opts.unpublish?.(ns, name);
      this.opts.localReplicas?.(ns, name, []);
      await this.writeStatus(obj);
      return;
    }
    try {
      const className = spec.runtimeClassName ?? 'wasm';
      const rc = this.classes.get(className);
      if (!rc) throw new WorkloadError('RuntimeClassNotFound', `spec.runtimeClassName: there is no RuntimeClass "${className}"; use container or vm, or create it (skiff get runtimeclasses)`);
      const rcFields = rc as unknown as RuntimeClassFields;
      const handlerName = String(rcFields.handler ?? '');
      this.checkScheduling(className, rcFields.scheduling?.nodeSelector);
      if (handlerName === 'wasm') throw new WorkloadError('HandlerMismatch', `RuntimeClass ${className} has handler wasm, which runs modules: set spec.module instead of spec.image, or name a class whose handler is bwrap, runc or qemu`);
      const handler = this.opts.handlers.get(handlerName);
      if (!handler) throw new WorkloadError('HandlerUnavailable', `RuntimeClass ${className} names handler "${handlerName}", which this server does not have (handlers: ${[...this.opts.handlers.keys()].join(', ')})`);
      const missing = await handler.unavailable();
      if (missing) throw new WorkloadError('HandlerUnavailable', `${handlerName}: ${missing}`);
      const credentials = spec.imagePullSecrets?.length && this.opts.pullSecrets ? await this.opts.pullSecrets(ns, spec.imagePullSecrets.map((s) => s.name)) : undefined;
      const pinned = typeof obj.status?.resolvedImage === 'string' && spec.image.startsWith('oci://') && !spec.image.includes('@') && String(obj.status.resolvedImage).startsWith(`${spec.image}@`) ? String(obj.status.resolvedImage) : spec.image;
      const image = await this.opts.images.prepare(pinned, { credentials });
      if (this.opts.verifyArtifact && spec.image.startsWith('oci://')) {
        const refusal = await this.opts.verifyArtifact(spec.image, image.digest);
        if (refusal) throw new WorkloadError('ImagePolicyDenied', `spec.image ${spec.image}: ${refusal}; the image was pulled but nothing was started`);
      }
      const def = this.definition(obj, spec, className, handler, image, rcFields.overhead?.podFixed);
      const prev = this.prepared.get(key);
      const overhead = rcFields.overhead?.podFixed;
      const resources = {
        memory: `${Math.ceil(def.resources.memoryBytes / 1024 / 1024)}Mi`,
        ...(def.resources.cpuMillis !== undefined ? { cpu: `${def.resources.cpuMillis}m` } : {}),
        ...(overhead && Object.keys(overhead).length ? { overhead: Object.fromEntries(Object.entries(overhead).map(([k, v]) => [k, String(v)])) } : {}),
      };
      this.prepared.set(key, { revision: def.revision, resolvedImage: image.reference, runtimeClass: `${className}/${handlerName}`, digest: image.digest, resources });
      this.problems.delete(key);
      this.opts.manager.apply(def);
      if (local !== undefined) this.opts.manager.scale(ns, name, local);
      if (!prev || prev.revision !== def.revision) await this.events.record(obj, 'Normal', prev ? 'RevisionUpdated' : 'Scheduled', `${prev ? 'replacing replicas with' : 'starting'} ${className} replicas (handler ${handlerName}) of ${image.reference}`);
      this.changed(ns, name);
    } catch (err) {
      const reason = err instanceof WorkloadError ? err.reason : 'WorkloadFailed';
      const message = (err as Error).message;
      const before = this.problems.get(key);
      this.problems.set(key, { reason, message });
      await this.writeStatus(obj);
      if (before?.message !== message) await this.events.record(obj, 'Warning', reason, message);
      // A handler installed or an image pushed later is picked up by the retries (with backoff).
      throw err;
    }
  }

  /** checkScheduling refuses a class whose nodeSelector this node does not match, naming what differs. */
  private checkScheduling(className: string, selector: Record<string, string> | undefined): void {
    const labels = this.opts.nodeLabels ?? (this.labels ??= nodeLabels());
    const unmet = Object.entries(selector ?? {}).filter(([k, v]) => labels[k] !== v);
    if (unmet.length === 0) return;
    const has = (k: string) => (labels[k] === undefined ? 'no such label' : `${k}=${labels[k]}`);
    throw new WorkloadError('Unschedulable', `RuntimeClass ${className} runs only on nodes with ${unmet.map(([k, v]) => `${k}=${v}`).join(', ')}; this node has ${unmet.map(([k]) => has(k)).join(', ')} (labels: ${Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(', ')})`);
  }

  private definition(obj: ResourceObject, spec: WorkloadSpecFields, className: string, handler: RuntimeHandler, image: PreparedImage, overhead?: Record<string, string | number>) {
    const cfg = image.config;
    // Kubernetes' rule: command replaces the entrypoint and drops the image's cmd; args replace cmd.
    const argv = spec.command ? [...spec.command, ...(spec.args ?? [])] : [...(cfg.entrypoint ?? []), ...(spec.args ?? cfg.cmd ?? [])];
    if (argv.length === 0) throw new WorkloadError('InvalidImage', `spec.image ${spec.image} has no entrypoint or cmd and the Function sets no spec.command: nothing to run`);
    const port = spec.port ?? 8080;
    const env: Record<string, string> = {};
    for (const kv of cfg.env ?? []) {
      const i = kv.indexOf('=');
      if (i > 0) env[kv.slice(0, i)] = kv.slice(i + 1);
    }
    Object.assign(env, spec.env ?? {}, { PORT: String(port) });
    const r = spec.resources ?? {};
    // The class's fixed overhead (the sandbox, a guest kernel) is added to what the Function asks for.
    const extraMemory = overhead?.memory !== undefined ? (parseBytes(overhead.memory) ?? 0) : 0;
    const extraCpu = overhead?.cpu !== undefined ? (parseCpuMillis(overhead.cpu) ?? 0) : 0;
    const cpuMillis = r.cpu !== undefined ? parseCpuMillis(r.cpu) : undefined;
    const resources = {
      memoryBytes: (r.memory !== undefined ? parseBytes(r.memory)! : 256 * 1024 * 1024) + extraMemory,
      cpuMillis: cpuMillis !== undefined ? cpuMillis + extraCpu : undefined,
      pids: r.pids ?? 256,
    };
    const scale = spec.scale ?? {};
    const minScale = scale.minScale ?? 1;
    // The autoscaler decides from here on; an HPA or spec.replicas sets the count it starts at.
    const placed = this.opts.placementNode !== undefined ? localPlacement(obj, this.opts.placementNode) : undefined;
    const initial = placed ?? spec.replicas ?? scale.initialScale ?? Math.max(1, minScale);
    const user = resolveImageUser(image.rootfs, cfg.user, `image ${spec.image}`);
    const fields = { handler: handler.name, image: image.digest, argv, env, workingDir: spec.workingDir ?? cfg.workingDir ?? '/', port, resources, user };
    return {
      namespace: obj.metadata.namespace ?? 'default',
      name: obj.metadata.name,
      revision: createHash('sha256').update(JSON.stringify(fields)).digest('hex').slice(0, 12),
      runtimeClass: className,
      handler,
      image,
      argv,
      env,
      workingDir: fields.workingDir || '/',
      user,
      port,
      resources,
      readiness: probeSpec(spec.readinessProbe) ?? DEFAULT_READINESS,
      liveness: probeSpec(spec.livenessProbe),
      graceMs: (spec.terminationGracePeriodSeconds ?? 30) * 1000,
      // The scheduler already split the count over the nodes: the node's share is not raised to the minimum.
      initialScale: placed ?? Math.max(initial, minScale),
      maxScale: scale.maxScale ?? 0,
    };
  }

  private async writeStatus(obj: ResourceObject): Promise<void> {
    const key = cacheKey(obj);
    const [ns, name] = key.split('/') as [string, string];
    const def = this.opts.resources.kind('Function');
    const current = (await this.opts.resources.tryGet(def, ns, name)) ?? obj;
    const old = current.status ?? {};
    const problem = this.problems.get(key);
    const st = this.opts.manager.status(ns, name);
    const prepared = this.prepared.get(key);
    const node = this.opts.placementNode;
    // In a cluster the replica list is every node's: this node replaces its own entries only.
    type Entry = { nodeName?: string; ready?: boolean; state?: string };
    const others = node !== undefined ? ((old.replicaStatuses as Entry[] | undefined) ?? []).filter((r) => r.nodeName !== undefined && r.nodeName !== node) : [];
    if (node !== undefined && !st && !problem) {
      const mine = ((old.replicaStatuses as Entry[] | undefined) ?? []).length - others.length;
      if (mine === 0) return;
      const next = { ...old, replicaStatuses: others, replicas: others.filter((r) => r.state !== 'Stopping').length, readyReplicas: others.filter((r) => r.ready).length };
      try {
        await this.opts.resources.updateStatus(def, ns, name, { metadata: { resourceVersion: current.metadata.resourceVersion }, status: next });
      } catch (err) {
        if (err instanceof ApiError && err.reason === 'Conflict') return this.changed(ns, name);
        if (!(err instanceof ApiError && err.reason === 'NotFound')) throw err;
      }
      return;
    }
    let ready: Omit<Condition, 'type' | 'lastTransitionTime' | 'observedGeneration'>;
    if (problem) ready = { status: 'False', reason: problem.reason, message: problem.message + (st && st.readyReplicas > 0 ? ` (${st.readyReplicas} replica(s) of the previous revision still serving)` : '') };
    else if (!st) ready = { status: 'Unknown', reason: 'Pending', message: 'preparing the image' };
    else if (st.readyReplicas > 0 && st.current) ready = { status: 'True', reason: 'ReplicasReady', message: `${st.readyReplicas} of ${st.replicas} replica(s) ready` };
    else if (st.replicas === 0) ready = { status: 'True', reason: 'ScaledToZero', message: 'no replica runs; the next request starts one' };
    else {
      const bad = st.replicaStatuses.find((r) => r.state === 'CrashLoopBackOff' || r.state === 'NotReady');
      ready = bad ? { status: 'False', reason: bad.state === 'CrashLoopBackOff' ? 'CrashLoopBackOff' : 'ReplicaNotReady', message: `${bad.name}: ${bad.message ?? bad.state}` } : { status: 'False', reason: 'ReplicasStarting', message: `${st.replicas} replica(s) starting` };
    }
    // In a cluster the count is every node's: this node's replicas plus what the others report.
    if (node !== undefined && st && ready.reason === 'ReplicasReady') {
      const live = others.filter((r) => r.state !== 'Stopping');
      ready = { ...ready, message: `${st.readyReplicas + others.filter((r) => r.ready).length} of ${st.replicas + live.length} replica(s) ready on ${new Set([node, ...live.map((r) => r.nodeName)]).size} node(s)` };
    }
    const conditions = setCondition(old.conditions, { type: 'Ready', ...ready, observedGeneration: current.metadata.generation });
    const next: Record<string, unknown> = { ...old, observedGeneration: current.metadata.generation, conditions };
    if (prepared) Object.assign(next, { runtimeClassName: prepared.runtimeClass, resolvedImage: prepared.resolvedImage, digest: prepared.digest, resources: prepared.resources });
    if (st && node === undefined) Object.assign(next, { replicas: st.replicas, readyReplicas: st.readyReplicas, replicaStatuses: st.replicaStatuses, ...(st.isolation ? { isolation: st.isolation } : {}) });
    else if (st) {
      const mine = st.replicaStatuses.map((r) => ({ ...r, nodeName: node }));
      Object.assign(next, {
        replicas: st.replicas + others.filter((r) => r.state !== 'Stopping').length,
        readyReplicas: st.readyReplicas + others.filter((r) => r.ready).length,
        replicaStatuses: [...others, ...mine],
        ...(st.isolation ? { isolation: st.isolation } : {}),
      });
    }
    if (JSON.stringify(next) === JSON.stringify(old)) return;
    try {
      await this.opts.resources.updateStatus(def, ns, name, { metadata: { resourceVersion: current.metadata.resourceVersion }, status: next });
    } catch (err) {
      if (err instanceof ApiError && (err.reason === 'Conflict' || err.reason === 'NotFound')) return this.changed(ns, name);
      throw err;
    }
  }
}

function probeSpec(p: ProbeFields | undefined): ProbeSpec | undefined {
  if (!p) return undefined;
  const headers: Record<string, string> = {};
  for (const h of p.httpGet?.httpHeaders ?? []) headers[h.name.toLowerCase()] = h.value;
  return {
    path: p.httpGet?.path ?? '/',
    headers,
    anyStatus: p.httpGet === undefined,
    initialDelayMs: (p.initialDelaySeconds ?? 0) * 1000,
    periodMs: (p.periodSeconds ?? 10) * 1000,
    timeoutMs: (p.timeoutSeconds ?? 1) * 1000,
    failureThreshold: p.failureThreshold ?? 3,
    successThreshold: p.successThreshold ?? 1,
  };
}

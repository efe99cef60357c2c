import { createHash } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { Logger } from 'pino';

import { probe, type ProbeSpec } from './probe.js';
import type { AppliedIsolation, Replica, ReplicaEndpoint, ReplicaExit, ReplicaSpec, RuntimeHandler } from './types.js';

/** WorkloadDefinition is one container or VM Function, resolved: the handler, the image and what to run. */
export interface WorkloadDefinition extends Pick<ReplicaSpec, 'namespace' | 'image' | 'argv' | 'env' | 'workingDir' | 'user' | 'port' | 'resources'> {
  name: string;
  /** Changes whenever running replicas must be replaced (image, argv, env, resources, handler). */
  revision: string;
  runtimeClass: string;
  handler: RuntimeHandler;
  readiness: ProbeSpec;
  liveness?: ProbeSpec;
  graceMs: number;
  /** Replicas started when the Function is new, until the autoscaler decides (see WorkloadManager.scale). */
  initialScale: number;
  /** Most replicas at once; 0 for no limit. */
  maxScale: number;
}

/** The states a replica shows in status. */
export type ReplicaState = 'Starting' | 'Ready' | 'NotReady' | 'Stopping' | 'CrashLoopBackOff';

/** ReplicaStatus is one replica as `status.replicaStatuses` shows it. */
export interface ReplicaStatus {
  name: string;
  state: ReplicaState;
  ready: boolean;
  restarts: number;
  revision: string;
  startedAt?: string;
  message?: string;
  lastExit?: ReplicaExit & { at: string };
}

/** WorkloadStatus is what the manager knows of one Function's replicas. */
export interface WorkloadStatus {
  replicas: number;
  readyReplicas: number;
  replicaStatuses: ReplicaStatus[];
  isolation?: AppliedIsolation;
  /** The newest revision has at least one ready replica (or is scaled to zero). */
  current: boolean;
  /** Replicas the autoscaler asked for. */
  desired: number;
}

/** What the manager needs from its owner (the workload controller). */
export interface WorkloadManagerOptions {
  /** Replica directories go under DIR/replicas. */
  dataDir: string;
  logger: Logger;
  /** Publishes a Function's ready endpoints to the gateway (none: requests wait in the activator). */
  publish(namespace: string, name: string, endpoints: ReplicaEndpoint[]): void;
  /** No replica of the Function is ready and none is about to be (every one crashing): requests waiting for one should fail with this reason. */
  failing(namespace: string, name: string, why: string): void;
  /** Something in a Function's status changed (replica states, restarts). */
  changed(namespace: string, name: string): void;
  /** One output line of a replica. */
  log(namespace: string, name: string, stream: 'stdout' | 'stderr' | 'console', line: string): void;
  /** Backoff before the first restart; it doubles per crash up to maxBackoffMs. */
  baseBackoffMs?: number;
  maxBackoffMs?: number;
  /** A replica not ready after this long shows NotReady with the probe's message. */
  startupMs?: number;
}

/** A replica that ran ready for this long is healthy again: its next crash starts the backoff over. */
const HEALTHY_RUN_MS = 60_000;
/** Readiness is probed this often until a replica is first ready. */
const FAST_PROBE_MS = 10;

interface Slot {
  id: string;
  revision: string;
  def: WorkloadDefinition;
  state: ReplicaState;
  ready: boolean;
  restarts: number;
  crashes: number;
  startedAt?: number;
  message?: string;
  lastExit?: ReplicaExit & { at: string };
  replica?: Replica;
  retired: boolean;
  /** Resolves the current backoff or probe sleep early (retirement). */
  wake?: () => void;
  done: Promise<void>;
}

interface Entry {
  def: WorkloadDefinition;
  slots: Slot[];
  seq: number;
  /** Replicas of the current revision to run: initialScale, then what the autoscaler says. */
  replicas: number;
  isolation?: AppliedIsolation;
  removed: boolean;
  /** Replica restarts over the Function's life (replicas scaled away take theirs with them). */
  restarts: number;
}

/** WorkloadStats is one Function's replica counts, for the metrics exporter. */
export interface WorkloadStats {
  namespace: string;
  name: string;
  runtimeClass: string;
  replicas: number;
  readyReplicas: number;
  restarts: number;
}

/**
 * WorkloadManager keeps each container and VM Function's replicas running: it starts them through
 * the runtime class's handler, probes readiness and liveness, publishes ready replicas to the gateway,
 * restarts crashed ones with exponential backoff (CrashLoopBackOff), replaces replicas when the
 * Function changes (new ones first; the old ones serve until the new ones are ready), scales from
 * to the count the autoscaler sets, and stops everything with SIGTERM, the grace period and SIGKILL. It knows nothing of namespaces, seccomp or QEMU: that is the handlers' business.
 */
export class WorkloadManager {
  private readonly entries = new Map<string, Entry>();
  private readonly baseBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly startupMs: number;
  private closed = false;
  private readonly runDir: string;

  constructor(private readonly opts: WorkloadManagerOptions) {
    this.baseBackoffMs = opts.baseBackoffMs ?? 1_000;
    this.maxBackoffMs = opts.maxBackoffMs ?? 60_000;
    this.startupMs = opts.startupMs ?? 30_000;
    this.runDir = replicaRoot(opts.dataDir);
    // Replica directories of a previous run are leftovers: their processes died with it.
    rmSync(this.runDir, { recursive: true, force: true });
  }

  /** apply creates or updates a Function's workload. */
  apply(def: WorkloadDefinition): void {
    if (this.closed) return;
    const key = `${def.namespace}/${def.name}`;
    let e = this.entries.get(key);
    if (!e) {
      e = { def, slots: [], seq: 0, replicas: def.initialScale, removed: false, restarts: 0 };
      this.entries.set(key, e);
    }
    e.def = def;
    this.ensure(e);
    this.publish(e);
  }

  /** remove stops every replica of a Function (grace period, then kill) and forgets it. */
  async remove(namespace: string, name: string): Promise<void> {
    const key = `${namespace}/${name}`;
    const e = this.entries.get(key);
    if (!e) return;
    this.entries.delete(key);
    e.removed = true;
    await Promise.all(e.slots.map((s) => this.retire(e, s)));
  }

  /** scale sets how many replicas of a Function's current revision run (the autoscaler's decision). */
  scale(namespace: string, name: string, replicas: number): void {
    const e = this.entries.get(`${namespace}/${name}`);
    if (!e || e.removed || e.replicas === replicas) return;
    e.replicas = replicas;
    this.ensure(e);
    this.opts.changed(namespace, name);
  }

  has(namespace: string, name: string): boolean {
    return this.entries.has(`${namespace}/${name}`);
  }

  /** stats counts every Function's replicas, ready replicas and restarts; read at scrape time. */
  stats(): WorkloadStats[] {
    const out: WorkloadStats[] = [];
    for (const e of this.entries.values()) {
      let replicas = 0;
      let ready = 0;
      for (const s of e.slots) {
        if (s.replica !== undefined || s.state === 'CrashLoopBackOff' || s.state === 'Starting') replicas++;
        if (s.ready) ready++;
      }
      out.push({ namespace: e.def.namespace, name: e.def.name, runtimeClass: e.def.runtimeClass, replicas, readyReplicas: ready, restarts: e.restarts });
    }
    return out;
  }

  /** status is what a Function's status shows of its replicas. */
  status(namespace: string, name: string): WorkloadStatus | undefined {
    const e = this.entries.get(`${namespace}/${name}`);
    if (!e) return undefined;
    const live = e.slots.filter((s) => s.replica !== undefined || s.state === 'CrashLoopBackOff' || s.state === 'Starting');
    const current = e.slots.filter((s) => s.revision === e.def.revision && !s.retired);
    return {
      replicas: live.length,
      readyReplicas: e.slots.filter((s) => s.ready).length,
      replicaStatuses: e.slots.map((s) => ({
        name: s.id,
        state: s.state,
        ready: s.ready,
        restarts: s.restarts,
        revision: s.revision,
        ...(s.startedAt ? { startedAt: new Date(s.startedAt).toISOString() } : {}),
        ...(s.message ? { message: s.message } : {}),
        ...(s.lastExit ? { lastExit: s.lastExit } : {}),
      })),
      isolation: e.isolation,
      current: current.some((s) => s.ready) || (current.length === 0 && e.replicas === 0),
      desired: this.desired(e),
    };
  }

  /** close stops every replica of every Function. */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.entries.values()];
    this.entries.clear();
    await Promise.all(
      all.map(async (e) => {
        e.removed = true;
        await Promise.all(e.slots.map((s) => this.retire(e, s)));
      }),
    );
  }

  /** desired is how many replicas of the current revision should run. */
  private desired(e: Entry): number {
    const max = e.def.maxScale;
    return max > 0 ? Math.min(e.replicas, max) : e.replicas;
  }

  /** ensure starts or stops replicas of the current revision to the desired count, and retires old revisions once replaced. */
  private ensure(e: Entry): void {
    if (e.removed || this.closed) return;
    const want = this.desired(e);
    const current = e.slots.filter((s) => s.revision === e.def.revision && !s.retired);
    for (let i = current.length; i < want; i++) this.startSlot(e);
    if (current.length > want) {
      // Scale down: the ones not ready go first, then the newest.
      const extra = [...current].sort((a, b) => Number(a.ready) - Number(b.ready) || b.id.localeCompare(a.id)).slice(0, current.length - want);
      for (const s of extra) void this.retire(e, s);
    }
    const fresh = e.slots.filter((s) => s.revision === e.def.revision && !s.retired);
    const readyFresh = fresh.filter((s) => s.ready).length;
    if (readyFresh >= Math.min(want, fresh.length) && (want === 0 || readyFresh > 0)) {
      for (const s of e.slots) if (s.revision !== e.def.revision && !s.retired) void this.retire(e, s);
    }
  }

  private startSlot(e: Entry): void {
    const d = e.def;
    const slot: Slot = { id: `${d.namespace}.${d.name}.${++e.seq}`, revision: d.revision, def: d, state: 'Starting', ready: false, restarts: 0, crashes: 0, retired: false, done: Promise.resolve() };
    e.slots.push(slot);
    slot.done = this.run(e, slot).catch((err: Error) => this.opts.logger.error({ err: err.message, replica: slot.id }, 'replica loop failed'));
    this.opts.changed(d.namespace, d.name);
  }

  /** run is one replica slot's life: start, probe, and restart with backoff until retired. */
  private async run(e: Entry, slot: Slot): Promise<void> {
    const d = slot.def;
    // Short names: a replica's Unix socket lives here, and socket paths are limited to 107 bytes.
    const dir = join(this.runDir, createHash('sha256').update(slot.id).digest('hex').slice(0, 12));
    while (!slot.retired) {
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      slot.state = 'Starting';
      slot.message = undefined;
      this.opts.changed(d.namespace, d.name);
      let replica: Replica;
      try {
        replica = await d.handler.start({
          id: slot.id,
          namespace: d.namespace,
          function: d.name,
          image: d.image,
          argv: d.argv,
          env: d.env,
          workingDir: d.workingDir,
          user: d.user,
          port: d.port,
          resources: d.resources,
          dir,
          log: (stream, line) => this.opts.log(d.namespace, d.name, stream, line),
        });
      } catch (err) {
        const reason = (err as { reason?: string }).reason ?? 'StartFailed';
        slot.lastExit = { code: null, signal: null, reason, message: (err as Error).message, at: new Date().toISOString() };
        this.opts.log(d.namespace, d.name, 'stderr', `replica ${slot.id} could not start: ${(err as Error).message}`);
        if (await this.backoff(e, slot)) continue;
        break;
      }
      if (slot.retired) {
        await replica.stop(d.graceMs);
        break;
      }
      slot.replica = replica;
      slot.startedAt = Date.now();
      e.isolation = replica.isolation;
      const exit = await this.watch(e, slot, replica);
      slot.replica = undefined;
      slot.ready = false;
      this.publish(e);
      slot.lastExit = { ...exit, at: new Date().toISOString() };
      if (slot.retired) break;
      slot.restarts++;
      e.restarts++;
      this.opts.log(d.namespace, d.name, 'stderr', `replica ${slot.id} ended: ${exit.message}`);
      if (Date.now() - (slot.startedAt ?? 0) >= HEALTHY_RUN_MS) slot.crashes = 0;
      if (!(await this.backoff(e, slot))) break;
    }
    rmSync(dir, { recursive: true, force: true });
  }

  /** backoff waits before a restart (CrashLoopBackOff); false when the slot was retired meanwhile. */
  private async backoff(e: Entry, slot: Slot): Promise<boolean> {
    slot.crashes++;
    const ms = Math.min(this.baseBackoffMs * 2 ** (slot.crashes - 1), this.maxBackoffMs);
    slot.state = 'CrashLoopBackOff';
    slot.message = `back-off ${Math.round(ms / 100) / 10}s restarting: ${slot.lastExit?.message ?? 'it ended'}`;
    this.opts.changed(slot.def.namespace, slot.def.name);
    this.checkFailing(e);
    await this.sleep(slot, ms);
    return !slot.retired;
  }

  private sleep(slot: Slot, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        slot.wake = undefined;
        resolve();
      }
      slot.wake = done;
    });
  }

  /** watch probes a running replica until it exits (or is stopped for failing liveness). */
  private async watch(e: Entry, slot: Slot, replica: Replica): Promise<ReplicaExit> {
    const d = slot.def;
    let exited = false;
    const exit = replica.exited.then((x) => {
      exited = true;
      slot.wake?.();
      return x;
    });
    const started = Date.now();
    let passes = 0;
    let fails = 0;
    let liveFails = 0;
    let everReady = false;
    if (d.readiness.initialDelayMs > 0) await Promise.race([exit, this.sleep(slot, d.readiness.initialDelayMs)]);
    while (!exited && !slot.retired) {
      const r = await probe(replica.endpoint, d.readiness);
      if (exited || slot.retired) break;
      if (r.ok) {
        passes++;
        fails = 0;
        if (!slot.ready && passes >= (everReady ? d.readiness.successThreshold : 1)) {
          slot.ready = true;
          everReady = true;
          slot.state = 'Ready';
          slot.message = undefined;
          slot.crashes = slot.crashes > 0 && slot.restarts > 0 ? slot.crashes : 0;
          this.publish(e);
          this.ensure(e);
          this.checkFailing(e);
          this.opts.changed(d.namespace, d.name);
        }
      } else {
        fails++;
        passes = 0;
        if (slot.ready && fails >= d.readiness.failureThreshold) {
          slot.ready = false;
          slot.state = 'NotReady';
          slot.message = `readiness probe failed: ${r.message}`;
          this.publish(e);
          this.opts.changed(d.namespace, d.name);
        } else if (!everReady && Date.now() - started >= this.startupMs && slot.state !== 'NotReady') {
          slot.state = 'NotReady';
          slot.message = `not ready after ${Math.round((Date.now() - started) / 1000)}s: ${r.message}`;
          this.opts.changed(d.namespace, d.name);
          this.checkFailing(e);
        }
      }
      if (d.liveness && everReady) {
        const l = d.liveness === d.readiness ? r : await probe(replica.endpoint, d.liveness);
        liveFails = l.ok ? 0 : liveFails + 1;
        if (!l.ok && liveFails >= d.liveness.failureThreshold) {
          slot.message = `liveness probe failed ${liveFails} times: ${l.message}; restarting`;
          this.opts.log(d.namespace, d.name, 'stderr', `replica ${slot.id}: ${slot.message}`);
          const x = await replica.stop(d.graceMs);
          return { ...x, reason: 'LivenessProbeFailed', message: slot.message };
        }
      }
      const period = slot.ready ? Math.min(d.readiness.periodMs, d.liveness?.periodMs ?? Infinity) : Math.min(FAST_PROBE_MS * 2 ** Math.min(fails, 4), 200, d.readiness.periodMs);
      await Promise.race([exit, this.sleep(slot, period)]);
    }
    return exit;
  }

  /** retire stops a slot for good: its replica gets SIGTERM, the grace period, then SIGKILL. */
  private async retire(e: Entry, slot: Slot): Promise<void> {
    if (slot.retired) return slot.done;
    slot.retired = true;
    slot.ready = false;
    slot.wake?.();
    if (!e.removed) this.publish(e);
    if (slot.replica) {
      slot.state = 'Stopping';
      this.opts.changed(slot.def.namespace, slot.def.name);
      await slot.replica.stop(slot.def.graceMs);
    }
    await slot.done;
    e.slots = e.slots.filter((s) => s !== slot);
    if (!e.removed) this.opts.changed(slot.def.namespace, slot.def.name);
  }

  private publish(e: Entry): void {
    if (e.removed) return;
    const d = e.def;
    const endpoints = e.slots.filter((s) => s.ready && s.replica).map((s) => s.replica!.endpoint);
    this.opts.publish(d.namespace, d.name, endpoints);
  }

  /** checkFailing tells the owner when no replica is ready and none can be soon (every one crashing), so waiting requests fail fast. */
  private checkFailing(e: Entry): void {
    if (e.slots.some((s) => s.ready)) return;
    const current = e.slots.filter((s) => s.revision === e.def.revision && !s.retired);
    if (current.length > 0 && current.every((s) => s.state === 'CrashLoopBackOff' || s.state === 'NotReady')) {
      this.opts.failing(e.def.namespace, e.def.name, current[0]!.message ?? 'the replica is not ready');
    }
  }
}

/**
 * replicaRoot is where replica directories go: DATA_DIR/run, or a directory under the system's
 * temporary directory named after the data dir when DATA_DIR is too long for socket paths inside it.
 */
export function replicaRoot(dataDir: string): string {
  const inData = join(dataDir, 'run');
  if (inData.length <= 64) return inData;
  return join(tmpdir(), `skiff-run-${createHash('sha256').update(dataDir).digest('hex').slice(0, 12)}`);
}

import type { Logger } from 'pino';

import type { WriteGuard } from '../store/index.js';

import { ElectionConfigError } from './errors.js';

/** The leader lease of the controllers that run once per cluster (fixed in the contracts). */
export const LEADER_LEASE = { namespace: 'skiff-system', name: 'skiff-leader' } as const;

/** The part of a coordination.k8s.io/v1 Lease's spec that leader election reads and writes. */
export interface LeaseSpec {
  /** Absent when nobody holds the lease (released on a clean shutdown). */
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  /** MicroTime strings, as the Lease kind stores them. */
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

/** A lease as read or written, with where it sits in the store so writes can be fenced on it. */
export interface LeaseRecord {
  spec: LeaseSpec;
  /** The object's metadata.resourceVersion: every update names it (optimistic concurrency). */
  resourceVersion: string;
  /** The lease object's store key and its modRevision after this read or write. */
  key: string;
  modRevision: number;
}

/**
 * LeaseClient reads and writes the one lease an elector competes for. Conflicts are answers, not
 * errors: `create` gives undefined when the lease already exists, `update` when the resourceVersion is
 * stale. Anything else (store down) throws and counts as a failed attempt.
 */
export interface LeaseClient {
  get(): Promise<LeaseRecord | undefined>;
  create(spec: LeaseSpec): Promise<LeaseRecord | undefined>;
  update(spec: LeaseSpec, resourceVersion: string): Promise<LeaseRecord | undefined>;
}

/** The elector's time source, injectable so tests drive expiry without sleeping. */
export interface ElectionClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: ElectionClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

export interface LeaderElectorOptions {
  /** This node's name: written as the lease's holderIdentity. */
  identity: string;
  client: LeaseClient;
  /** How long others wait after they last saw the lease change before they take it (client-go: 15 s). */
  leaseDurationMs?: number;
  /** How long a leader keeps leading without a successful renew (client-go: 10 s). */
  renewDeadlineMs?: number;
  /** The pause between attempts to acquire or renew (client-go: 2 s). */
  retryPeriodMs?: number;
  clock?: ElectionClock;
  log?: Logger;
  onStartedLeading?: () => void;
  onStoppedLeading?: () => void;
  /** Called with the holder's identity whenever the observed holder changes (this node included). */
  onNewLeader?: (identity: string) => void;
}

const microTime = (ms: number) => new Date(ms).toISOString().replace(/Z$/, '000Z');

/**
 * LeaderElector competes for one Lease with client-go's semantics: it takes the lease when nobody holds
 * it or when the holder's record has not changed for a lease duration by this node's own clock (clocks
 * of different nodes are never compared), renews it every retry period, and stops leading when no renew
 * succeeded within the renew deadline or another holder is seen. Every lease write names the
 * resourceVersion it read. After losing, it keeps competing, so a recovered node can lead again.
 *
 * Leading is only this node's belief; `fence()` is what makes it safe: a write guarded by it lands only
 * while the lease is still at the revision this node last wrote.
 *
 * @example
 * const elector = new LeaderElector({ identity: 'node-1', client, onStartedLeading: start, onStoppedLeading: stop });
 * elector.start();
 * const store = new FencedStore(inner, elector); // writes of once-per-cluster controllers
 */
export class LeaderElector {
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly clock: ElectionClock;
  private running = false;
  private leading = false;
  private timer: unknown;
  private deadlineTimer: unknown;
  private inFlight: Promise<void> | undefined;
  /** The last record read or written, and when (by this clock) it was first seen in that version. */
  private observed: LeaseRecord | undefined;
  private observedAt = 0;
  /** The record of this node's last successful write of the lease, while it leads. */
  private held: LeaseRecord | undefined;
  /** When the attempt behind the last successful acquire or renew began. */
  private renewedAt = 0;
  private reportedLeader: string | undefined;

  constructor(private readonly opts: LeaderElectorOptions) {
    this.leaseDurationMs = opts.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = opts.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = opts.retryPeriodMs ?? 2_000;
    this.clock = opts.clock ?? systemClock;
    if (!opts.identity) throw new ElectionConfigError('a leader elector needs an identity (the node name)');
    // Renewing must be able to fail a few times before others may take over, as client-go requires.
    if (!(this.leaseDurationMs > this.renewDeadlineMs)) throw new ElectionConfigError(`the lease duration (${this.leaseDurationMs} ms) must be longer than the renew deadline (${this.renewDeadlineMs} ms)`);
    if (!(this.renewDeadlineMs > this.retryPeriodMs) || !(this.retryPeriodMs > 0)) throw new ElectionConfigError(`the renew deadline (${this.renewDeadlineMs} ms) must be longer than the retry period (${this.retryPeriodMs} ms), which must be positive`);
  }

  /** start begins competing for the lease at once; callbacks report the outcome. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule(0);
  }

  /**
   * stop ends competing. A leader waits for its attempt in flight, then gives the lease up (clears the
   * holder) so another node takes over on its next attempt instead of after a lease duration.
   */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.clock.clearTimeout(this.timer);
    this.clock.clearTimeout(this.deadlineTimer);
    await this.inFlight;
    const held = this.held;
    if (held && this.observed?.resourceVersion === held.resourceVersion) {
      const now = this.clock.now();
      try {
        const released = await this.opts.client.update({ leaseDurationSeconds: 1, acquireTime: microTime(now), renewTime: microTime(now), leaseTransitions: held.spec.leaseTransitions ?? 0 }, held.resourceVersion);
        if (released) this.observed = released;
      } catch (err) {
        this.opts.log?.warn({ err, identity: this.opts.identity }, 'could not release the leader lease; another node takes over when it expires');
      }
    }
    if (this.leading) this.stopLeading('stopped');
    this.held = undefined;
  }

  /** isLeader: this node holds the lease by its own latest knowledge, and is within the renew deadline. */
  isLeader(): boolean {
    return this.leading && this.clock.now() - this.renewedAt < this.renewDeadlineMs;
  }

  /** The identity of the holder last seen, if any. */
  leader(): string | undefined {
    return this.observed?.spec.holderIdentity || undefined;
  }

  /**
   * fence is the guard a leader's writes carry: the lease's store key at the revision this node last
   * wrote it. Undefined when not leading. A renew moves it forward, so read it per write.
   */
  fence(): WriteGuard | undefined {
    return this.isLeader() && this.held ? { key: this.held.key, modRevision: this.held.modRevision } : undefined;
  }

  private schedule(ms: number): void {
    this.timer = this.clock.setTimeout(() => {
      this.inFlight = this.attempt().finally(() => {
        this.inFlight = undefined;
        if (this.running) this.schedule(this.retryPeriodMs);
      });
    }, ms);
  }

  private async attempt(): Promise<void> {
    const began = this.clock.now();
    let won = false;
    try {
      won = await this.tryAcquireOrRenew(began);
    } catch (err) {
      this.opts.log?.warn({ err, identity: this.opts.identity }, 'leader lease attempt failed');
    }
    if (!this.running) return;
    if (won) {
      this.renewedAt = began;
      this.armDeadline();
      if (!this.leading) {
        this.leading = true;
        this.opts.log?.info({ identity: this.opts.identity, revision: this.held?.modRevision }, 'started leading');
        this.opts.onStartedLeading?.();
      }
      return;
    }
    if (!this.leading) return;
    // Another holder on record means the lease is gone whatever the deadline says.
    const holder = this.observed?.spec.holderIdentity;
    if (holder !== this.opts.identity) this.stopLeading(`the lease is held by ${holder || 'nobody'}`);
    else if (this.clock.now() - this.renewedAt >= this.renewDeadlineMs) this.stopLeading('no renew within the renew deadline');
  }

  /** The renew deadline must end leadership even while an attempt hangs (store unreachable). */
  private armDeadline(): void {
    this.clock.clearTimeout(this.deadlineTimer);
    this.deadlineTimer = this.clock.setTimeout(() => {
      if (this.leading && this.clock.now() - this.renewedAt >= this.renewDeadlineMs) this.stopLeading('no renew within the renew deadline');
    }, this.renewDeadlineMs);
  }

  private stopLeading(why: string): void {
    this.leading = false;
    this.held = undefined;
    this.clock.clearTimeout(this.deadlineTimer);
    this.opts.log?.warn({ identity: this.opts.identity, why }, 'stopped leading');
    this.opts.onStoppedLeading?.();
  }

  private async tryAcquireOrRenew(now: number): Promise<boolean> {
    const { client, identity } = this.opts;
    const current = await client.get();
    if (!current) {
      const created = await client.create({ holderIdentity: identity, leaseDurationSeconds: this.leaseSeconds(), acquireTime: microTime(now), renewTime: microTime(now), leaseTransitions: 0 });
      if (!created) return false;
      this.observe(created, now);
      this.held = created;
      return true;
    }
    if (this.observed?.resourceVersion !== current.resourceVersion) this.observe(current, now);
    const holder = current.spec.holderIdentity;
    const mine = holder === identity;
    if (holder && !mine && this.observedAt + this.leaseDurationMs > now) return false;
    const spec: LeaseSpec = mine
      ? { ...current.spec, leaseDurationSeconds: this.leaseSeconds(), renewTime: microTime(now) }
      : { holderIdentity: identity, leaseDurationSeconds: this.leaseSeconds(), acquireTime: microTime(now), renewTime: microTime(now), leaseTransitions: (current.spec.leaseTransitions ?? 0) + 1 };
    const written = await client.update(spec, current.resourceVersion);
    if (!written) return false;
    this.observe(written, now);
    this.held = written;
    return true;
  }

  private observe(rec: LeaseRecord, now: number): void {
    this.observed = rec;
    this.observedAt = now;
    const holder = rec.spec.holderIdentity;
    if (holder && holder !== this.reportedLeader) {
      this.reportedLeader = holder;
      this.opts.onNewLeader?.(holder);
    }
  }

  private leaseSeconds(): number {
    return Math.max(1, Math.ceil(this.leaseDurationMs / 1000));
  }
}

import type { Logger } from 'pino';

import type { ResourceService } from '../api/resources.js';
import type { Store } from '../store/index.js';

import { FencedStore } from './fenced-store.js';
import { LEADER_LEASE, LeaderElector } from './leader.js';
import { LeaderScope,type LeaderTask } from './leader-scope.js';
import { ResourceLeaseClient } from './lease-client.js';

/** The leader election timings, as kube-controller-manager's `--leader-elect-*` flags name them. */
export interface ElectionTimings {
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
}

export interface LeadershipOptions extends ElectionTimings {
  /** The node's ResourceService: the lease is an ordinary Lease object written through it. */
  resources: ResourceService;
  /** The store under it, which the leader-only controllers' writes are fenced on. */
  store: Store;
  nodeName: string;
  logger: Logger;
}

/** What the metrics exporter reads. */
export interface LeadershipStats {
  isLeader: boolean;
  transitions: number;
  fencedWritesRefused: number;
}

/**
 * Leadership is one node's part in running the once-per-cluster controllers: its elector competes for
 * `skiff-system/skiff-leader`, the scope starts the registered controllers when the node wins and stops
 * them when it loses, and `resources` is the ResourceService those controllers write through, every
 * write fenced on the lease. A node that loses keeps competing.
 *
 * @example
 * const leadership = new Leadership({ resources, store, nodeName, logger });
 * leadership.add('event-gc', () => new EventGarbageCollector(leadership.resources, logger));
 * await leadership.start();
 */
export class Leadership {
  readonly elector: LeaderElector;
  readonly scope: LeaderScope;
  readonly fencedStore: FencedStore;
  /** The leader-only controllers' ResourceService: reads pass through, writes are fenced. */
  readonly resources: ResourceService;
  private transitions = 0;
  private firstAnswer?: () => void;
  private readonly client: ResourceLeaseClient;

  constructor(private readonly opts: LeadershipOptions) {
    this.scope = new LeaderScope(opts.logger);
    this.client = new ResourceLeaseClient(opts.resources, LEADER_LEASE);
    this.elector = new LeaderElector({
      identity: opts.nodeName,
      client: this.client,
      leaseDurationMs: opts.leaseDurationMs,
      renewDeadlineMs: opts.renewDeadlineMs,
      retryPeriodMs: opts.retryPeriodMs,
      log: opts.logger,
      onStartedLeading: () => {
        this.transitions++;
        this.scope.lead();
        this.firstAnswer?.();
      },
      onStoppedLeading: () => {
        this.transitions++;
        this.scope.yield();
      },
      onNewLeader: (holder) => {
        if (holder !== opts.nodeName) {
          opts.logger.info({ leader: holder }, 'the cluster is led by another node');
          this.firstAnswer?.();
        }
      },
    });
    this.fencedStore = new FencedStore(opts.store, this.elector);
    this.resources = opts.resources.withStore(this.fencedStore);
  }

  /** add registers a leader-only controller (a factory: each term of leadership builds a fresh one). */
  add(name: string, make: () => LeaderTask): void {
    this.scope.add(name, make);
  }

  /**
   * start begins competing. It waits, at most `waitMs`, for the first answer (this node leads, or
   * another does) and for the leader-only controllers to start when this node won: a lone node, or
   * one restarted under the same name, takes the lease on its first attempt, so its start is as
   * complete as before election existed.
   *
   * `sole`: no other process can share this store (SQLite holds an exclusive lock), so a lease held
   * under another name is a leftover of this data directory's previous run (the node was renamed)
   * and is cleared instead of waited out.
   */
  async start(waitMs = 5_000, opts: { sole?: boolean } = {}): Promise<void> {
    if (opts.sole) await this.clearLeftover();
    let timer: NodeJS.Timeout | undefined;
    const answered = new Promise<void>((resolve) => {
      this.firstAnswer = resolve;
      timer = setTimeout(resolve, waitMs);
      timer.unref();
    });
    this.elector.start();
    await answered;
    clearTimeout(timer);
    this.firstAnswer = undefined;
    await this.scope.settled();
  }

  private async clearLeftover(): Promise<void> {
    const held = await this.client.get();
    const holder = held?.spec.holderIdentity;
    if (!held || !holder || holder === this.opts.nodeName) return;
    this.opts.logger.info({ previous: holder }, 'clearing the leader lease of this data directory\'s previous node name');
    await this.client.update({ leaseDurationSeconds: held.spec.leaseDurationSeconds, leaseTransitions: held.spec.leaseTransitions ?? 0 }, held.resourceVersion);
  }

  isLeader(): boolean {
    return this.elector.isLeader();
  }

  /** The holder last seen. */
  leader(): string | undefined {
    return this.elector.leader();
  }

  /** The controller of the current term registered under this name, if this node leads. */
  current<T extends LeaderTask>(name: string): T | undefined {
    return this.scope.current<T>(name);
  }

  stats(): LeadershipStats {
    return { isLeader: this.elector.isLeader(), transitions: this.transitions, fencedWritesRefused: this.fencedStore.refused };
  }

  /**
   * stop ends the controllers while the lease is still held, so their last writes land, then gives
   * the lease up so another node takes over at its next attempt.
   */
  async stop(): Promise<void> {
    await this.scope.close();
    await this.elector.stop();
  }
}

import { SkiffError } from '../util/errors.js';

/**
 * NotLeaderError refuses a write that must come from the cluster's leader, made on a node that does not
 * hold the leader lease (never had it, or gave it up). The write did not happen.
 */
export class NotLeaderError extends SkiffError {
  constructor(message: string, code = 'not_leader') {
    super(code, message);
  }
}

/**
 * LeaseLostError is a NotLeaderError found by the store itself: the write carried this node's fence, and
 * the lease had already moved on (another node took over while this one was paused or cut off). The
 * write did not happen; this node's view that it leads is stale.
 */
export class LeaseLostError extends NotLeaderError {
  constructor(
    readonly leaseKey: string,
    readonly fencedRevision: number,
  ) {
    super(`the write was refused: this node's hold on the leader lease (revision ${fencedRevision}) is gone, another node leads now; nothing was written`, 'lease_lost');
  }
}

/** FenceConditionError means a caller gave its own guard to a fenced store, which owns the guard of every write. */
export class FenceConditionError extends SkiffError {
  constructor() {
    super('fence_guard_taken', 'a fenced store sets the guard of every write itself; write through the inner store to use another guard');
  }
}

/** ElectionConfigError is a leader elector configured in a way that cannot work (timings out of order, no identity). */
export class ElectionConfigError extends SkiffError {
  constructor(message: string) {
    super('election_config', message);
  }
}

/**
 * JoinError: this node could not join the cluster (a bad token, a CA that does not match the token's
 * hash, a refused request). Nothing was written; the message says what to check.
 */
export class JoinError extends SkiffError {
  constructor(code: 'join_token' | 'join_ca_mismatch' | 'join_refused' | 'join_unreachable', message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** BootstrapError: the store's cluster bootstrap is missing, unreadable or does not fit this node's flags. */
export class BootstrapError extends SkiffError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('cluster_bootstrap', message, options);
  }
}

import type { Registry } from 'prom-client';

import type { AdmissionStats } from '../../admission/index.js';
import type { PolicyDecisionStats } from '../../controllers/policy-controller.js';
import type { Controller } from '../../controllers/runtime/index.js';
import type { InstrumentedStore } from '../../store/index.js';
import { DURATION_BUCKETS_US } from '../../util/histogram.js';

import { LabelCache, NO_LABELS, ReadMetric } from './read-metric.js';

/** pairLabels makes a label cache for the areas' `A B` map keys (neither part holds a space). */
function pairLabels(a: string, b: string): LabelCache {
  return new LabelCache((k) => {
    const sp = k.indexOf(' ');
    return { [a]: k.slice(0, sp), [b]: k.slice(sp + 1) };
  });
}

/** registerPolicies adds gateway authorization decisions and their evaluation time per policy rule. */
export function registerPolicies(registry: Registry, policies: { decisionStats: Map<string, PolicyDecisionStats> }): void {
  const stats = policies.decisionStats;
  const RESULTS = ['allow', 'deny', 'error', 'backoff'] as const;
  const decisions = pairLabels('policy', 'result');
  const byPolicy = new LabelCache((policy) => ({ policy }));
  new ReadMetric('skiff_policy_decisions_total', 'Authorization decisions, by policy (the rule a route\'s authz filter asks) and result: allow, deny, error (failed closed) or backoff (denied without evaluation).', 'counter', (w) => {
    for (const [policy, s] of stats) for (const result of RESULTS) w.sample(decisions.get(`${policy} ${result}`), s[result]);
  }).register(registry);
  new ReadMetric(
    'skiff_policy_evaluation_duration_seconds',
    'Time to evaluate one authorization decision, by policy.',
    'histogram',
    (w) => {
      for (const [policy, s] of stats) w.histogram(byPolicy.get(policy), s.eval.counts, s.eval.count, s.eval.sum);
    },
    DURATION_BUCKETS_US,
  ).register(registry);
}

/** registerAdmission adds admission reviews and violations per constraint. */
export function registerAdmission(registry: Registry, admission: { stats: AdmissionStats }): void {
  const { stats } = admission;
  const reviews = pairLabels('operation', 'result');
  const violations = pairLabels('action', 'constraint');
  new ReadMetric('skiff_admission_reviews_total', 'Objects reviewed by Gatekeeper constraints and Pod Security, by operation and result (allowed, denied).', 'counter', (w) => {
    for (const [k, n] of stats.reviews) w.sample(reviews.get(k), n);
  }).register(registry);
  new ReadMetric('skiff_admission_violations_total', 'Findings of admission reviews, by constraint (KIND/NAME, or the Pod Security level) and action: deny (refused) or audit (dryrun and audit mode, recorded only).', 'counter', (w) => {
    for (const [k, n] of stats.violations) w.sample(violations.get(k), n);
  }).register(registry);
}

/** registerStore adds store operations, revisions and watch fan-out. */
export function registerStore(registry: Registry, store: InstrumentedStore): void {
  const { stats } = store;
  const ops = pairLabels('operation', 'result');
  new ReadMetric('skiff_store_operations_total', 'Store calls by operation (get, range, put, delete, watch, compact) and result (ok, error).', 'counter', (w) => {
    for (const [k, n] of stats.operations) w.sample(ops.get(k), n);
  }).register(registry);
  new ReadMetric('skiff_store_write_conflicts_total', 'Writes refused because their precondition (a resourceVersion) no longer held.', 'counter', (w) => w.sample(NO_LABELS, stats.conflicts)).register(registry);
  new ReadMetric('skiff_store_revision', 'The store\'s newest revision.', 'gauge', async (w) => w.sample(NO_LABELS, await store.revision())).register(registry);
  new ReadMetric('skiff_store_compacted_revision', 'The oldest revision watchers can still start from.', 'gauge', async (w) => w.sample(NO_LABELS, await store.compactedRevision())).register(registry);
  new ReadMetric('skiff_store_compactions_total', 'Compactions of the store\'s history.', 'counter', (w) => w.sample(NO_LABELS, stats.compactions)).register(registry);
  new ReadMetric('skiff_store_watchers', 'Watches open on the store now.', 'gauge', (w) => w.sample(NO_LABELS, stats.watchers)).register(registry);
  new ReadMetric('skiff_store_watch_events_total', 'Events delivered to store watchers (one per watcher and event).', 'counter', (w) => w.sample(NO_LABELS, stats.watchEvents)).register(registry);
}

/** registerControllers adds each controller's queue depth, reconciles and reconcile time. */
export function registerControllers(registry: Registry, controllers: () => Controller[]): void {
  const byName = new LabelCache((controller) => ({ controller }));
  const results = pairLabels('controller', 'result');
  new ReadMetric('skiff_controller_queue_depth', 'Keys waiting in a controller\'s work queue.', 'gauge', (w) => {
    for (const c of controllers()) w.sample(byName.get(c.name), c.queue.length);
  }).register(registry);
  new ReadMetric('skiff_controller_reconciles_total', 'Reconciles finished, by controller and result (success, error; errors are retried with backoff).', 'counter', (w) => {
    for (const c of controllers()) {
      w.sample(results.get(`${c.name} success`), c.stats.reconciles - c.stats.errors);
      w.sample(results.get(`${c.name} error`), c.stats.errors);
    }
  }).register(registry);
  new ReadMetric(
    'skiff_controller_reconcile_duration_seconds',
    'Time of one reconcile, by controller.',
    'histogram',
    (w) => {
      for (const c of controllers()) w.histogram(byName.get(c.name), c.stats.duration.counts, c.stats.duration.count, c.stats.duration.sum);
    },
    DURATION_BUCKETS_US,
  ).register(registry);
}

/** registerLeader adds whether this node leads the cluster's once-per-cluster controllers, its transitions and the writes fencing refused. */
export function registerLeader(registry: Registry, leader: { stats(): { isLeader: boolean; transitions: number; fencedWritesRefused: number } }): void {
  new ReadMetric('skiff_leader_is_leader', 'Whether this node holds the leader lease (skiff-system/skiff-leader) and runs the once-per-cluster controllers: 1 or 0.', 'gauge', (w) => w.sample(NO_LABELS, leader.stats().isLeader ? 1 : 0)).register(registry);
  new ReadMetric('skiff_leader_transitions_total', 'Times this node started or stopped leading.', 'counter', (w) => w.sample(NO_LABELS, leader.stats().transitions)).register(registry);
  new ReadMetric('skiff_leader_fenced_writes_refused_total', 'Writes of leader-only controllers refused because this node did not hold the leader lease at the revision it last wrote.', 'counter', (w) => w.sample(NO_LABELS, leader.stats().fencedWritesRefused)).register(registry);
}

import type { Registry } from 'prom-client';

import type { AdmissionStats } from '../../admission/index.js';
import type { PolicyDecisionStats } from '../../controllers/policy-controller.js';
import type { Controller } from '../../controllers/runtime/index.js';
import type { InstrumentedStore } from '../../store/index.js';
import { DURATION_BUCKETS_US } from '../../util/histogram.js';

import { leLabels, pushHistogram, ReadMetric, type Sample } from './read-metric.js';

const le = leLabels(DURATION_BUCKETS_US);

/** splitKey splits the areas' `A B` map keys (B may hold spaces, A does not). */
function splitKey(k: string): [string, string] {
  const sp = k.indexOf(' ');
  return [k.slice(0, sp), k.slice(sp + 1)];
}

/** registerPolicies adds gateway authorization decisions and their evaluation time per policy rule. */
export function registerPolicies(registry: Registry, policies: { decisionStats: Map<string, PolicyDecisionStats> }): void {
  const stats = policies.decisionStats;
  const RESULTS = ['allow', 'deny', 'error', 'backoff'] as const;
  new ReadMetric('skiff_policy_decisions_total', 'Authorization decisions, by policy (the rule a route\'s authz filter asks) and result: allow, deny, error (failed closed) or backoff (denied without evaluation).', 'counter', () => {
    const out: Sample[] = [];
    for (const [policy, s] of stats) for (const result of RESULTS) out.push({ labels: { policy, result }, value: s[result] });
    return out;
  }).register(registry);
  new ReadMetric('skiff_policy_evaluation_duration_seconds', 'Time to evaluate one authorization decision, by policy.', 'histogram', () => {
    const out: Sample[] = [];
    for (const [policy, s] of stats) pushHistogram(out, 'skiff_policy_evaluation_duration_seconds', { policy }, DURATION_BUCKETS_US, s.eval.counts, s.eval.count, s.eval.sumUs, le);
    return out;
  }).register(registry);
}

/** registerAdmission adds admission reviews and violations per constraint. */
export function registerAdmission(registry: Registry, admission: { stats: AdmissionStats }): void {
  const { stats } = admission;
  new ReadMetric('skiff_admission_reviews_total', 'Objects reviewed by Gatekeeper constraints and Pod Security, by operation and result (allowed, denied).', 'counter', () =>
    [...stats.reviews].map(([k, value]) => {
      const [operation, result] = splitKey(k);
      return { labels: { operation, result }, value };
    }),
  ).register(registry);
  new ReadMetric('skiff_admission_violations_total', 'Findings of admission reviews, by constraint (KIND/NAME, or the Pod Security level) and action: deny (refused) or audit (dryrun and audit mode, recorded only).', 'counter', () =>
    [...stats.violations].map(([k, value]) => {
      const [action, constraint] = splitKey(k);
      return { labels: { constraint, action }, value };
    }),
  ).register(registry);
}

/** registerStore adds store operations, revisions and watch fan-out. */
export function registerStore(registry: Registry, store: InstrumentedStore): void {
  const { stats } = store;
  new ReadMetric('skiff_store_operations_total', 'Store calls by operation (get, range, put, delete, watch, compact) and result (ok, error).', 'counter', () =>
    [...stats.operations].map(([k, value]) => {
      const [operation, result] = splitKey(k);
      return { labels: { operation, result }, value };
    }),
  ).register(registry);
  new ReadMetric('skiff_store_write_conflicts_total', 'Writes refused because their precondition (a resourceVersion) no longer held.', 'counter', () => [{ labels: {}, value: stats.conflicts }]).register(registry);
  new ReadMetric('skiff_store_revision', 'The store\'s newest revision.', 'gauge', async () => [{ labels: {}, value: await store.revision() }]).register(registry);
  new ReadMetric('skiff_store_compacted_revision', 'The oldest revision watchers can still start from.', 'gauge', async () => [{ labels: {}, value: await store.compactedRevision() }]).register(registry);
  new ReadMetric('skiff_store_compactions_total', 'Compactions of the store\'s history.', 'counter', () => [{ labels: {}, value: stats.compactions }]).register(registry);
  new ReadMetric('skiff_store_watchers', 'Watches open on the store now.', 'gauge', () => [{ labels: {}, value: stats.watchers }]).register(registry);
  new ReadMetric('skiff_store_watch_events_total', 'Events delivered to store watchers (one per watcher and event).', 'counter', () => [{ labels: {}, value: stats.watchEvents }]).register(registry);
}

/** registerControllers adds each controller's queue depth, reconciles and reconcile time. */
export function registerControllers(registry: Registry, controllers: () => Controller[]): void {
  new ReadMetric('skiff_controller_queue_depth', 'Keys waiting in a controller\'s work queue.', 'gauge', () => controllers().map((c) => ({ labels: { controller: c.name }, value: c.queue.length }))).register(registry);
  new ReadMetric('skiff_controller_reconciles_total', 'Reconciles finished, by controller and result (success, error; errors are retried with backoff).', 'counter', () =>
    controllers().flatMap((c) => [
      { labels: { controller: c.name, result: 'success' }, value: c.stats.reconciles - c.stats.errors },
      { labels: { controller: c.name, result: 'error' }, value: c.stats.errors },
    ]),
  ).register(registry);
  new ReadMetric('skiff_controller_reconcile_duration_seconds', 'Time of one reconcile, by controller.', 'histogram', () => {
    const out: Sample[] = [];
    for (const c of controllers()) {
      const h = c.stats.duration;
      pushHistogram(out, 'skiff_controller_reconcile_duration_seconds', { controller: c.name }, DURATION_BUCKETS_US, h.counts, h.count, h.sumUs, le);
    }
    return out;
  }).register(registry);
}

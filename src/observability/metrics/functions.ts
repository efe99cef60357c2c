import type { Registry } from 'prom-client';

import type { PoolStats, RunStats } from '../../runtime/index.js';
import { DURATION_BUCKETS_US } from '../../util/histogram.js';
import type { WorkloadStats } from '../../workloads/index.js';

import { leLabels, PerScrape, pushHistogram, ReadMetric, type Sample } from './read-metric.js';

/** The slice of the sandbox runtime the exporter reads. */
export interface RuntimeSource {
  readonly runStats: RunStats;
  poolStats(): PoolStats;
  readonly inlineStats: { runs: number; retries: number };
}

/** registerFunctions adds the Wasm Function runs and the sandbox pool's families. */
export function registerFunctions(registry: Registry, runtime: RuntimeSource, clock: { scrape: number }): void {
  const stats = runtime.runStats.byKey;
  const le = leLabels(DURATION_BUCKETS_US);
  const pool = new PerScrape(clock, () => runtime.poolStats());

  new ReadMetric('skiff_function_runs_total', 'Function runs, by function (NAMESPACE/NAME), mode (inline: fuel-metered on the gateway thread; worker) and result (ok, or the runtime error code: trap, timeout, memory_limit, overloaded...).', 'counter', () => {
    const out: Sample[] = [];
    for (const [fn, s] of stats) {
      for (const [k, n] of s.results) {
        const sp = k.indexOf(' ');
        out.push({ labels: { function: fn, mode: k.slice(0, sp), result: k.slice(sp + 1) }, value: n });
      }
    }
    return out;
  }).register(registry);

  new ReadMetric('skiff_function_starts_total', 'Clean Function runs by start: cold (a fresh sandbox instance) or warm (a reused one).', 'counter', () => {
    const out: Sample[] = [];
    for (const [fn, s] of stats) {
      out.push({ labels: { function: fn, start: 'cold' }, value: s.cold });
      out.push({ labels: { function: fn, start: 'warm' }, value: s.warm });
    }
    return out;
  }).register(registry);

  new ReadMetric('skiff_function_run_duration_seconds', 'Time a Function run took in the sandbox, by function.', 'histogram', () => {
    const out: Sample[] = [];
    for (const [fn, s] of stats) pushHistogram(out, 'skiff_function_run_duration_seconds', { function: fn }, DURATION_BUCKETS_US, s.duration.counts, s.duration.count, s.duration.sumUs, le);
    return out;
  }).register(registry);

  new ReadMetric('skiff_function_instantiate_seconds_total', 'Time spent instantiating sandboxes for clean runs, by function.', 'counter', () => [...stats].map(([fn, s]) => ({ labels: { function: fn }, value: s.instantiateUs / 1e6 }))).register(registry);
  new ReadMetric('skiff_function_fuel_consumed_total', 'Fuel units spent by metered (inline) runs, by function.', 'counter', () => [...stats].map(([fn, s]) => ({ labels: { function: fn }, value: s.fuel }))).register(registry);
  new ReadMetric('skiff_function_inline_retries_total', 'Inline runs that did not finish cleanly on the gateway thread and ran again on a worker.', 'counter', () => [{ labels: {}, value: runtime.inlineStats.retries }]).register(registry);

  new ReadMetric('skiff_sandbox_workers', 'Sandbox worker threads started.', 'gauge', () => [{ labels: {}, value: pool.get().workers }]).register(registry);
  new ReadMetric('skiff_sandbox_workers_busy', 'Sandbox worker threads running a Function now.', 'gauge', () => [{ labels: {}, value: pool.get().busy }]).register(registry);
  new ReadMetric('skiff_sandbox_queued_runs', 'Function runs waiting for a worker thread.', 'gauge', () => [{ labels: {}, value: pool.get().queued }]).register(registry);
  new ReadMetric('skiff_sandbox_warm_modules', 'Compiled modules held warm by the workers (one per module and worker).', 'gauge', () => [{ labels: {}, value: pool.get().modulesLoaded }]).register(registry);
}

/** registerWorkloads adds the container and VM Functions' replica families. */
export function registerWorkloads(registry: Registry, workloads: { stats(): WorkloadStats[] }, clock: { scrape: number }): void {
  const snap = new PerScrape(clock, () => workloads.stats());
  const gauge = (name: string, help: string, type: 'gauge' | 'counter', pick: (w: WorkloadStats) => number) =>
    new ReadMetric(name, help, type, () => snap.get().map((w) => ({ labels: { function: `${w.namespace}/${w.name}`, runtime_class: w.runtimeClass }, value: pick(w) }))).register(registry);
  gauge('skiff_workload_replicas', 'Replicas of a container or VM Function (starting, running or backing off).', 'gauge', (w) => w.replicas);
  gauge('skiff_workload_ready_replicas', 'Ready replicas of a container or VM Function.', 'gauge', (w) => w.readyReplicas);
  gauge('skiff_workload_restarts_total', 'Replica restarts of a container or VM Function.', 'counter', (w) => w.restarts);
}

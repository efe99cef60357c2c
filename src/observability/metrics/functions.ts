import type { Registry } from 'prom-client';

import type { AutoscalerStats } from '../../controllers/autoscaler/index.js';
import type { PoolStats, RunStats } from '../../runtime/index.js';
import { DURATION_BUCKETS_US, SIZE_BUCKETS_BYTES } from '../../util/histogram.js';
import type { WorkloadStats } from '../../workloads/index.js';

import { LabelCache, NO_LABELS, PerScrape, ReadMetric } from './read-metric.js';

/** The slice of the sandbox runtime the exporter reads. */
export interface RuntimeSource {
  readonly runStats: RunStats;
  poolStats(): PoolStats;
  readonly inlineStats: { runs: number; retries: number };
}

/** registerFunctions adds the Wasm Function runs and the sandbox pool's families. */
export function registerFunctions(registry: Registry, runtime: RuntimeSource, clock: { scrape: number }): void {
  const stats = runtime.runStats.byKey;
  const pool = new PerScrape(clock, () => runtime.poolStats());
  const fns = new LabelCache((fn) => ({ function: fn }));
  // `FUNCTION MODE RESULT` (a function key holds no space).
  const runs = new LabelCache((k) => {
    const [fn, mode, result] = k.split(' ') as [string, string, string];
    return { function: fn, mode, result };
  });
  const starts = new LabelCache((k) => {
    const [fn, start] = k.split(' ') as [string, string];
    return { function: fn, start };
  });

  new ReadMetric('skiff_function_runs_total', 'Function runs, by function (NAMESPACE/NAME), mode (inline: fuel-metered on the gateway thread; worker) and result (ok, or the runtime error code: trap, timeout, memory_limit, overloaded...).', 'counter', (w) => {
    for (const [fn, s] of stats) {
      if (s.ok.inline > 0) w.sample(runs.get(`${fn} inline ok`), s.ok.inline);
      if (s.ok.worker > 0) w.sample(runs.get(`${fn} worker ok`), s.ok.worker);
      for (const [k, n] of s.failures) w.sample(runs.get(`${fn} ${k}`), n);
    }
  }).register(registry);

  new ReadMetric('skiff_function_starts_total', 'Clean Function runs by start: cold (a fresh sandbox instance) or warm (a reused one).', 'counter', (w) => {
    for (const [fn, s] of stats) {
      w.sample(starts.get(`${fn} cold`), s.cold);
      w.sample(starts.get(`${fn} warm`), s.warm);
    }
  }).register(registry);

  new ReadMetric(
    'skiff_function_run_duration_seconds',
    'Time a Function run took in the sandbox, by function.',
    'histogram',
    (w) => {
      for (const [fn, s] of stats) w.histogram(fns.get(fn), s.duration.counts, s.duration.count, s.duration.sum);
    },
    DURATION_BUCKETS_US,
  ).register(registry);

  new ReadMetric(
    'skiff_function_memory_bytes',
    'Linear memory of a Function\'s guest when a clean run exited (its peak during the run), by function.',
    'histogram',
    (w) => {
      for (const [fn, s] of stats) w.histogram(fns.get(fn), s.memory.counts, s.memory.count, s.memory.sum);
    },
    SIZE_BUCKETS_BYTES,
    1,
  ).register(registry);

  new ReadMetric('skiff_function_instantiate_seconds_total', 'Time spent instantiating sandboxes for clean runs, by function.', 'counter', (w) => {
    for (const [fn, s] of stats) w.sample(fns.get(fn), s.instantiateUs / 1e6);
  }).register(registry);
  new ReadMetric('skiff_function_fuel_consumed_total', 'Fuel units spent by metered (inline) runs, by function.', 'counter', (w) => {
    for (const [fn, s] of stats) w.sample(fns.get(fn), s.fuel);
  }).register(registry);
  new ReadMetric('skiff_function_inline_retries_total', 'Inline runs that did not finish cleanly on the gateway thread and ran again on a worker.', 'counter', (w) => w.sample(NO_LABELS, runtime.inlineStats.retries)).register(registry);

  new ReadMetric('skiff_sandbox_workers', 'Sandbox worker threads started.', 'gauge', (w) => w.sample(NO_LABELS, pool.get().workers)).register(registry);
  new ReadMetric('skiff_sandbox_workers_busy', 'Sandbox worker threads running a Function now.', 'gauge', (w) => w.sample(NO_LABELS, pool.get().busy)).register(registry);
  new ReadMetric('skiff_sandbox_queued_runs', 'Function runs waiting for a worker thread.', 'gauge', (w) => w.sample(NO_LABELS, pool.get().queued)).register(registry);
  new ReadMetric('skiff_sandbox_warm_modules', 'Compiled modules held warm by the workers (one per module and worker).', 'gauge', (w) => w.sample(NO_LABELS, pool.get().modulesLoaded)).register(registry);
}

/** registerWorkloads adds the container and VM Functions' replica families. */
export function registerWorkloads(registry: Registry, workloads: { stats(): WorkloadStats[] }, clock: { scrape: number }): void {
  const snap = new PerScrape(clock, () => workloads.stats());
  const sets = new LabelCache((k) => {
    const [fn, runtimeClass] = k.split(' ') as [string, string];
    return { function: fn, runtime_class: runtimeClass };
  });
  const family = (name: string, help: string, type: 'gauge' | 'counter', pick: (w: WorkloadStats) => number) =>
    new ReadMetric(name, help, type, (w) => {
      for (const x of snap.get()) w.sample(sets.get(`${x.namespace}/${x.name} ${x.runtimeClass}`), pick(x));
    }).register(registry);
  family('skiff_workload_replicas', 'Replicas of a container or VM Function (starting, running or backing off).', 'gauge', (w) => w.replicas);
  family('skiff_workload_ready_replicas', 'Ready replicas of a container or VM Function.', 'gauge', (w) => w.readyReplicas);
  family('skiff_workload_restarts_total', 'Replica restarts of a container or VM Function.', 'counter', (w) => w.restarts);
}

/** registerAutoscaler adds the autoscaler's families: replicas desired and actual, panic, cold starts, the forecast. */
export function registerAutoscaler(registry: Registry, autoscaler: { stats(): AutoscalerStats[]; peerSampleFailures?(): ReadonlyMap<string, number> }, clock: { scrape: number }): void {
  const snap = new PerScrape(clock, () => autoscaler.stats());
  const sets = new LabelCache((k) => {
    const [fn, cls] = k.split(' ') as [string, string];
    return { function: fn, runtime_class: cls };
  });
  const family = (name: string, help: string, type: 'gauge' | 'counter', pick: (a: AutoscalerStats) => number | undefined) =>
    new ReadMetric(name, help, type, (w) => {
      for (const x of snap.get()) {
        const v = pick(x);
        if (v !== undefined) w.sample(sets.get(`${x.namespace}/${x.name} ${x.class}`), v);
      }
    }).register(registry);
  family('skiff_autoscaler_desired_replicas', 'Replicas the autoscaler decided for a Function.', 'gauge', (a) => a.desired);
  family('skiff_autoscaler_actual_replicas', 'Replicas of a Function running now (Wasm: warm instances reserved).', 'gauge', (a) => a.replicas);
  family('skiff_autoscaler_ready_replicas', 'Replicas of a Function ready to serve.', 'gauge', (a) => a.ready);
  family('skiff_autoscaler_panic_mode', '1 while the Function\'s autoscaler is in panic mode.', 'gauge', (a) => (a.panic ? 1 : 0));
  family('skiff_autoscaler_cold_starts_total', 'Requests that arrived when the Function had no ready replica.', 'counter', (a) => a.coldStarts);
  family('skiff_autoscaler_activation_waiting', 'Requests waiting in the activator for a replica.', 'gauge', (a) => a.waiting);
  family('skiff_autoscaler_scale_ups_total', 'Scale-ups of a Function.', 'counter', (a) => a.scaleUps);
  family('skiff_autoscaler_scale_downs_total', 'Scale-downs of a Function.', 'counter', (a) => a.scaleDowns);
  family('skiff_autoscaler_forecast_requests_per_second', 'The request rate the forecast expects over the lead window.', 'gauge', (a) => a.forecastRate);
  family('skiff_autoscaler_forecast_error', 'Recent error of the one-step forecasts (sMAPE, 0..2).', 'gauge', (a) => a.forecastError);
  const failures = autoscaler.peerSampleFailures?.bind(autoscaler);
  if (failures) {
    const nodes = new LabelCache((node) => ({ node }));
    new ReadMetric('skiff_autoscaler_peer_sample_failures_total', 'Times the leader could not get a node\'s autoscaler samples in time (its traffic was left out of that tick).', 'counter', (w) => {
      for (const [node, n] of failures()) w.sample(nodes.get(node), n);
    }).register(registry);
  }
}

import { BucketHistogram, DurationHistogram, SIZE_BUCKETS_BYTES } from '../util/histogram.js';

import type { RunOutcome } from './sandbox.js';

/** Where a run happened: on the calling thread (fuel-metered) or on a worker thread. */
export type RunMode = 'inline' | 'worker';

/** FunctionRunStats are the counters kept per pool key (a Function's `namespace/name`). */
export class FunctionRunStats {
  /** Runs whose guest exited (whatever its exit code), by mode. */
  readonly ok = { inline: 0, worker: 0 };
  /** Failed runs by `MODE CODE` (the RuntimeError code); the common case above costs no key. */
  readonly failures = new Map<string, number>();
  /** Clean runs on a fresh instance (cold) or on a reused one (warm). */
  cold = 0;
  warm = 0;
  /** Fuel spent by metered (inline) runs. */
  fuel = 0;
  instantiateUs = 0;
  readonly duration = new DurationHistogram();
  /** Linear memory of clean runs at exit, in bytes. */
  readonly memory = new BucketHistogram(SIZE_BUCKETS_BYTES);

  failed(mode: RunMode, code: string): void {
    const k = `${mode} ${code}`;
    this.failures.set(k, (this.failures.get(k) ?? 0) + 1);
  }
}

/**
 * RunStats counts the runtime's runs per pool key. Counting is a map lookup and a few additions per
 * run; exporters read the maps at scrape time.
 */
export class RunStats {
  readonly byKey = new Map<string, FunctionRunStats>();

  private of(key: string): FunctionRunStats {
    let s = this.byKey.get(key);
    if (!s) this.byKey.set(key, (s = new FunctionRunStats()));
    return s;
  }

  /** finished records a run that produced an outcome (a clean exit or a failure inside the sandbox). */
  finished(key: string, mode: RunMode, outcome: RunOutcome): void {
    const s = this.of(key);
    s.duration.observe(outcome.durationMs * 1000);
    if (!outcome.ok) return s.failed(mode, outcome.code);
    s.ok[mode]++;
    if (outcome.reused) s.warm++;
    else s.cold++;
    s.instantiateUs += outcome.instantiateUs;
    s.memory.observe(outcome.memoryBytes);
    if (outcome.cost !== undefined) s.fuel += outcome.cost;
  }

  /** failed records a worker run that ended without an outcome (its deadline, a shed request, a lost worker). */
  failed(key: string, err: unknown): void {
    this.of(key).failed('worker', String((err as { code?: unknown })?.code ?? 'host_error'));
  }
}

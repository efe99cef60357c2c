import { SkiffError } from '../../util/errors.js';

import { type HistorySeries, type RequestHistory } from './history.js';
import { fitHoltWinters, type HoltWintersModel } from './holt-winters.js';

/** PredictorError is an option or a horizon the Predictor cannot work with. */
export class PredictorError extends SkiffError {}

/** What the autoscaler gets from the Predictor for one Function. */
export interface Forecast {
  /** expected requests per second over the horizon */
  rate: number;
  /** requests expected in the next horizonMs */
  expected: number;
  /** probability of at least one request in the horizon (Poisson on `expected`) */
  pWarm: number;
  /** recent sMAPE of one-step bucket forecasts, 0..2 (2 when nothing has been scored) */
  error: number;
  /** error ≤ maxError and enough history: the autoscaler may act on the forecast */
  usable: boolean;
  model: 'double-seasonal' | 'daily' | 'holt' | 'none';
  /** the next few bucket forecasts, requests per second, the bucket in progress first */
  next: number[];
}

/** Options of a Predictor. */
export interface PredictorOptions {
  /** Least time between two model fits, ms of the injected clock (default 15 minutes). */
  refitMs?: number;
  /** Largest recent error at which the forecast is still usable (default 0.5). */
  maxError?: number;
  /** Season lengths in ms (default a day and a week); each must be a whole number of buckets. */
  seasonsMs?: number[];
  /** One-step forecasts whose error is tracked, ms (default a day). */
  errorWindowMs?: number;
  /** History needed before a forecast is usable, ms (default two days, so the daily season is fitted). */
  minHistoryMs?: number;
  /** How many buckets `next` holds (default 6). */
  nextBuckets?: number;
  /** Forwarded to the fit: most filter passes per fit (default 150). */
  maxEvaluations?: number;
}

const DAY_MS = 24 * 60 * 60_000;
const MAX_HORIZON_BUCKETS = 2016;
const MAX_ERROR_SAMPLES = 1 << 16;

/**
 * Predictor forecasts one Function's request rate from its RequestHistory with Holt-Winters,
 * refitting lazily and at most every `refitMs`, and scores each one-step bucket forecast against
 * what came, so the autoscaler falls back to reactive scaling when the forecast has been poor.
 * Time is always an argument (ms); nothing here reads a clock.
 *
 * @example
 * const p = new Predictor(history, { maxError: 0.5 });
 * p.observe(clock.now(), requestsSinceLastTick);
 * const f = p.forecast(clock.now(), coldStartMs);
 * if (f?.usable && f.pWarm > 0.5) wantOneReplica();
 */
export class Predictor {
  private readonly refitMs: number;
  private readonly maxError: number;
  private readonly periods: number[];
  private readonly minHistoryBuckets: number;
  private readonly nextBuckets: number;
  private readonly maxEvaluations: number | undefined;
  private readonly bucketMs: number;

  private model: HoltWintersModel | undefined;
  private fittedAt = -Infinity;
  // Index (time / bucketMs) of the first bucket the model has not yet seen.
  private modelNext = 0;
  // Ring of the last day's one-step forecasts: absolute error and the sMAPE denominator.
  private readonly absErr: Float64Array;
  private readonly denom: Float64Array;
  private ringLen = 0;
  private ringPos = 0;

  constructor(
    readonly history: RequestHistory,
    opts: PredictorOptions = {},
  ) {
    this.bucketMs = history.bucketMs;
    this.refitMs = nonNegative('refitMs', opts.refitMs ?? 15 * 60_000);
    this.maxError = nonNegative('maxError', opts.maxError ?? 0.5);
    this.periods = (opts.seasonsMs ?? [DAY_MS, 7 * DAY_MS]).map((ms) => {
      if (!(ms > 0) || ms % this.bucketMs !== 0) {
        throw new PredictorError('invalid_option', `Predictor season of ${ms} ms must be a positive multiple of the history's bucket (${this.bucketMs} ms)`);
      }
      return ms / this.bucketMs;
    });
    const windowMs = nonNegative('errorWindowMs', opts.errorWindowMs ?? DAY_MS);
    const ring = Math.min(MAX_ERROR_SAMPLES, Math.max(1, Math.ceil(windowMs / this.bucketMs)));
    this.absErr = new Float64Array(ring);
    this.denom = new Float64Array(ring);
    this.minHistoryBuckets = Math.ceil(nonNegative('minHistoryMs', opts.minHistoryMs ?? 2 * DAY_MS) / this.bucketMs);
    this.nextBuckets = Math.min(MAX_HORIZON_BUCKETS, Math.floor(nonNegative('nextBuckets', opts.nextBuckets ?? 6)));
    this.maxEvaluations = opts.maxEvaluations;
  }

  /** observe records `count` requests at `now` and scores the forecasts of buckets that completed. */
  observe(now: number, count: number): void {
    this.history.add(now, count);
    // Most observations land in the bucket in progress; only a new bucket completes one to score.
    const bucket = Math.floor(now / this.bucketMs);
    if (this.model && bucket > this.modelNext) this.advance(this.history.series(now));
  }

  /** forecast is the expected traffic over [now, now + horizonMs), or undefined before any request history. */
  forecast(now: number, horizonMs: number): Forecast | undefined {
    if (!(horizonMs > 0) || !Number.isFinite(horizonMs)) {
      throw new PredictorError('invalid_option', `forecast horizon ${horizonMs} must be a positive number of ms`);
    }
    if (this.history.empty) return undefined;
    const series = this.history.series(now);
    this.advance(series);
    if (series.counts.length >= 2 && (this.model === undefined || now - this.fittedAt >= this.refitMs)) this.refit(now, series);

    const bucketSec = this.bucketMs / 1000;
    const current = Math.floor(now / this.bucketMs);
    const last = Math.floor((now + horizonMs - 1) / this.bucketMs);
    const steps = Math.min(MAX_HORIZON_BUCKETS, last - current + 1);
    const want = Math.max(steps, this.nextBuckets);
    let ahead: number[];
    if (this.model) {
      ahead = this.model.forecast(want);
    } else {
      // Fewer than two complete buckets: persistence of the last one is all there is.
      const lastCount = series.counts.at(-1) ?? 0;
      ahead = new Array<number>(want).fill(lastCount);
    }

    let expected = 0;
    for (let k = 0; k < steps; k++) {
      const from = Math.max(now, (current + k) * this.bucketMs);
      const to = Math.min(now + horizonMs, (current + k + 1) * this.bucketMs);
      if (to > from) expected += (ahead[k]! * (to - from)) / this.bucketMs;
    }
    const error = this.error();
    const enough = series.counts.length >= this.minHistoryBuckets;
    return {
      rate: expected / (horizonMs / 1000),
      expected,
      pWarm: 1 - Math.exp(-expected),
      error,
      usable: this.model !== undefined && enough && this.ringLen > 0 && error <= this.maxError,
      model: this.modelName(),
      next: ahead.slice(0, this.nextBuckets).map((c) => c / bucketSec),
    };
  }

  /** error is the sMAPE of the tracked one-step forecasts: Σ|F−A| / Σ(|F|+|A|)/2, in 0..2; 2 before any. */
  error(): number {
    if (this.ringLen === 0) return 2;
    let num = 0;
    let den = 0;
    for (let i = 0; i < this.ringLen; i++) {
      num += this.absErr[i]!;
      den += this.denom[i]!;
    }
    // Pooled rather than averaged per bucket, so the quiet buckets of a Function that sleeps at
    // night (a forecast of 0.2 against 0 is a per-bucket sMAPE of 2) do not drown the busy ones.
    return den === 0 ? 0 : Math.min(2, num / den);
  }

  /** fitted describes the current model, or undefined before the first fit. */
  get fitted(): { kind: HoltWintersModel['kind']; periods: number[]; params: HoltWintersModel['params']; fittedAt: number; evaluations: number } | undefined {
    const m = this.model;
    return m && { kind: m.kind, periods: m.periods, params: m.params, fittedAt: this.fittedAt, evaluations: m.evaluations };
  }

  private modelName(): Forecast['model'] {
    switch (this.model?.kind) {
      case 'double-seasonal':
        return 'double-seasonal';
      case 'single-seasonal':
        return 'daily';
      case 'holt':
        return 'holt';
      default:
        return 'none';
    }
  }

  private refit(now: number, series: HistorySeries): void {
    const first = this.model === undefined;
    this.model = fitHoltWinters(series.counts, { periods: this.periods, maxEvaluations: this.maxEvaluations });
    this.fittedAt = now;
    this.modelNext = series.start / this.bucketMs + series.counts.length;
    if (first) {
      // A Predictor made after a restart starts from a stored history: its in-sample one-step
      // errors over the window stand in until live forecasts have been scored.
      const errs = this.model.errors;
      for (let t = Math.max(0, errs.length - this.absErr.length); t < errs.length; t++) {
        const a = series.counts[t]!;
        this.score(Math.max(0, a - errs[t]!), a);
      }
    }
  }

  // Feed the model the buckets that completed since it last saw one, scoring each forecast first.
  private advance(series: HistorySeries): void {
    const m = this.model;
    if (!m) return;
    const firstIdx = series.start / this.bucketMs;
    const end = firstIdx + series.counts.length;
    if (end <= this.modelNext) return;
    if (end - this.modelNext > this.absErr.length || this.modelNext < firstIdx) {
      // Away for longer than the error window (or the history restarted): refit instead of
      // replaying an unbounded gap.
      this.model = undefined;
      this.fittedAt = -Infinity;
      return;
    }
    for (let b = this.modelNext; b < end; b++) {
      const actual = series.counts[b - firstIdx]!;
      const predicted = m.forecast(1)[0]!;
      this.score(predicted, actual);
      m.update(actual);
    }
    this.modelNext = end;
  }

  private score(predicted: number, actual: number): void {
    this.absErr[this.ringPos] = Math.abs(predicted - actual);
    this.denom[this.ringPos] = (Math.abs(predicted) + Math.abs(actual)) / 2;
    this.ringPos = (this.ringPos + 1) % this.absErr.length;
    if (this.ringLen < this.absErr.length) this.ringLen++;
  }
}

function nonNegative(name: string, v: number): number {
  if (!(v >= 0) || !Number.isFinite(v)) throw new PredictorError('invalid_option', `Predictor option ${name} = ${v} must be a finite number >= 0`);
  return v;
}

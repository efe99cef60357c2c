import { SkiffError } from '../../util/errors.js';

/** HoltWintersError is a series or an option the forecaster cannot work with. */
export class HoltWintersError extends SkiffError {}

/** Which form the data allowed: both seasons, the longest season that fits twice, or none. */
export type HoltWintersKind = 'double-seasonal' | 'single-seasonal' | 'holt';

/** Smoothing parameters: level, trend, one per season in `periods` order, and the trend's damping. */
export interface HoltWintersParams {
  alpha: number;
  beta: number;
  gammas: number[];
  phi: number;
}

/** Options of fitHoltWinters. */
export interface HoltWintersOptions {
  /** Season lengths in buckets, e.g. `[288, 2016]` for a day and a week of five-minute buckets (at most two). */
  periods: number[];
  /** Model a (damped) trend; default true. */
  trend?: boolean;
  /** Trend damping φ in (0, 1] (default 0.98): the trend fades over the horizon instead of running away. */
  damping?: number;
  /** Fixed smoothing parameters; those given are not searched. */
  params?: Partial<Omit<HoltWintersParams, 'phi'>>;
  /** Most filter passes the parameter search may make (default 150, at most 1000). */
  maxEvaluations?: number;
}

const MAX_PERIOD = 1 << 17;
const MAX_SERIES = 1 << 20;
const DEFAULT_EVALUATIONS = 150;
const MAX_EVALUATIONS = 1000;
const SEARCH_ROUNDS = 3;

// The search grids: coarse near zero because seasonal and trend smoothing that matters for traffic
// is small, with a few large values so a series that changes level quickly is still followed.
const ALPHA_GRID = [0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.7, 0.9];
const BETA_GRID = [0, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2];
const GAMMA_GRID = [0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5];

interface State {
  level: number;
  trend: number;
  // One array per season, indexed by time modulo the period; an absent season is one zero that never moves.
  s1: Float64Array;
  s2: Float64Array;
  i1: number;
  i2: number;
  // Robust scale of the one-step errors (a smoothed mean absolute error) and the last clipped error.
  scale: number;
  clipped: number;
}

// Errors beyond CLIP_K scales are clipped before they reach the state, so one burst or outage does
// not drag the level and seasons for days (robust Holt-Winters in the manner of Gelper, Fried and
// Croux); a lasting change still gets through because the scale grows while errors stay large.
const CLIP_K = 4;
const SCALE_SMOOTHING = 0.05;

/**
 * HoltWintersModel is a fitted additive Holt-Winters model (Taylor's double-seasonal form when two
 * seasons fit). It forecasts from its current state and moves on with `update` between refits.
 */
export class HoltWintersModel {
  /** observations fitted or updated so far */
  observations: number;

  constructor(
    readonly kind: HoltWintersKind,
    /** the seasons in use, ascending (empty for plain Holt) */
    readonly periods: number[],
    readonly params: HoltWintersParams,
    /** in-sample one-step errors (actual minus the forecast made one step before) */
    readonly errors: Float64Array,
    /** sum of squared in-sample one-step errors (raw, not clipped) */
    readonly sse: number,
    /** filter passes the parameter search made */
    readonly evaluations: number,
    private readonly state: State,
  ) {
    this.observations = errors.length;
  }

  /** forecast is the next `h` values (one step ahead first), never below zero. */
  forecast(h: number): number[] {
    if (!Number.isInteger(h) || h < 0 || h > MAX_SERIES) {
      throw new HoltWintersError('invalid_horizon', `forecast horizon ${h} must be an integer between 0 and ${MAX_SERIES}`);
    }
    const { level, trend, s1, s2, i1, i2 } = this.state;
    const phi = this.params.phi;
    const out = new Array<number>(h);
    let damp = 0;
    let pk = 1;
    for (let k = 0; k < h; k++) {
      pk *= phi;
      damp += pk;
      const v = level + damp * trend + s1[(i1 + k) % s1.length]! + s2[(i2 + k) % s2.length]!;
      out[k] = v > 0 ? v : 0;
    }
    return out;
  }

  /** update takes the next observation into the state and returns its one-step error (unclamped). */
  update(x: number): number {
    if (!Number.isFinite(x)) throw new HoltWintersError('invalid_series', `observation ${x} is not a finite number`);
    this.observations++;
    return step(this.state, x, this.params.alpha, this.params.beta, this.params.gammas[0] ?? 0, this.params.gammas[1] ?? 0, this.params.phi);
  }
}

/**
 * fitHoltWinters fits an additive Holt-Winters model to `series` (oldest first), choosing the
 * smoothing parameters by a bounded coordinate search that minimises the one-step squared error
 * (outliers clipped, as in the filter itself).
 * With fewer than two of the longest period it keeps the longest period that fits twice, and with
 * fewer than two of any, plain (damped) Holt; `kind` and `periods` say which.
 *
 * @example
 * const m = fitHoltWinters(history.series(now).counts, { periods: [288, 2016] });
 * const next = m.forecast(6);
 */
export function fitHoltWinters(series: ArrayLike<number>, opts: HoltWintersOptions): HoltWintersModel {
  const n = series.length;
  if (n === 0) throw new HoltWintersError('empty_series', 'cannot fit Holt-Winters to an empty series; collect at least one bucket first');
  if (n > MAX_SERIES) throw new HoltWintersError('invalid_series', `series of ${n} values is longer than ${MAX_SERIES}`);
  const y = Float64Array.from(series);
  for (let t = 0; t < n; t++) {
    if (!Number.isFinite(y[t])) throw new HoltWintersError('invalid_series', `series[${t}] = ${y[t]} is not a finite number`);
  }
  const periods = validatePeriods(opts.periods);
  const trend = opts.trend ?? true;
  const phi = trend ? (opts.damping ?? 0.98) : 0;
  if (trend && !(phi > 0 && phi <= 1)) throw new HoltWintersError('invalid_option', `damping ${opts.damping} must be in (0, 1]`);
  const maxEvaluations = opts.maxEvaluations ?? DEFAULT_EVALUATIONS;
  if (!Number.isInteger(maxEvaluations) || maxEvaluations < 1 || maxEvaluations > MAX_EVALUATIONS) {
    throw new HoltWintersError('invalid_option', `maxEvaluations ${maxEvaluations} must be an integer between 1 and ${MAX_EVALUATIONS}`);
  }

  const used = pickPeriods(periods, n);
  const kind: HoltWintersKind = used.length === 2 ? 'double-seasonal' : used.length === 1 ? 'single-seasonal' : 'holt';
  const init = initialState(y, used, trend);

  const fixed = opts.params ?? {};
  for (const [name, v] of Object.entries({ alpha: fixed.alpha, beta: fixed.beta }).concat((fixed.gammas ?? []).map((g, i) => [`gammas[${i}]`, g]))) {
    if (v !== undefined && !(typeof v === 'number' && v >= 0 && v <= 1)) {
      throw new HoltWintersError('invalid_option', `params.${name} = ${v} must be a number in [0, 1]`);
    }
  }
  // Coordinates: 0 alpha, 1 beta, 2 and 3 the seasons. Absent ones are pinned at zero.
  const x = [fixed.alpha ?? 0.1, trend ? (fixed.beta ?? 0.01) : 0, used.length > 0 ? (fixed.gammas?.[0] ?? 0.1) : 0, used.length > 1 ? (fixed.gammas?.[1] ?? 0.1) : 0];
  const free: Array<{ i: number; grid: number[] }> = [];
  if (fixed.alpha === undefined) free.push({ i: 0, grid: ALPHA_GRID });
  if (trend && fixed.beta === undefined) free.push({ i: 1, grid: BETA_GRID });
  for (let s = 0; s < used.length; s++) if (fixed.gammas?.[s] === undefined) free.push({ i: 2 + s, grid: GAMMA_GRID });

  let evaluations = 0;
  // A trial stops as soon as it is worse than the best so far: most are, early, which roughly
  // halves the work of a fit.
  const cost = (p: number[], bound: number): number => {
    evaluations++;
    const st = cloneState(init);
    let sse = 0;
    // Clipped errors, so the parameters are chosen for the usual traffic rather than its bursts.
    for (let t = 0; t < n && sse < bound; t++) {
      step(st, y[t]!, p[0]!, p[1]!, p[2]!, p[3]!, phi);
      sse += st.clipped * st.clipped;
    }
    return Number.isFinite(sse) ? sse : Infinity;
  };

  let best = cost(x, Infinity);
  for (let round = 0; round < SEARCH_ROUNDS && free.length > 0; round++) {
    let improved = false;
    for (const { i, grid } of free) {
      for (const v of grid) {
        if (v === x[i] || evaluations >= maxEvaluations) continue;
        const trial = x.slice();
        trial[i] = v;
        const c = cost(trial, best);
        if (c < best) {
          best = c;
          x[i] = v;
          improved = true;
        }
      }
    }
    if (!improved || evaluations >= maxEvaluations) break;
  }

  const params: HoltWintersParams = { alpha: x[0]!, beta: x[1]!, gammas: used.map((_, s) => x[2 + s]!), phi };
  const st = cloneState(init);
  const errors = new Float64Array(n);
  let sse = 0;
  for (let t = 0; t < n; t++) {
    const e = step(st, y[t]!, x[0]!, x[1]!, x[2]!, x[3]!, phi);
    errors[t] = e;
    sse += e * e;
  }
  return new HoltWintersModel(kind, used, params, errors, sse, evaluations, st);
}

// One filter step in Taylor's double-seasonal additive form, fed the observation with its error
// clipped; returns the raw one-step error.
function step(st: State, y: number, alpha: number, beta: number, g1: number, g2: number, phi: number): number {
  const a = st.s1[st.i1]!;
  const w = st.s2[st.i2]!;
  const damped = phi * st.trend;
  const predicted = st.level + damped + a + w;
  const e = y - predicted;
  // The floor is a count's own noise (about its square root) so that a run of identical buckets
  // (a zero scale) does not freeze the model against the next real change.
  const bound = CLIP_K * Math.max(st.scale, 1 + 0.8 * Math.sqrt(predicted > 0 ? predicted : 0));
  const c = e > bound ? bound : e < -bound ? -bound : e;
  st.clipped = c;
  st.scale += SCALE_SMOOTHING * (Math.abs(c) - st.scale);
  const x = predicted + c;
  const prev = st.level;
  const level = alpha * (x - a - w) + (1 - alpha) * (prev + damped);
  st.level = level;
  st.trend = beta * (level - prev) + (1 - beta) * damped;
  st.s1[st.i1] = g1 * (x - level - w) + (1 - g1) * a;
  st.s2[st.i2] = g2 * (x - level - a) + (1 - g2) * w;
  if (++st.i1 === st.s1.length) st.i1 = 0;
  if (++st.i2 === st.s2.length) st.i2 = 0;
  return e;
}

function validatePeriods(periods: number[]): number[] {
  if (!Array.isArray(periods) || periods.length > 2) {
    throw new HoltWintersError('invalid_option', 'periods must be an array of at most two season lengths, e.g. [288, 2016]');
  }
  for (const p of periods) {
    if (!Number.isInteger(p) || p < 2 || p > MAX_PERIOD) {
      throw new HoltWintersError('invalid_option', `season length ${p} must be an integer number of buckets between 2 and ${MAX_PERIOD}`);
    }
  }
  const sorted = [...periods].sort((a, b) => a - b);
  if (sorted.length === 2 && sorted[0] === sorted[1]) throw new HoltWintersError('invalid_option', `the two season lengths must differ (both are ${sorted[0]})`);
  return sorted;
}

// Every season in use must be seen at least twice, so a seasonal index is an average and not one sample.
function pickPeriods(periods: number[], n: number): number[] {
  if (periods.length === 2 && n >= 2 * periods[1]!) return periods;
  for (let k = periods.length - 1; k >= 0; k--) if (n >= 2 * periods[k]!) return [periods[k]!];
  return [];
}

// The initial state comes from the first two cycles of the longest season in use: the level is the
// first cycle's median, the trend the change between the two cycles' medians, the daily indices the
// median deviation at each phase, and the weekly ones the mean of what the daily leaves, clipped.
// Medians and clipping because with two weeks of history the initial cycles are the whole history:
// one day of bursts or an outage would otherwise stay in the seasons for as long as it is kept.
function initialState(y: Float64Array, used: number[], trend: boolean): State {
  const s1 = new Float64Array(used[0] ?? 1);
  const s2 = new Float64Array(used[1] ?? 1);
  if (used.length === 0) {
    const k = Math.min(y.length, 4);
    let m = 0;
    for (let t = 0; t < k; t++) m += y[t]!;
    let d = 0;
    for (let t = 1; t < k; t++) d += Math.abs(y[t]! - y[t - 1]!);
    return { level: m / k, trend: 0, s1, s2, i1: 0, i2: 0, scale: k > 1 ? d / (k - 1) : 0, clipped: 0 };
  }
  const P = used[used.length - 1]!;
  const m0 = median(y.slice(0, P));
  const m1 = median(y.slice(P, 2 * P));
  const b0 = trend ? (m1 - m0) / P : 0;
  const r = new Float64Array(2 * P);
  for (let t = 0; t < 2 * P; t++) r[t] = y[t]! - (t < P ? m0 : m1) - b0 * ((t % P) - (P - 1) / 2);

  const p1 = s1.length;
  const cycles = Math.floor((2 * P) / p1);
  const column = new Float64Array(cycles);
  for (let j = 0; j < p1; j++) {
    for (let c = 0; c < cycles; c++) column[c] = r[c * p1 + j]!;
    s1[j] = median(column);
  }
  centre(s1);
  const rest = new Float64Array(2 * P);
  for (let t = 0; t < 2 * P; t++) rest[t] = r[t]! - s1[t % p1]!;
  const mad = median(rest.map(Math.abs));
  const bound = CLIP_K * Math.max(mad, 1);
  const clip = (v: number): number => (v > bound ? bound : v < -bound ? -bound : v);
  if (used.length === 2) {
    const p2 = s2.length;
    const count = new Float64Array(p2);
    for (let t = 0; t < 2 * P; t++) {
      s2[t % p2] += clip(rest[t]!);
      count[t % p2]++;
    }
    for (let k = 0; k < p2; k++) s2[k] /= count[k]!;
    centre(s2);
  }
  let scale = 0;
  for (let t = 0; t < 2 * P; t++) scale += Math.abs(clip(rest[t]! - s2[t % s2.length]!));
  return { level: m0 - (b0 * (P - 1)) / 2, trend: b0, s1, s2, i1: 0, i2: 0, scale: scale / (2 * P), clipped: 0 };
}

function centre(s: Float64Array): void {
  let m = 0;
  for (const v of s) m += v;
  m /= s.length;
  for (let j = 0; j < s.length; j++) s[j] -= m;
}

// Sorts its argument: callers pass a scratch copy.
function median(xs: Float64Array): number {
  xs.sort();
  const h = xs.length >> 1;
  return xs.length % 2 === 1 ? xs[h]! : (xs[h - 1]! + xs[h]!) / 2;
}

function cloneState(s: State): State {
  return { ...s, s1: s.s1.slice(), s2: s.s2.slice() };
}

/**
 * A seeded generator of production-like serverless traffic, for replaying through the gateway and
 * the autoscaler. It follows the published shape of the Azure Functions trace (Shahrad et al.,
 * "Serverless in the Wild", USENIX ATC 2020) without using its data: invocation rates spread over
 * many orders of magnitude with most Functions called less than once a minute and nearly half less
 * than once an hour, a few Functions carrying most calls, daily and weekly cycles for the busy
 * HTTP-style ones, timers that fire on a fixed period, bursts, and rare Functions whose gaps are far
 * more variable than a Poisson process's.
 */

/** How a Function's arrivals are drawn. */
export type TracePattern = 'diurnal' | 'bursty' | 'rare' | 'steady' | 'timer';

/** One Function of a trace. */
export interface TraceFunction {
  name: string;
  pattern: TracePattern;
  /** the mean invocations per day it was drawn with, after the caps */
  meanPerDay: number;
  /** arrival times in ms from the trace's start, sorted ascending */
  arrivals: Float64Array;
  /** true when the trace's arrival cap stopped this Function early */
  truncated: boolean;
}

/** Options of generateTrace. */
export interface TraceOptions {
  seed: number;
  functions: number;
  days: number;
  /** Wall-clock ms of offset 0 (default 0); sets where days and weekends fall (UTC). */
  startMs?: number;
  /** Cap on one Function's mean invocations per day (default 100 000, a little over 1 req/s). */
  maxPerDay?: number;
  /** Cap on the arrivals of the whole trace (default 1 000 000; at most 20 000 000). The busiest Functions' rates are lowered to fit under it. */
  maxArrivals?: number;
}

const DAY_MS = 24 * 60 * 60_000;
const MINUTE_MS = 60_000;
const MAX_FUNCTIONS = 100_000;
const MAX_DAYS = 60;
const HARD_MAX_ARRIVALS = 20_000_000;
// log10 of invocations per day is drawn from a normal placed so that about 45 % of Functions are
// called at most once an hour (24/day) and about 81 % at most once a minute (1440/day), as the
// paper reports for applications.
const LOG10_PER_DAY_MEDIAN = 1.6;
const LOG10_PER_DAY_SD = 1.77;
const TIMER_PERIODS_MIN = [1, 5, 10, 15, 30, 60, 120, 360, 720, 1440];

/**
 * Rng is xoshiro128** seeded through splitmix32: small, fast and reproducible, which Math.random is
 * not. Each Function gets its own stream, so adding Functions leaves the earlier ones unchanged.
 */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number, stream = 0) {
    let x = (seed ^ Math.imul(stream + 1, 0x9e3779b9)) >>> 0;
    const next = (): number => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next() | 1; // never the all-zero state
  }

  /** uint32 is the next 32 random bits. */
  uint32(): number {
    const r = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return r;
  }

  /** uniform is in (0, 1), never exactly 0 or 1, so logarithms of it are finite. */
  uniform(): number {
    return (this.uint32() + 0.5) / 4294967296;
  }

  /** normal is a standard normal draw (Box-Muller). */
  normal(): number {
    return Math.sqrt(-2 * Math.log(this.uniform())) * Math.cos(2 * Math.PI * this.uniform());
  }

  /** exponential has the given mean. */
  exponential(mean: number): number {
    return -mean * Math.log(this.uniform());
  }

  /** poisson draws a count with the given mean (exact for small means, normal beyond). */
  poisson(mean: number): number {
    if (mean <= 0) return 0;
    if (mean > 30) return Math.max(0, Math.round(mean + Math.sqrt(mean) * this.normal()));
    const limit = Math.exp(-mean);
    let k = 0;
    for (let p = this.uniform(); p > limit; p *= this.uniform()) k++;
    return k;
  }

  /** between is uniform in [lo, hi). */
  between(lo: number, hi: number): number {
    return lo + (hi - lo) * this.uniform();
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

interface Plan {
  name: string;
  pattern: TracePattern;
  perDay: number;
  rng: Rng;
}

/**
 * generateTrace draws `functions` Functions' arrivals over `days` days, the same for the same
 * options. The total is bounded by `maxArrivals`: the busiest rates are lowered to fit under it, and the
 * few Functions that still overrun their share are cut off (`truncated`).
 *
 * @example
 * const trace = generateTrace({ seed: 7, functions: 200, days: 14 });
 * const counts = bucketCounts(trace[0].arrivals, 0, 5 * 60_000, 14 * 288);
 */
export function generateTrace(opts: TraceOptions): TraceFunction[] {
  const { seed, functions, days } = opts;
  const startMs = opts.startMs ?? 0;
  const maxPerDay = opts.maxPerDay ?? 100_000;
  const maxArrivals = opts.maxArrivals ?? 1_000_000;
  if (!Number.isInteger(seed)) throw new RangeError(`generateTrace: seed ${seed} must be an integer`);
  if (!Number.isInteger(functions) || functions < 1 || functions > MAX_FUNCTIONS) {
    throw new RangeError(`generateTrace: functions ${functions} must be an integer between 1 and ${MAX_FUNCTIONS}`);
  }
  if (!(days > 0 && days <= MAX_DAYS)) throw new RangeError(`generateTrace: days ${days} must be in (0, ${MAX_DAYS}]`);
  if (!Number.isFinite(startMs)) throw new RangeError(`generateTrace: startMs ${startMs} must be a finite number of ms`);
  if (!(maxPerDay > 0)) throw new RangeError(`generateTrace: maxPerDay ${maxPerDay} must be > 0`);
  if (!Number.isInteger(maxArrivals) || maxArrivals < 1 || maxArrivals > HARD_MAX_ARRIVALS) {
    throw new RangeError(`generateTrace: maxArrivals ${maxArrivals} must be an integer between 1 and ${HARD_MAX_ARRIVALS}`);
  }

  const width = String(functions - 1).length;
  const plans: Plan[] = [];
  for (let i = 0; i < functions; i++) {
    const rng = new Rng(seed, i);
    const perDay = Math.min(maxPerDay, 10 ** (LOG10_PER_DAY_MEDIAN + LOG10_PER_DAY_SD * rng.normal()));
    plans.push({ name: `fn-${String(i).padStart(width, '0')}`, pattern: pickPattern(rng, perDay), perDay, rng });
  }
  // The budget leaves headroom under the cap for the Poisson spread, so truncation stays the exception.
  const rates = fitBudget(
    plans.map((p) => p.perDay),
    (0.9 * maxArrivals) / days,
  );
  const horizon = days * DAY_MS;
  let budget = maxArrivals;
  return plans.map((p, i) => {
    const perDay = rates[i]!;
    const out = new Arrivals(budget);
    const ctx: Ctx = { rng: p.rng, out, perMs: perDay / DAY_MS, horizon, startMs };
    DRAW[p.pattern](ctx);
    budget -= out.length;
    return { name: p.name, pattern: p.pattern, meanPerDay: perDay, arrivals: out.take(), truncated: out.full };
  });
}

/**
 * bucketCounts counts sorted `arrivals` in `buckets` buckets of `bucketMs`, the first starting at
 * `startMs` (same time base as the arrivals); what falls outside is not counted.
 */
export function bucketCounts(arrivals: ArrayLike<number>, startMs: number, bucketMs: number, buckets: number): number[] {
  if (!(bucketMs > 0)) throw new RangeError(`bucketCounts: bucketMs ${bucketMs} must be > 0`);
  if (!Number.isInteger(buckets) || buckets < 0 || buckets > 1 << 24) throw new RangeError(`bucketCounts: buckets ${buckets} must be an integer in [0, 2^24]`);
  const counts = new Array<number>(buckets).fill(0);
  let lo = 0;
  let hi = arrivals.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (arrivals[mid]! < startMs) lo = mid + 1;
    else hi = mid;
  }
  const end = startMs + bucketMs * buckets;
  for (let i = lo; i < arrivals.length && arrivals[i]! < end; i++) counts[Math.floor((arrivals[i]! - startMs) / bucketMs)]!++;
  return counts;
}

/**
 * fitBudget lowers per-day rates so their sum fits `budget`. Functions called at most once an hour
 * stay as drawn (the published share of them is the point of the trace); above that line rates are
 * compressed in log space by the largest exponent that fits, which keeps their order and much of
 * their skew. Only when even that is not enough are all rates capped at a common ceiling.
 */
function fitBudget(perDay: number[], budget: number): number[] {
  const line = 24; // once an hour
  const sum = (xs: number[]): number => xs.reduce((s, x) => s + x, 0);
  if (sum(perDay) <= budget) return perDay;
  const compress = (k: number): number[] => perDay.map((x) => (x > line ? line * (x / line) ** k : x));
  if (sum(compress(0)) <= budget) {
    let lo = 0;
    let hi = 1;
    for (let it = 0; it < 50; it++) {
      const mid = (lo + hi) / 2;
      if (sum(compress(mid)) <= budget) lo = mid;
      else hi = mid;
    }
    return compress(lo);
  }
  let lo = 0;
  let hi = line;
  for (let it = 0; it < 60; it++) {
    const mid = (lo + hi) / 2;
    if (perDay.reduce((s, x) => s + Math.min(x, mid), 0) <= budget) lo = mid;
    else hi = mid;
  }
  return perDay.map((x) => Math.min(x, lo));
}

function pickPattern(rng: Rng, perDay: number): TracePattern {
  const u = rng.uniform();
  if (perDay < 24) return u < 0.8 ? 'rare' : 'timer';
  if (perDay <= 1440 && u < 0.2) return 'timer';
  if (u < 0.65) return 'diurnal';
  if (u < 0.85) return 'bursty';
  return 'steady';
}

interface Ctx {
  rng: Rng;
  out: Arrivals;
  perMs: number;
  horizon: number;
  startMs: number;
}

const DRAW: Record<TracePattern, (c: Ctx) => void> = {
  steady({ rng, out, perMs, horizon }) {
    let t = rng.exponential(1 / perMs);
    while (t < horizon && out.push(t)) t += rng.exponential(1 / perMs);
  },

  // Busy-hours traffic: a daily cosine peaking in working hours of some time zone, quieter weekends,
  // drawn minute by minute as a Poisson process with that minute's rate.
  diurnal({ rng, out, perMs, horizon, startMs }) {
    const amplitude = rng.between(0.4, 0.95);
    const peakMs = rng.between(9, 17) * 3_600_000 - rng.between(-8, 9) * 3_600_000;
    const weekend = rng.between(0.3, 0.8);
    const norm = 7 / (5 + 2 * weekend);
    for (let t = 0; t < horizon; t += MINUTE_MS) {
      const wall = startMs + t;
      const dow = (Math.floor(wall / DAY_MS) + 4) % 7; // day 0 of the epoch was a Thursday
      const day = 1 + amplitude * Math.cos((2 * Math.PI * (mod(wall, DAY_MS) - peakMs)) / DAY_MS);
      const rate = perMs * day * norm * (dow === 0 || dow === 6 ? weekend : 1);
      if (!segment(rng, out, t, Math.min(MINUTE_MS, horizon - t), rate)) return;
    }
  },

  // A Markov-modulated process: short on-periods carrying most of the calls, long quiet off-periods.
  bursty({ rng, out, perMs, horizon }) {
    const onShare = rng.between(0.02, 0.1);
    const onMean = rng.between(30_000, 600_000);
    const offMean = (onMean * (1 - onShare)) / onShare;
    const onRate = (0.9 * perMs) / onShare;
    const offRate = (0.1 * perMs) / (1 - onShare);
    let on = rng.uniform() < onShare;
    for (let t = 0; t < horizon; on = !on) {
      const len = Math.min(horizon - t, rng.exponential(on ? onMean : offMean));
      if (!segment(rng, out, t, len, on ? onRate : offRate)) return;
      t += len;
    }
  },

  // Clusters and silences: a call is often followed by another within minutes (a retry, a user's
  // next click), otherwise by a long log-normal gap; far from the exponential gaps of a Poisson
  // process, whose coefficient of variation is 1.
  rare({ rng, out, perMs, horizon }) {
    const mean = 1 / perMs;
    const follow = rng.between(0.3, 0.6);
    const shortMean = Math.min(mean / 10, rng.between(10_000, 300_000));
    const sigma = 1;
    const longMean = (mean - follow * shortMean) / (1 - follow);
    const mu = Math.log(longMean) - (sigma * sigma) / 2;
    const gap = (): number => (rng.uniform() < follow ? rng.exponential(shortMean) : Math.exp(mu + sigma * rng.normal()));
    let t = rng.uniform() * gap();
    while (t < horizon && out.push(t)) t += gap();
  },

  // A cron-style timer: the period closest to its rate, a fixed phase, a little start-up jitter.
  timer({ rng, out, perMs, horizon }) {
    const want = 1 / perMs / MINUTE_MS;
    let period = TIMER_PERIODS_MIN[0]!;
    for (const p of TIMER_PERIODS_MIN) if (Math.abs(Math.log(p / want)) < Math.abs(Math.log(period / want))) period = p;
    const periodMs = period * MINUTE_MS;
    const phase = Math.floor(rng.uniform() * period) * MINUTE_MS;
    for (let t = phase; t < horizon; t += periodMs) {
      const at = t + rng.between(0, 500);
      if (at >= horizon || !out.push(at)) return;
    }
  },
};

// Poisson arrivals over [from, from + len) at a constant rate, sorted; false when the cap is hit.
function segment(rng: Rng, out: Arrivals, from: number, len: number, perMs: number): boolean {
  const n = rng.poisson(perMs * len);
  if (n === 0) return true;
  const xs = new Float64Array(n);
  for (let k = 0; k < n; k++) xs[k] = from + len * rng.uniform();
  xs.sort();
  for (let k = 0; k < n; k++) if (!out.push(xs[k]!)) return false;
  return true;
}

function mod(a: number, m: number): number {
  return ((a % m) + m) % m;
}

// A growable Float64Array with a hard length limit.
class Arrivals {
  private buf = new Float64Array(64);
  length = 0;
  full = false;
  constructor(private readonly limit: number) {}

  push(t: number): boolean {
    if (this.length >= this.limit) {
      this.full = true;
      return false;
    }
    if (this.length === this.buf.length) {
      const next = new Float64Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.length++] = t;
    return true;
  }

  take(): Float64Array {
    return this.buf.slice(0, this.length);
  }
}

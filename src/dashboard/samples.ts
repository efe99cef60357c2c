import type { GatewayMetrics, TrafficSnapshot } from '../gateway/index.js';

/** SeriesKind says what a series measures: a Route (all its rules) or a Function (every route to it). */
export type SeriesKind = 'route' | 'function';

/** SeriesHistory is one series over the kept window, oldest first (`t` in Unix seconds, end of each interval). */
export interface SeriesHistory {
  key: string;
  kind: SeriesKind;
  name: string;
  t: number[];
  rps: number[];
  errorRate: number[];
  p50Ms: (number | null)[];
  p99Ms: (number | null)[];
}

/** Tick is what one fine interval adds, sent to live clients; series without traffic are left out. */
export interface Tick {
  t: number;
  points: [key: string, rps: number, errorRate: number, p50Ms: number | null, p99Ms: number | null][];
}

/** Summary is one series over the last few seconds, as `skiff top` shows it. */
export interface Summary {
  kind: SeriesKind;
  name: string;
  rps: number;
  requests: number;
  errors: number;
  errorRate: number;
  p99Ms: number | null;
}

export interface SampleRingOptions {
  /** Reads the gateway's cumulative counters (`gateway.metrics()`). */
  read: () => GatewayMetrics;
  /** Length of a fine interval (default one second). */
  intervalMs?: number;
  /** Fine intervals kept (default 300: five minutes at one second). */
  fineSlots?: number;
  /** Fine intervals folded into one coarse interval (default 10). */
  coarseEvery?: number;
  /** Coarse intervals kept (default 360: the rest of the hour at ten seconds). */
  coarseSlots?: number;
  now?: () => number;
}

/** Cumulative counts of one series, summed over its rules or routes. */
interface Cumulative {
  requests: number;
  errors: number;
  counts: number[];
  /** Upper bounds of the buckets in µs, as the gateway reports them (the last count is beyond them). */
  bounds: readonly number[];
}

/** Bucket index stored for an interval without requests (no quantile). */
const NO_QUANTILE = 255;

/** Slot is one interval of one series as stored: rates, and quantiles as bucket indexes (their bound is the value). */
interface Slot {
  rps: number;
  errorRate: number;
  q50: number;
  q99: number;
}

/**
 * Clock is the timestamps of one resolution, shared by every series: all series are read at the same
 * instants, so a series stores only its values and the tick it was first seen at.
 */
class Clock {
  readonly t: Float64Array;
  count = 0;
  constructor(readonly slots: number) {
    this.t = new Float64Array(slots);
  }
  tick(t: number): void {
    this.t[this.count % this.slots] = t;
    this.count++;
  }
}

/**
 * Ring is one series at one resolution: fixed typed arrays written in a circle, so memory stays flat
 * whatever the traffic (rates in single precision, quantiles as one byte each).
 */
class Ring {
  private readonly rps: Float32Array;
  private readonly err: Float32Array;
  private readonly q: Uint8Array;
  constructor(
    private readonly clock: Clock,
    /** The clock's count before the first tick this series has a value for. */
    private readonly born: number,
  ) {
    this.rps = new Float32Array(clock.slots);
    this.err = new Float32Array(clock.slots);
    this.q = new Uint8Array(clock.slots * 2);
  }
  /** put stores the value of the clock's current tick (call after clock.tick). */
  put(p: Slot): void {
    const i = (this.clock.count - 1) % this.clock.slots;
    this.rps[i] = p.rps;
    this.err[i] = p.errorRate;
    this.q[i * 2] = p.q50;
    this.q[i * 2 + 1] = p.q99;
  }
  /** each visits the stored points oldest first. */
  each(fn: (t: number, p: Slot) => void): void {
    const { count, slots, t } = this.clock;
    const n = Math.min(slots, count - this.born);
    for (let k = count - n; k < count; k++) {
      const i = k % slots;
      fn(t[i]!, { rps: this.rps[i]!, errorRate: this.err[i]!, q50: this.q[i * 2]!, q99: this.q[i * 2 + 1]! });
    }
  }
}

interface Series {
  kind: SeriesKind;
  name: string;
  bounds: readonly number[];
  fine: Ring;
  coarse: Ring;
}

/**
 * SampleRing keeps recent traffic per Route and per Function for the dashboard and `skiff top`, so
 * neither needs Prometheus. Each interval it reads the gateway's cumulative counters (which the hot path
 * keeps anyway) and stores the difference from the previous reading: a fine ring for the last minutes
 * and a coarse one, folded from the same readings, for the rest of the hour. The request path pays
 * nothing for it.
 */
export class SampleRing {
  private readonly series = new Map<string, Series>();
  /** The last `coarseEvery + 1` readings, newest last, to difference over one or many intervals. */
  private readings: { t: number; by: Map<string, Cumulative> }[] = [];
  private readonly fineClock: Clock;
  private readonly coarseClock: Clock;
  private timer?: NodeJS.Timeout;
  private readonly listeners = new Set<(tick: Tick) => void>();
  readonly intervalMs: number;
  private readonly fineSlots: number;
  readonly coarseEvery: number;
  private readonly coarseSlots: number;
  private readonly now: () => number;

  constructor(private readonly opts: SampleRingOptions) {
    this.intervalMs = opts.intervalMs ?? 1000;
    this.fineSlots = opts.fineSlots ?? 300;
    this.coarseEvery = opts.coarseEvery ?? 10;
    this.coarseSlots = opts.coarseSlots ?? 360;
    this.now = opts.now ?? Date.now;
    for (const [name, v] of [['intervalMs', this.intervalMs], ['fineSlots', this.fineSlots], ['coarseEvery', this.coarseEvery], ['coarseSlots', this.coarseSlots]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new RangeError(`SampleRing ${name} must be a positive integer, not ${v}`);
    }
    this.fineClock = new Clock(this.fineSlots);
    this.coarseClock = new Clock(this.coarseSlots);
  }

  /** start takes a first reading and then one every interval until stop(). */
  start(): void {
    if (this.timer) return;
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * live returns a ring over the same counters at another interval that keeps no history to speak of
   * (one slot each), for a stream that wants ticks faster or slower than this ring's; start and stop it
   * with its clients.
   */
  live(intervalMs: number): SampleRing {
    return new SampleRing({ read: this.opts.read, now: this.opts.now, intervalMs, fineSlots: 1, coarseEvery: 1, coarseSlots: 1 });
  }

  /** onTick registers a listener for each new fine interval; the returned function removes it. */
  onTick(fn: (tick: Tick) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** sample takes one reading now (the timer calls it; tests call it directly). */
  sample(): void {
    const t = this.now() / 1000;
    const by = aggregate(this.opts.read());
    const prev = this.readings[this.readings.length - 1];
    this.readings.push({ t, by });
    if (this.readings.length > this.coarseEvery + 1) this.readings.shift();
    if (!prev) return;
    this.fineClock.tick(t);
    const tick: Tick = { t, points: [] };
    for (const [key, cur] of by) {
      let s = this.series.get(key);
      if (!s) {
        const [kind, name] = splitKey(key);
        s = { kind, name, bounds: cur.bounds, fine: new Ring(this.fineClock, this.fineClock.count - 1), coarse: new Ring(this.coarseClock, this.coarseClock.count) };
        this.series.set(key, s);
      }
      const p = difference(cur, prev.by.get(key), t - prev.t);
      s.fine.put(p);
      if (p.rps > 0) tick.points.push([key, p.rps, p.errorRate, toMs(p.q50, s.bounds), toMs(p.q99, s.bounds)]);
    }
    // A Route or Function that left the gateway leaves the dashboard with it.
    for (const key of this.series.keys()) if (!by.has(key)) this.series.delete(key);
    if (this.fineClock.count % this.coarseEvery === 0 && this.readings.length === this.coarseEvery + 1) {
      const first = this.readings[0]!;
      this.coarseClock.tick(t);
      for (const [key, cur] of by) this.series.get(key)!.coarse.put(difference(cur, first.by.get(key), t - first.t));
    }
    for (const fn of this.listeners) fn(tick);
  }

  /** keys lists the series kept, as `route:NS/NAME` and `function:NS/NAME`. */
  keys(): string[] {
    return [...this.series.keys()];
  }

  /**
   * history returns each series (or those named in `keys`) over the kept window: coarse points older
   * than the fine ring's first, then the fine points.
   */
  history(keys?: string[]): SeriesHistory[] {
    const out: SeriesHistory[] = [];
    for (const key of keys ?? this.series.keys()) {
      const s = this.series.get(key);
      if (!s) continue;
      const h: SeriesHistory = { key, kind: s.kind, name: s.name, t: [], rps: [], errorRate: [], p50Ms: [], p99Ms: [] };
      let firstFine = Infinity;
      s.fine.each((t) => (firstFine = Math.min(firstFine, t)));
      const add = (t: number, p: Slot) => {
        h.t.push(t);
        h.rps.push(shown(p.rps));
        h.errorRate.push(shown(p.errorRate));
        h.p50Ms.push(toMs(p.q50, s.bounds));
        h.p99Ms.push(toMs(p.q99, s.bounds));
      };
      s.coarse.each((t, p) => t < firstFine && add(t, p));
      s.fine.each(add);
      out.push(h);
    }
    return out;
  }

  /** summary returns every series over the last `coarseEvery` intervals (fewer just after start), busiest first. */
  summary(): Summary[] {
    const last = this.readings[this.readings.length - 1];
    const first = this.readings[0];
    if (!last || !first || last === first) return [...this.series.values()].map((s) => ({ kind: s.kind, name: s.name, rps: 0, requests: 0, errors: 0, errorRate: 0, p99Ms: null }));
    const out: Summary[] = [];
    for (const [key, cur] of last.by) {
      const before = first.by.get(key);
      const requests = Math.max(0, cur.requests - (before?.requests ?? 0));
      const errors = Math.max(0, cur.errors - (before?.errors ?? 0));
      const p = difference(cur, before, last.t - first.t);
      const [kind, name] = splitKey(key);
      out.push({ kind, name, rps: p.rps, requests, errors, errorRate: p.errorRate, p99Ms: toMs(p.q99, cur.bounds) });
    }
    return out.sort((a, b) => b.rps - a.rps || a.name.localeCompare(b.name));
  }
}

/** aggregate sums the gateway's per-rule route stats per Route and picks the Function upstreams (`fn:NS/NAME`). */
function aggregate(m: GatewayMetrics): Map<string, Cumulative> {
  const by = new Map<string, Cumulative>();
  const add = (key: string, s: TrafficSnapshot) => {
    let c = by.get(key);
    if (!c) by.set(key, (c = { requests: 0, errors: 0, counts: new Array<number>(s.latencyUs.counts.length).fill(0), bounds: s.latencyUs.buckets }));
    c.requests += s.requests;
    c.errors += s.responses['5xx'] ?? 0;
    for (let i = 0; i < s.latencyUs.counts.length; i++) c.counts[i]! += s.latencyUs.counts[i]!;
  };
  for (const [k, s] of Object.entries(m.routes)) {
    const hash = k.indexOf('#');
    add(`route:${hash < 0 ? k : k.slice(0, hash)}`, s);
  }
  for (const [k, s] of Object.entries(m.upstreams)) if (k.startsWith('fn:')) add(`function:${k.slice(3)}`, s);
  return by;
}

/** difference turns two cumulative readings into one point; counters that went back (a restart) count from zero. */
function difference(cur: Cumulative, before: Cumulative | undefined, seconds: number): Slot {
  const reset = before !== undefined && cur.requests < before.requests;
  const base = reset ? undefined : before;
  const requests = cur.requests - (base?.requests ?? 0);
  const errors = Math.max(0, cur.errors - (base?.errors ?? 0));
  const counts = cur.counts.map((c, i) => Math.max(0, c - (base?.counts[i] ?? 0)));
  return {
    rps: seconds > 0 ? requests / seconds : 0,
    errorRate: requests > 0 ? errors / requests : 0,
    q50: quantileBucket(counts, requests, 0.5),
    q99: quantileBucket(counts, requests, 0.99),
  };
}

/** quantileBucket is the index of the bucket that holds quantile q (NO_QUANTILE without requests). */
function quantileBucket(counts: number[], total: number, q: number): number {
  if (total <= 0) return NO_QUANTILE;
  const target = Math.ceil(q * total);
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    seen += counts[i]!;
    if (seen >= target) return Math.min(i, NO_QUANTILE - 1);
  }
  return NO_QUANTILE;
}

/** toMs is a bucket's upper bound in ms, as the gateway's own histogram answers a quantile (beyond the last: twice it). */
function toMs(bucket: number, bounds: readonly number[]): number | null {
  if (bucket === NO_QUANTILE || !bounds.length) return null;
  return (bounds[bucket] ?? bounds[bounds.length - 1]! * 2) / 1000;
}

/** shown drops the noise single precision adds (0.2 is kept as 0.2000000029...). */
function shown(v: number): number {
  return Number(v.toPrecision(6));
}

function splitKey(key: string): [SeriesKind, string] {
  const colon = key.indexOf(':');
  return [key.slice(0, colon) as SeriesKind, key.slice(colon + 1)];
}

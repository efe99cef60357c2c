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
  /**
   * With a replicas source, a Function's scaling per interval, aligned with `t` (null where the source did
   * not report the Function): the most replicas the autoscaler wanted and had ready (over a coarse point,
   * the most at any reading in it), 1 if it was panicking at any of them, the cold starts in the interval,
   * and the mean forecast rate.
   */
  desired?: (number | null)[];
  ready?: (number | null)[];
  panic?: (0 | 1 | null)[];
  coldStarts?: (number | null)[];
  forecastRate?: (number | null)[];
}

/** ReplicaPoint is one Function's scaling in one interval, as a tick carries it. */
export type ReplicaPoint = [key: string, desired: number, ready: number, panic: 0 | 1, coldStarts: number, forecastRate: number | null];

/** Tick is what one fine interval adds, sent to live clients; series without traffic are left out of `points`. */
export interface Tick {
  t: number;
  points: [key: string, rps: number, errorRate: number, p50Ms: number | null, p99Ms: number | null][];
  /** With a replicas source: every Function it reports, scaled to zero or not, with or without traffic. */
  replicas?: ReplicaPoint[];
}

/** ReplicaStat is what the autoscaler reports of one Function (a subset of its `stats()`). */
export interface ReplicaStat {
  namespace: string;
  name: string;
  desired: number;
  /** Replicas running, ready or not. */
  replicas: number;
  ready: number;
  panic: boolean;
  reason: string;
  /** Cumulative since the autoscaler started; the ring stores the difference per interval. */
  coldStarts: number;
  forecastRate?: number;
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
  /** For a Function the replicas source reports: its replicas now, and why the autoscaler chose that many. */
  replicas?: number;
  ready?: number;
  desired?: number;
  panic?: boolean;
  reason?: string;
}

export interface SampleRingOptions {
  /** Reads the gateway's cumulative counters (`gateway.metrics()`). */
  read: () => GatewayMetrics;
  /**
   * Reads each Function's replicas (the autoscaler's `stats()`), at the same instants as the gateway's
   * counters; every Function it names gets a series, traffic or not.
   */
  replicas?: () => Iterable<ReplicaStat>;
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
  rep?: ReplicaSlot;
}

/** ReplicaSlot is one Function's scaling in one interval as stored (NaN: not reported; forecast NaN: none). */
interface ReplicaSlot {
  desired: number;
  ready: number;
  panic: number;
  coldStarts: number;
  forecast: number;
}

const NO_REPLICAS: ReplicaSlot = { desired: NaN, ready: NaN, panic: 0, coldStarts: NaN, forecast: NaN };

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
  /** A Function's scaling, only when the ring has a replicas source: desired, ready, cold starts, forecast per slot. */
  private readonly rep?: Float32Array;
  private readonly panic?: Uint8Array;
  constructor(
    private readonly clock: Clock,
    /** The clock's count before the first tick this series has a value for. */
    private readonly born: number,
    withReplicas = false,
  ) {
    this.rps = new Float32Array(clock.slots);
    this.err = new Float32Array(clock.slots);
    this.q = new Uint8Array(clock.slots * 2);
    if (withReplicas) {
      this.rep = new Float32Array(clock.slots * 4);
      this.panic = new Uint8Array(clock.slots);
    }
  }
  /** put stores the value of the clock's current tick (call after clock.tick). */
  put(p: Slot): void {
    const i = (this.clock.count - 1) % this.clock.slots;
    this.rps[i] = p.rps;
    this.err[i] = p.errorRate;
    this.q[i * 2] = p.q50;
    this.q[i * 2 + 1] = p.q99;
    if (this.rep && this.panic) {
      const r = p.rep ?? NO_REPLICAS;
      this.rep.set([r.desired, r.ready, r.coldStarts, r.forecast], i * 4);
      this.panic[i] = r.panic;
    }
  }
  /** each visits the stored points oldest first. */
  each(fn: (t: number, p: Slot) => void): void {
    const { count, slots, t } = this.clock;
    const n = Math.min(slots, count - this.born);
    for (let k = count - n; k < count; k++) {
      const i = k % slots;
      const rep = this.rep && this.panic ? { desired: this.rep[i * 4]!, ready: this.rep[i * 4 + 1]!, coldStarts: this.rep[i * 4 + 2]!, forecast: this.rep[i * 4 + 3]!, panic: this.panic[i]! } : undefined;
      fn(t[i]!, { rps: this.rps[i]!, errorRate: this.err[i]!, q50: this.q[i * 2]!, q99: this.q[i * 2 + 1]!, rep });
    }
  }
}

interface Series {
  kind: SeriesKind;
  name: string;
  bounds: readonly number[];
  fine: Ring;
  coarse: Ring;
  /** A Function in a ring with a replicas source: its scaling is kept too. */
  scaled: boolean;
}

/** One reading of every source at one instant. */
interface Reading {
  t: number;
  by: Map<string, Cumulative>;
  /** The replicas source's answer by series key (empty without a source). */
  rep: Map<string, ReplicaStat>;
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
  private readings: Reading[] = [];
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
    return new SampleRing({ read: this.opts.read, replicas: this.opts.replicas, now: this.opts.now, intervalMs, fineSlots: 1, coarseEvery: 1, coarseSlots: 1 });
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
    const rep = this.readReplicas();
    const prev = this.readings[this.readings.length - 1];
    this.readings.push({ t, by, rep });
    if (this.readings.length > this.coarseEvery + 1) this.readings.shift();
    if (!prev) return;
    this.fineClock.tick(t);
    const tick: Tick = this.opts.replicas ? { t, points: [], replicas: [] } : { t, points: [] };
    // A Function the autoscaler knows but nobody called (or scaled to zero) still gets a series.
    for (const key of new Set([...by.keys(), ...rep.keys()])) {
      const cur = by.get(key);
      let s = this.series.get(key);
      if (!s) {
        const [kind, name] = splitKey(key);
        const scaled = this.opts.replicas !== undefined && kind === 'function';
        s = { kind, name, bounds: cur?.bounds ?? [], scaled, fine: new Ring(this.fineClock, this.fineClock.count - 1, scaled), coarse: new Ring(this.coarseClock, this.coarseClock.count, scaled) };
        this.series.set(key, s);
      } else if (!s.bounds.length && cur) s.bounds = cur.bounds;
      const p = cur ? difference(cur, prev.by.get(key), t - prev.t) : quiet();
      const r = rep.get(key);
      if (r) {
        p.rep = replicaSlot(r, prev.rep.get(key));
        tick.replicas!.push([key, p.rep.desired, p.rep.ready, p.rep.panic ? 1 : 0, p.rep.coldStarts, Number.isNaN(p.rep.forecast) ? null : p.rep.forecast]);
      }
      s.fine.put(p);
      if (p.rps > 0) tick.points.push([key, p.rps, p.errorRate, toMs(p.q50, s.bounds), toMs(p.q99, s.bounds)]);
    }
    // A Route or Function that left the gateway (and the autoscaler) leaves the dashboard with it.
    for (const key of this.series.keys()) if (!by.has(key) && !rep.has(key)) this.series.delete(key);
    if (this.fineClock.count % this.coarseEvery === 0 && this.readings.length === this.coarseEvery + 1) {
      const first = this.readings[0]!;
      this.coarseClock.tick(t);
      for (const [key, s] of this.series) {
        const cur = by.get(key);
        const p = cur ? difference(cur, first.by.get(key), t - first.t) : quiet();
        if (s.scaled) p.rep = this.fold(key);
        s.coarse.put(p);
      }
    }
    for (const fn of this.listeners) fn(tick);
  }

  /**
   * readReplicas keys the replicas source's answer by series key. A source that throws is read as its
   * last answer: the sampling timer must not die with it, and an empty answer would drop every idle
   * Function's series and count its cold starts again from zero.
   */
  private readReplicas(): Map<string, ReplicaStat> {
    const out = new Map<string, ReplicaStat>();
    if (!this.opts.replicas) return out;
    try {
      for (const r of this.opts.replicas()) out.set(`function:${r.namespace}/${r.name}`, r);
    } catch {
      return this.readings[this.readings.length - 1]?.rep ?? out;
    }
    return out;
  }

  /**
   * fold is a Function's scaling over the readings of one coarse interval: the most replicas desired and
   * ready at any reading (so a short burst of scale-up still shows at the coarse resolution), panic if any
   * reading panicked, the cold starts summed, and the mean forecast of the readings that had one.
   */
  private fold(key: string): ReplicaSlot {
    let desired = NaN;
    let ready = NaN;
    let panic = 0;
    let coldStarts = NaN;
    let forecast = 0;
    let forecasts = 0;
    for (let i = 1; i < this.readings.length; i++) {
      const r = this.readings[i]!.rep.get(key);
      if (!r) continue;
      const one = replicaSlot(r, this.readings[i - 1]!.rep.get(key));
      desired = Number.isNaN(desired) ? one.desired : Math.max(desired, one.desired);
      ready = Number.isNaN(ready) ? one.ready : Math.max(ready, one.ready);
      panic |= one.panic;
      coldStarts = (Number.isNaN(coldStarts) ? 0 : coldStarts) + one.coldStarts;
      if (!Number.isNaN(one.forecast)) {
        forecast += one.forecast;
        forecasts++;
      }
    }
    return { desired, ready, panic, coldStarts, forecast: forecasts ? forecast / forecasts : NaN };
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
      const scale = s.scaled ? { desired: [] as (number | null)[], ready: [] as (number | null)[], panic: [] as (0 | 1 | null)[], coldStarts: [] as (number | null)[], forecastRate: [] as (number | null)[] } : undefined;
      if (scale) Object.assign(h, scale);
      let firstFine = Infinity;
      s.fine.each((t) => (firstFine = Math.min(firstFine, t)));
      const add = (t: number, p: Slot) => {
        h.t.push(t);
        h.rps.push(shown(p.rps));
        h.errorRate.push(shown(p.errorRate));
        h.p50Ms.push(toMs(p.q50, s.bounds));
        h.p99Ms.push(toMs(p.q99, s.bounds));
        if (scale) {
          const r = p.rep ?? NO_REPLICAS;
          const known = !Number.isNaN(r.desired);
          scale.desired.push(known ? r.desired : null);
          scale.ready.push(known ? r.ready : null);
          scale.panic.push(known ? (r.panic ? 1 : 0) : null);
          scale.coldStarts.push(known ? r.coldStarts : null);
          scale.forecastRate.push(Number.isNaN(r.forecast) ? null : shown(r.forecast));
        }
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
    for (const key of new Set([...last.by.keys(), ...last.rep.keys()])) {
      const cur = last.by.get(key);
      const before = first.by.get(key);
      const requests = cur ? Math.max(0, cur.requests - (before?.requests ?? 0)) : 0;
      const errors = cur ? Math.max(0, cur.errors - (before?.errors ?? 0)) : 0;
      const p = cur ? difference(cur, before, last.t - first.t) : quiet();
      const [kind, name] = splitKey(key);
      const row: Summary = { kind, name, rps: p.rps, requests, errors, errorRate: p.errorRate, p99Ms: cur ? toMs(p.q99, cur.bounds) : null };
      const r = last.rep.get(key);
      if (r) Object.assign(row, { replicas: count(r.replicas), ready: count(r.ready), desired: count(r.desired), panic: r.panic === true, reason: String(r.reason) });
      out.push(row);
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

/** quiet is an interval without requests, for a series the gateway does not (or no longer) route to. */
function quiet(): Slot {
  return { rps: 0, errorRate: 0, q50: NO_QUANTILE, q99: NO_QUANTILE };
}

/**
 * replicaSlot is one reading of a Function's scaling; cold starts are the difference from the reading
 * before (all of them for a Function new to the source, and from zero if the counter went back: the
 * autoscaler restarted).
 */
function replicaSlot(r: ReplicaStat, before: ReplicaStat | undefined): ReplicaSlot {
  const cold = count(r.coldStarts);
  const prior = before === undefined ? 0 : count(before.coldStarts);
  const forecast = typeof r.forecastRate === 'number' && Number.isFinite(r.forecastRate) ? Math.max(0, r.forecastRate) : NaN;
  return { desired: count(r.desired), ready: count(r.ready), panic: r.panic === true ? 1 : 0, coldStarts: cold >= prior ? cold - prior : cold, forecast };
}

/** count reads a replica count or counter as a whole number of at least zero (anything else is zero). */
function count(v: number): number {
  return Number.isFinite(v) && v > 0 ? Math.floor(v) : 0;
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

import { SkiffError } from '../../util/errors.js';

/** HistoryError is a bad request history: an invalid option or count, or an encoded form that does not decode. */
export class HistoryError extends SkiffError {}

/** The complete buckets of a history, oldest first: `counts[i]` counted requests in `[start + i*bucketMs, start + (i+1)*bucketMs)`. */
export interface HistorySeries {
  start: number;
  bucketMs: number;
  counts: number[];
}

/** Options of a RequestHistory. */
export interface RequestHistoryOptions {
  /** Width of one bucket in ms (default five minutes). */
  bucketMs?: number;
  /** Buckets kept (default two weeks of the default bucket); older ones fall off the front. */
  capacity?: number;
}

export const DEFAULT_BUCKET_MS = 5 * 60_000;
export const DEFAULT_CAPACITY = (14 * 24 * 60 * 60_000) / DEFAULT_BUCKET_MS;
// Bounds on what a history may be configured with or decode to, so a hostile encoded string cannot
// make the controller allocate without limit.
const MAX_CAPACITY = 1 << 20;
const MAX_BUCKET_MS = 7 * 24 * 60 * 60_000;
// Counts saturate here: zigzag deltas of larger values would no longer be exact in a double.
export const MAX_BUCKET_COUNT = 2 ** 48;

const FORMAT = 'h1';

/**
 * RequestHistory counts a Function's requests in fixed buckets, keeping at most `capacity` of them.
 * It is small enough to live in the store next to the Function and is the input of the forecaster.
 *
 * @example
 * const h = new RequestHistory();
 * h.add(clock.now(), 42);
 * const { counts } = h.series(clock.now());
 * await store.put(key, h.encode());
 */
export class RequestHistory {
  readonly bucketMs: number;
  readonly capacity: number;
  // Bucket index (time / bucketMs) of counts[0]; counts ends at the newest bucket ever added to.
  private startIndex = 0;
  private counts: number[] = [];

  constructor(opts: RequestHistoryOptions = {}) {
    const bucketMs = opts.bucketMs ?? DEFAULT_BUCKET_MS;
    const capacity = opts.capacity ?? DEFAULT_CAPACITY;
    if (!Number.isInteger(bucketMs) || bucketMs < 1 || bucketMs > MAX_BUCKET_MS) {
      throw new HistoryError('invalid_bucket', `RequestHistory bucketMs ${bucketMs} must be an integer number of ms between 1 and ${MAX_BUCKET_MS}`);
    }
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > MAX_CAPACITY) {
      throw new HistoryError('invalid_capacity', `RequestHistory capacity ${capacity} must be an integer number of buckets between 1 and ${MAX_CAPACITY}`);
    }
    this.bucketMs = bucketMs;
    this.capacity = capacity;
  }

  /** empty is true until the first add. */
  get empty(): boolean {
    return this.counts.length === 0;
  }

  /** add counts `count` requests at time `now` (ms). Counts for buckets that already fell off are dropped. */
  add(now: number, count: number): void {
    if (!Number.isFinite(now)) throw new HistoryError('invalid_time', `RequestHistory.add: time ${now} is not a finite number of ms`);
    if (!Number.isInteger(count) || count < 0) {
      throw new HistoryError('invalid_count', `RequestHistory.add: count ${count} must be an integer >= 0`);
    }
    const b = Math.floor(now / this.bucketMs);
    if (this.counts.length === 0) {
      this.startIndex = b;
      this.counts.push(0);
    }
    this.extendTo(b);
    const i = b - this.startIndex;
    if (i < 0) return;
    this.counts[i] = Math.min(MAX_BUCKET_COUNT, this.counts[i]! + count);
  }

  /** series is the complete buckets before the one holding `now`, oldest first, gaps as zeros, at most `capacity`. */
  series(now: number): HistorySeries {
    const end = Math.floor(now / this.bucketMs); // the bucket in progress, excluded
    if (this.counts.length === 0 || end <= this.startIndex) {
      return { start: end * this.bucketMs, bucketMs: this.bucketMs, counts: [] };
    }
    const from = Math.max(this.startIndex, end - this.capacity);
    const counts = new Array<number>(end - from).fill(0);
    const known = Math.min(end, this.startIndex + this.counts.length);
    for (let b = from; b < known; b++) counts[b - from] = this.counts[b - this.startIndex]!;
    return { start: from * this.bucketMs, bucketMs: this.bucketMs, counts };
  }

  /** encode is a compact, URL-safe text form: a format tag, then base64url of varints and a checksum. */
  encode(): string {
    const out = new ByteWriter();
    out.varint(this.bucketMs);
    out.varint(this.capacity);
    out.varint(this.counts.length === 0 ? 0 : zigzag(this.startIndex));
    out.varint(this.counts.length);
    // Neighbouring buckets are close, so deltas are small varints; a run of equal buckets (often
    // zeros for a quiet Function) is a zero followed by its length.
    let prev = 0;
    for (let i = 0; i < this.counts.length; ) {
      const c = this.counts[i]!;
      if (c === prev) {
        let run = 1;
        while (i + run < this.counts.length && this.counts[i + run] === prev) run++;
        out.varint(0);
        out.varint(run - 1);
        i += run;
        continue;
      }
      const d = c - prev;
      out.varint(d > 0 ? 2 * d - 1 : -2 * d); // zigzag without the zero, which marks a run
      prev = c;
      i++;
    }
    const body = out.bytes();
    const sum = fnv1a(body);
    const full = Buffer.alloc(body.length + 4);
    full.set(body, 0);
    full.writeUInt32BE(sum, body.length);
    return `${FORMAT}.${full.toString('base64url')}`;
  }

  /** decode reads what encode wrote; anything else throws a HistoryError with code `invalid_encoding`. */
  static decode(s: string): RequestHistory {
    const bad = (why: string): HistoryError =>
      new HistoryError('invalid_encoding', `request history does not decode (${why}); drop it and let the history start again`);
    if (typeof s !== 'string') throw bad('not a string');
    const dot = s.indexOf('.');
    if (dot < 0 || s.slice(0, dot) !== FORMAT) throw bad(`expected the "${FORMAT}." format tag`);
    const b64 = s.slice(dot + 1);
    if (!/^[A-Za-z0-9_-]*$/.test(b64)) throw bad('not base64url');
    const full = Buffer.from(b64, 'base64url');
    if (full.length < 5) throw bad('too short');
    const body = full.subarray(0, full.length - 4);
    if (fnv1a(body) !== full.readUInt32BE(full.length - 4)) throw bad('checksum mismatch');
    const r = new ByteReader(body, bad);
    const bucketMs = r.varint();
    const capacity = r.varint();
    const startRaw = r.varint();
    const n = r.varint();
    let h: RequestHistory;
    try {
      h = new RequestHistory({ bucketMs, capacity });
    } catch (e) {
      throw bad((e as Error).message);
    }
    if (n > capacity) throw bad(`${n} buckets exceed the capacity ${capacity}`);
    const counts = new Array<number>(n);
    let prev = 0;
    for (let i = 0; i < n; ) {
      const t = r.varint();
      if (t === 0) {
        const run = r.varint() + 1;
        if (i + run > n) throw bad('a run passes the end');
        counts.fill(prev, i, i + run);
        i += run;
        continue;
      }
      prev += t % 2 === 1 ? (t + 1) / 2 : -t / 2;
      if (prev < 0 || prev > MAX_BUCKET_COUNT) throw bad(`count ${prev} out of range`);
      counts[i++] = prev;
    }
    if (!r.done) throw bad('trailing bytes');
    h.startIndex = n === 0 ? 0 : unzigzag(startRaw);
    h.counts = counts;
    return h;
  }

  private extendTo(b: number): void {
    const last = this.startIndex + this.counts.length - 1;
    if (b <= last) return;
    if (b - last >= this.capacity) {
      // Everything kept is older than the window: start again rather than push zeros through.
      this.startIndex = b;
      this.counts = [0];
      return;
    }
    for (let k = last + 1; k <= b; k++) this.counts.push(0);
    const over = this.counts.length - this.capacity;
    if (over > 0) {
      this.counts.splice(0, over);
      this.startIndex += over;
    }
  }
}

function zigzag(v: number): number {
  return v >= 0 ? 2 * v : -2 * v - 1;
}

function unzigzag(v: number): number {
  return v % 2 === 0 ? v / 2 : -(v + 1) / 2;
}

// FNV-1a over the payload: not for integrity against an adversary, only to tell garbage and
// truncation from a history.
function fnv1a(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (const b of bytes) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h >>> 0;
}

class ByteWriter {
  private buf = new Uint8Array(256);
  private n = 0;

  // Unsigned LEB128 with arithmetic instead of shifts, so values up to 2^53 stay exact.
  varint(v: number): void {
    if (this.n + 8 > this.buf.length) {
      const next = new Uint8Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    while (v >= 0x80) {
      this.buf[this.n++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.n++] = v;
  }

  bytes(): Uint8Array {
    return this.buf.subarray(0, this.n);
  }
}

class ByteReader {
  private i = 0;
  constructor(
    private readonly bytes: Uint8Array,
    private readonly bad: (why: string) => Error,
  ) {}

  get done(): boolean {
    return this.i === this.bytes.length;
  }

  varint(): number {
    let v = 0;
    let scale = 1;
    for (let k = 0; k < 8; k++) {
      if (this.i >= this.bytes.length) throw this.bad('truncated');
      const b = this.bytes[this.i++]!;
      v += (b & 0x7f) * scale;
      if (b < 0x80) {
        if (v > Number.MAX_SAFE_INTEGER) break;
        return v;
      }
      scale *= 0x80;
    }
    throw this.bad('a number is too large');
  }
}

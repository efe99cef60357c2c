import type { LogLine, LogSource } from '../api/server.js';

const STREAMS: ReadonlyArray<LogLine['stream']> = ['stderr', 'system', 'stdout', 'console'];
/** A line longer than this many bytes is cut there (the ring would otherwise hold only a few lines). */
const MAX_LINE_BYTES = 16 * 1024;
/** Text bytes kept per function at most; older lines go when it is full, like lines past the line cap. */
const MAX_TEXT_BYTES = 256 * 1024;
const encoder = new TextEncoder();

/** LineTrace is the trace and span a line was written under. */
export interface LineTrace {
  traceId: string;
  spanId: string;
}

/**
 * LineRing is one function's recent lines, kept as bytes in a circular buffer with their metadata in
 * parallel typed arrays. Hand-written for the request path: a function may log a line per request, and
 * keeping each as an object and a string means a few objects outliving every request, which the garbage
 * collector then copies and promotes; here a line costs a copy of its bytes and a slot. Lines become
 * objects only when someone reads them.
 */
class LineRing {
  private readonly times: Float64Array;
  private readonly streams: Uint8Array;
  private readonly ids: Array<string | undefined>;
  private readonly traceIds: Array<string | undefined>;
  private readonly spanIds: Array<string | undefined>;
  /** Where each line's text starts, as an ever-growing offset into the text stream (mod text.length). */
  private readonly starts: Float64Array;
  private readonly lens: Uint32Array;
  private first = 0;
  private count = 0;
  private text = new Uint8Array(4096);
  private written = 0;

  constructor(private readonly cap: number) {
    this.times = new Float64Array(cap);
    this.streams = new Uint8Array(cap);
    this.ids = new Array<string | undefined>(cap);
    this.traceIds = new Array<string | undefined>(cap);
    this.spanIds = new Array<string | undefined>(cap);
    this.starts = new Float64Array(cap);
    this.lens = new Uint32Array(cap);
  }

  push(timeMs: number, stream: number, requestId: string | undefined, bytes: Uint8Array, trace?: LineTrace): void {
    if (bytes.length > MAX_LINE_BYTES) bytes = bytes.subarray(0, MAX_LINE_BYTES);
    this.room(bytes.length);
    const size = this.text.length;
    const at = this.written % size;
    const head = Math.min(bytes.length, size - at);
    this.text.set(bytes.subarray(0, head), at);
    if (head < bytes.length) this.text.set(bytes.subarray(head), 0);
    if (this.count === this.cap) this.dropFirst();
    const slot = (this.first + this.count) % this.cap;
    this.times[slot] = timeMs;
    this.streams[slot] = stream;
    this.ids[slot] = requestId;
    this.traceIds[slot] = trace?.traceId;
    this.spanIds[slot] = trace?.spanId;
    this.starts[slot] = this.written;
    this.lens[slot] = bytes.length;
    this.count++;
    this.written += bytes.length;
  }

  /** room makes space for `n` more text bytes: the buffer doubles up to its cap, then the oldest lines go. */
  private room(n: number): void {
    while (this.text.length < MAX_TEXT_BYTES && this.used() + n > this.text.length) this.grow();
    while (this.count > 0 && this.used() + n > this.text.length) this.dropFirst();
  }

  private used(): number {
    return this.count === 0 ? 0 : this.written - this.starts[this.first]!;
  }

  private grow(): void {
    const next = new Uint8Array(Math.min(MAX_TEXT_BYTES, this.text.length * 2));
    // Re-lay the live bytes so that offsets mod the new size still find them.
    for (let i = 0; i < this.count; i++) {
      const slot = (this.first + i) % this.cap;
      const line = this.read(slot);
      const start = this.starts[slot]!;
      for (let j = 0; j < line.length; j++) next[(start + j) % next.length] = line[j]!;
    }
    this.text = next;
  }

  private dropFirst(): void {
    this.ids[this.first] = undefined;
    this.traceIds[this.first] = undefined;
    this.spanIds[this.first] = undefined;
    this.first = (this.first + 1) % this.cap;
    this.count--;
  }

  private read(slot: number): Uint8Array {
    const size = this.text.length;
    const at = this.starts[slot]! % size;
    const len = this.lens[slot]!;
    if (at + len <= size) return this.text.subarray(at, at + len);
    const out = new Uint8Array(len);
    out.set(this.text.subarray(at));
    out.set(this.text.subarray(0, len - (size - at)), size - at);
    return out;
  }

  line(i: number): LogLine {
    const slot = (this.first + i) % this.cap;
    const id = this.ids[slot];
    const line = Buffer.from(this.read(slot)).toString('utf8');
    const out: LogLine = { time: new Date(this.times[slot]!).toISOString(), stream: STREAMS[this.streams[slot]!]!, line };
    if (id) out.requestId = id;
    const traceId = this.traceIds[slot];
    if (traceId) {
      out.trace_id = traceId;
      out.span_id = this.spanIds[slot];
    }
    return out;
  }

  /** last returns the newest `n` lines, oldest first. */
  last(n: number): LogLine[] {
    const k = Math.min(n, this.count);
    const out: LogLine[] = [];
    for (let i = this.count - k; i < this.count; i++) out.push(this.line(i));
    return out;
  }

  get size(): number {
    return this.count;
  }
}

/**
 * FunctionLogs keeps the recent log lines of each function in a bounded ring (the guest's stderr and
 * the platform's own notes about it: traps, bad output, timeouts) and fans new lines out to followers.
 */
export class FunctionLogs implements LogSource {
  private readonly rings = new Map<string, LineRing>();
  private readonly followers = new Map<string, Set<(l: LogLine) => void>>();

  constructor(private readonly perFunction = 1000) {}

  private ring(key: string): LineRing {
    let ring = this.rings.get(key);
    if (!ring) this.rings.set(key, (ring = new LineRing(this.perFunction)));
    return ring;
  }

  append(namespace: string, name: string, line: Omit<LogLine, 'time'> & { time?: string }): void {
    const key = `${namespace}/${name}`;
    const ms = line.time !== undefined ? Date.parse(line.time) : Date.now();
    const trace = line.trace_id && line.span_id ? { traceId: line.trace_id, spanId: line.span_id } : undefined;
    this.push(key, Number.isNaN(ms) ? Date.now() : ms, STREAMS.indexOf(line.stream), line.requestId, encoder.encode(line.line), trace);
  }

  private push(key: string, ms: number, stream: number, requestId: string | undefined, bytes: Uint8Array, trace?: LineTrace): void {
    const ring = this.ring(key);
    ring.push(ms, stream, requestId, bytes, trace);
    const followers = this.followers.get(key);
    if (followers?.size) {
      const l = ring.line(ring.size - 1);
      for (const f of followers) f(l);
    }
  }

  /**
   * appendOutput splits a stderr buffer into lines (a final partial line counts as a line; a trailing
   * CR is dropped) and keeps their bytes; nothing is decoded until the lines are read.
   */
  appendOutput(namespace: string, name: string, requestId: string, stderr: Uint8Array, trace?: LineTrace): void {
    if (stderr.length === 0) return;
    const key = `${namespace}/${name}`;
    const ms = Date.now();
    let start = 0;
    while (start < stderr.length) {
      let nl = stderr.indexOf(0x0a, start);
      if (nl < 0) nl = stderr.length;
      let end = nl;
      if (end > start && stderr[end - 1] === 0x0d) end--;
      if (end > start) this.push(key, ms, 0, requestId, stderr.subarray(start, end), trace);
      start = nl + 1;
    }
  }

  tail(namespace: string, name: string, lines: number): LogLine[] {
    const ring = this.rings.get(`${namespace}/${name}`);
    return ring ? ring.last(Math.min(lines, this.perFunction)) : [];
  }

  follow(namespace: string, name: string, onLine: (l: LogLine) => void): () => void {
    const key = `${namespace}/${name}`;
    let set = this.followers.get(key);
    if (!set) this.followers.set(key, (set = new Set()));
    set.add(onLine);
    return () => set!.delete(onLine);
  }

  forget(namespace: string, name: string): void {
    this.rings.delete(`${namespace}/${name}`);
  }
}

import type { LogLine, LogSource } from '../api/server.js';

/** Lines a ring may run over perFunction before it is trimmed back. */
const TRIM_BATCH = 64;

/**
 * FunctionLogs keeps the recent log lines of each function in a bounded ring (the guest's stderr and
 * the platform's own notes about it: traps, bad output, timeouts) and fans new lines out to followers.
 */
export class FunctionLogs implements LogSource {
  private readonly rings = new Map<string, LogLine[]>();
  private readonly followers = new Map<string, Set<(l: LogLine) => void>>();

  constructor(private readonly perFunction = 1000) {}

  append(namespace: string, name: string, line: Omit<LogLine, 'time'> & { time?: string }): void {
    const key = `${namespace}/${name}`;
    let ring = this.rings.get(key);
    if (!ring) this.rings.set(key, (ring = []));
    const full: LogLine = line.requestId
      ? { time: line.time ?? this.now(), stream: line.stream, line: line.line, requestId: line.requestId }
      : { time: line.time ?? this.now(), stream: line.stream, line: line.line };
    ring.push(full);
    // Trimmed in batches (tail() only ever shows the last perFunction lines): shifting a full ring on
    // every line of every request is an O(n) copy on the request path.
    if (ring.length > this.perFunction + TRIM_BATCH) ring.splice(0, ring.length - this.perFunction);
    const followers = this.followers.get(key);
    if (followers) for (const f of followers) f(full);
  }

  private lastMs = -1;
  private lastIso = '';

  /** now is the current time in ISO form, formatted once per millisecond (many lines share one). */
  private now(): string {
    const ms = Date.now();
    if (ms !== this.lastMs) {
      this.lastMs = ms;
      this.lastIso = new Date(ms).toISOString();
    }
    return this.lastIso;
  }

  /**
   * appendOutput splits a stderr buffer into lines (a final partial line counts as a line). Hand-written
   * scan: a function may log a line on every request, and splitting a decoded copy costs several times more.
   */
  appendOutput(namespace: string, name: string, requestId: string, stderr: Uint8Array): void {
    if (stderr.length === 0) return;
    const buf = Buffer.from(stderr.buffer, stderr.byteOffset, stderr.byteLength);
    let start = 0;
    while (start < buf.length) {
      let nl = buf.indexOf(0x0a, start);
      if (nl < 0) nl = buf.length;
      let end = nl;
      if (end > start && buf[end - 1] === 0x0d) end--;
      if (end > start) this.append(namespace, name, { stream: 'stderr', requestId, line: buf.toString('utf8', start, end) });
      start = nl + 1;
    }
  }

  tail(namespace: string, name: string, lines: number): LogLine[] {
    const ring = this.rings.get(`${namespace}/${name}`) ?? [];
    const n = Math.min(lines, this.perFunction, ring.length);
    return ring.slice(ring.length - n);
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

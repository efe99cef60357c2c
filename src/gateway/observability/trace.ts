import { randomBytes, randomUUID } from 'node:crypto';

/** TraceContext is the W3C trace context the gateway forwards: the trace, this hop's span and flags. */
export interface TraceContext {
  traceId: string;
  /** The span id the gateway forwards as the parent of the next hop. */
  spanId: string;
  /** The caller's span id, when the request carried a traceparent. */
  parentSpanId?: string;
  flags: string;
  tracestate?: string;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

/**
 * IdSource hands out random trace/span ids and request ids. Random bytes are drawn in blocks because
 * one crypto call per id costs more than the rest of the edge work on the hot path.
 */
export class IdSource {
  private pool = '';
  private offset = 0;

  /** take returns `n` random bytes as hex, sliced from a pre-generated block of 4 KiB. */
  private take(n: number): string {
    const chars = n * 2;
    if (this.offset + chars > this.pool.length) {
      this.pool = randomBytes(4096).toString('hex');
      this.offset = 0;
    }
    const s = this.pool.slice(this.offset, this.offset + chars);
    this.offset += chars;
    return s;
  }

  spanId(): string {
    return this.take(8);
  }

  traceId(): string {
    return this.take(16);
  }

  /** requestId returns a random version-4 UUID (Node batches the randomness behind randomUUID). */
  requestId(): string {
    return randomUUID();
  }
}

/**
 * traceFrom continues the caller's trace when its `traceparent` is valid (version 00 rules, unknown
 * versions read by their first four fields) and starts a new sampled trace otherwise.
 */
export function traceFrom(traceparent: string | undefined, tracestate: string | undefined, ids: IdSource): TraceContext {
  if (traceparent) {
    const m = TRACEPARENT.exec(traceparent.trim().toLowerCase());
    if (m && m[1] !== 'ff' && m[2] !== ZERO_TRACE && m[3] !== ZERO_SPAN && (m[1] !== '00' || m[5] === undefined)) {
      return { traceId: m[2]!, parentSpanId: m[3]!, spanId: ids.spanId(), flags: m[4]!, tracestate };
    }
  }
  // A tracestate without a valid traceparent must be dropped (W3C trace context, section 3.3).
  return { traceId: ids.traceId(), spanId: ids.spanId(), flags: '01' };
}

/** formatTraceparent renders the header forwarded to the next hop. */
export function formatTraceparent(t: TraceContext): string {
  return `00-${t.traceId}-${t.spanId}-${t.flags}`;
}

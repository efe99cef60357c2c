/**
 * The small tracing interface the serving areas record spans through. It lives at the bottom layer
 * so that the gateway, the function invoker and admission can all use it; the OpenTelemetry SDK set-up
 * (exporters, sampler, configuration) is in `src/observability/tracing` and is injected by the
 * composition root. Without a Tracer nothing is recorded and nothing is allocated.
 */

/** SpanKind uses OpenTelemetry's numbering (INTERNAL 0, SERVER 1, CLIENT 2). */
export const SpanKind = { INTERNAL: 0, SERVER: 1, CLIENT: 2 } as const;
export type SpanKind = (typeof SpanKind)[keyof typeof SpanKind];

/** SpanAttributes are a span's attributes; undefined values are left out of the export. */
export type SpanAttributes = Record<string, string | number | boolean | undefined>;

/** SpanRecord is one finished span, as the serving code hands it to the Tracer. Times are epoch milliseconds (fractional). */
export interface SpanRecord {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: SpanKind;
  startMs: number;
  endMs: number;
  attributes: SpanAttributes;
  /** Set when the operation failed: the span's status becomes Error with this message. */
  error?: string;
}

/**
 * Tracer is what serving code needs: a sampling decision made once per trace, fresh ids, and a place
 * to hand finished spans. Implementations must not throw from `record`.
 */
export interface Tracer {
  /**
   * sample decides whether a trace is recorded. `parentSampled` is the caller's sampled flag when the
   * request continued a caller's trace, undefined for a new trace.
   */
  sample(traceId: string, parentSampled: boolean | undefined): boolean;
  traceId(): string;
  spanId(): string;
  record(span: SpanRecord): void;
}

/** epochMs converts a `performance.now()` reading to epoch milliseconds, keeping sub-millisecond precision. */
export function epochMs(perfNow: number): number {
  return performance.timeOrigin + perfNow;
}

/**
 * Span is a span in progress, for code off the per-request hot path (or already known to be sampled):
 * it is an object per span, so a hot path only makes one once the trace is known to be sampled.
 */
export class Span {
  readonly spanId: string;
  readonly attributes: SpanAttributes;
  private readonly startMs: number;
  private ended = false;

  constructor(
    private readonly tracer: Tracer,
    readonly traceId: string,
    private readonly parentSpanId: string | undefined,
    private readonly name: string,
    private readonly kind: SpanKind,
    attributes: SpanAttributes = {},
    spanId?: string,
    startMs?: number,
  ) {
    this.spanId = spanId ?? tracer.spanId();
    this.attributes = attributes;
    this.startMs = startMs ?? epochMs(performance.now());
  }

  /** end records the span once; later calls do nothing. */
  end(error?: string): void {
    if (this.ended) return;
    this.ended = true;
    this.tracer.record({ traceId: this.traceId, spanId: this.spanId, parentSpanId: this.parentSpanId, name: this.name, kind: this.kind, startMs: this.startMs, endMs: epochMs(performance.now()), attributes: this.attributes, error });
  }
}

/** rootSpan starts a span that begins a trace of its own (admission reviews, controller work), or undefined when the sampler says no. */
export function rootSpan(tracer: Tracer | undefined, name: string, kind: SpanKind, attributes?: SpanAttributes): Span | undefined {
  if (!tracer) return undefined;
  const traceId = tracer.traceId();
  if (!tracer.sample(traceId, undefined)) return undefined;
  return new Span(tracer, traceId, undefined, name, kind, attributes);
}

/**
 * parseTraceparent reads the `traceparent` Skiff's gateway forwards (version 00, fixed layout); it
 * returns undefined for anything else.
 */
export function parseTraceparent(tp: string | undefined): { traceId: string; spanId: string; sampled: boolean } | undefined {
  if (!tp || tp.length < 55 || tp.charCodeAt(2) !== 45 || tp.charCodeAt(35) !== 45 || tp.charCodeAt(52) !== 45) return undefined;
  const flags = parseInt(tp.slice(53, 55), 16);
  if (Number.isNaN(flags)) return undefined;
  return { traceId: tp.slice(3, 35), spanId: tp.slice(36, 52), sampled: (flags & 1) === 1 };
}

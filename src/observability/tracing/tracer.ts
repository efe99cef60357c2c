
import { type Attributes, type HrTime, type SpanContext, SpanStatusCode, TraceFlags } from '@opentelemetry/api';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { type Resource, resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, type ReadableSpan, SamplingDecision, type SpanExporter, TraceIdRatioBasedSampler } from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import type { Logger } from 'pino';

import { IdSource } from '../../gateway/index.js';
import type { SpanRecord, Tracer } from '../../util/tracing.js';

import type { SamplerConfig, TracingConfig } from './config.js';

/** hrTime turns epoch milliseconds into OpenTelemetry's [seconds, nanoseconds]. */
function hrTime(ms: number): HrTime {
  const s = Math.floor(ms / 1000);
  return [s, Math.min(999_999_999, Math.round((ms - s * 1000) * 1e6))];
}

/** decide builds the sampling decision from the configured sampler (OpenTelemetry's semantics). */
function decider(cfg: SamplerConfig): (traceId: string, parentSampled: boolean | undefined) => boolean {
  // The ratio test is the SDK's, so a trace id gets the same decision here as in other OpenTelemetry SDKs' ratio samplers.
  const ratio = new TraceIdRatioBasedSampler(cfg.ratio);
  const byRatio = (traceId: string) => ratio.shouldSample(undefined as never, traceId).decision === SamplingDecision.RECORD_AND_SAMPLED;
  switch (cfg.name) {
    case 'always_on':
      return () => true;
    case 'always_off':
      return () => false;
    case 'traceidratio':
      return (traceId) => byRatio(traceId);
    case 'parentbased_always_on':
      return (_t, parent) => parent ?? true;
    case 'parentbased_always_off':
      return (_t, parent) => parent ?? false;
    case 'parentbased_traceidratio':
      return (traceId, parent) => parent ?? byRatio(traceId);
  }
}

/**
 * RecordedSpan is a finished span in the shape the SDK's processors and exporters read. Spans are
 * recorded by Skiff's own code with ids it already made (the gateway forwards them in `traceparent`),
 * so they are built finished rather than through the SDK's Tracer.
 */
class RecordedSpan implements ReadableSpan {
  readonly name: string;
  readonly kind: number;
  readonly parentSpanContext?: SpanContext;
  readonly startTime: HrTime;
  readonly endTime: HrTime;
  readonly duration: HrTime;
  readonly status: { code: SpanStatusCode; message?: string };
  readonly attributes: Attributes;
  readonly links = [];
  readonly events = [];
  readonly ended = true;
  readonly droppedAttributesCount = 0;
  readonly droppedEventsCount = 0;
  readonly droppedLinksCount = 0;
  private readonly ctx: SpanContext;

  constructor(s: SpanRecord, readonly resource: Resource, readonly instrumentationScope: { name: string; version?: string }) {
    this.name = s.name;
    this.kind = s.kind;
    this.ctx = { traceId: s.traceId, spanId: s.spanId, traceFlags: TraceFlags.SAMPLED };
    if (s.parentSpanId) this.parentSpanContext = { traceId: s.traceId, spanId: s.parentSpanId, traceFlags: TraceFlags.SAMPLED, isRemote: false };
    this.startTime = hrTime(s.startMs);
    this.endTime = hrTime(Math.max(s.endMs, s.startMs));
    this.duration = hrTime(Math.max(0, s.endMs - s.startMs));
    this.status = s.error !== undefined ? { code: SpanStatusCode.ERROR, message: s.error } : { code: SpanStatusCode.UNSET };
    const attrs: Attributes = {};
    for (const k in s.attributes) {
      const v = s.attributes[k];
      if (v !== undefined) attrs[k] = v;
    }
    this.attributes = attrs;
  }

  spanContext(): SpanContext {
    return this.ctx;
  }
}

/** OtlpTracerOptions: the configuration, the version to report, and where to log export failures. */
export interface OtlpTracerOptions {
  config: TracingConfig;
  serviceVersion?: string;
  logger?: Logger;
  /** Replaces the OTLP exporter (tests). */
  exporter?: SpanExporter;
}

/**
 * OtlpTracer is Skiff's Tracer when an OTLP endpoint is configured: finished spans go to the SDK's
 * BatchSpanProcessor and from there, in batches, to the OTLP/HTTP exporter (protobuf or JSON).
 */
export class OtlpTracer implements Tracer {
  readonly sample: (traceId: string, parentSampled: boolean | undefined) => boolean;
  private readonly processor: BatchSpanProcessor;
  private readonly resource: Resource;
  private readonly scope: { name: string; version?: string };
  /** Ids come from the same pooled source as the gateway's: one crypto call per id costs more than recording the span. */
  private readonly ids = new IdSource();

  constructor(opts: OtlpTracerOptions) {
    const { config } = opts;
    this.sample = decider(config.sampler);
    this.resource = resourceFromAttributes({ [ATTR_SERVICE_NAME]: config.serviceName, ...(opts.serviceVersion ? { [ATTR_SERVICE_VERSION]: opts.serviceVersion } : {}) });
    this.scope = { name: 'skiff', version: opts.serviceVersion };
    const exporterConfig = { url: config.url, headers: config.headers };
    const exporter = opts.exporter ?? (config.protocol === 'http/json' ? new JsonExporter(exporterConfig) : new ProtoExporter(exporterConfig));
    this.processor = new BatchSpanProcessor(logged(exporter, opts.logger), { scheduledDelayMillis: config.batchDelayMs });
  }

  traceId(): string {
    return this.ids.traceId();
  }

  spanId(): string {
    return this.ids.spanId();
  }

  record(span: SpanRecord): void {
    try {
      this.processor.onEnd(new RecordedSpan(span, this.resource, this.scope));
    } catch {
      // A span that cannot be queued is dropped: tracing must never fail a request.
    }
  }

  /** flush sends every queued span now. */
  flush(): Promise<void> {
    return this.processor.forceFlush();
  }

  /** shutdown sends what is queued and stops the exporter (Skiff.stop, on SIGTERM). */
  shutdown(): Promise<void> {
    return this.processor.shutdown();
  }
}

/** logged reports failed exports (once per failure streak) instead of letting them pass silently. */
function logged(exporter: SpanExporter, logger: Logger | undefined): SpanExporter {
  let failing = false;
  return {
    export(spans, done) {
      exporter.export(spans, (result) => {
        if (result.code !== 0 && !failing) logger?.warn({ err: result.error?.message, spans: spans.length }, 'sending spans to the OTLP endpoint failed; later failures are not logged until one succeeds');
        failing = result.code !== 0;
        done(result);
      });
    },
    shutdown: () => exporter.shutdown(),
    forceFlush: () => exporter.forceFlush?.() ?? Promise.resolve(),
  };
}

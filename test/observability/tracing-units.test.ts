import pino from 'pino';
import { describe, expect, it } from 'vitest';

import { FunctionInvoker, FunctionLogs } from '../../src/functions/index.js';
import { OtlpTracer, tracingConfig, TracingConfigError } from '../../src/observability/tracing/index.js';
import type { InvokeResult } from '../../src/runtime/index.js';
import type { SpanRecord, Tracer } from '../../src/util/tracing.js';

const ENDPOINT = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' };

describe('tracingConfig (the standard OTEL_* variables and --otlp-endpoint)', () => {
  it('is off without an endpoint, and when the SDK is disabled', () => {
    expect(tracingConfig({})).toBeUndefined();
    expect(tracingConfig({ ...ENDPOINT, OTEL_SDK_DISABLED: 'true' })).toBeUndefined();
  });

  it('appends /v1/traces to the base endpoint, takes the traces endpoint as is, and lets the flag win', () => {
    expect(tracingConfig(ENDPOINT)).toMatchObject({ url: 'http://127.0.0.1:4318/v1/traces', protocol: 'http/protobuf', serviceName: 'skiff', sampler: { name: 'parentbased_always_on', ratio: 1 } });
    expect(tracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/otlp/' })!.url).toBe('http://collector:4318/otlp/v1/traces');
    expect(tracingConfig({ ...ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://tempo.example/api/traces' })!.url).toBe('https://tempo.example/api/traces');
    expect(tracingConfig({ ...ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://tempo.example/x' }, 'http://10.0.0.1:4318')!.url).toBe('http://10.0.0.1:4318/v1/traces');
    expect(tracingConfig({ OTEL_SDK_DISABLED: 'true' }, 'http://10.0.0.1:4318')).toBeDefined();
  });

  it('reads the protocol, headers, sampler and service name', () => {
    const c = tracingConfig({ ...ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json', OTEL_EXPORTER_OTLP_HEADERS: 'Authorization=Bearer%20abc, x-team=blue', OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.25', OTEL_SERVICE_NAME: 'edge' })!;
    expect(c).toMatchObject({ protocol: 'http/json', headers: { authorization: 'Bearer abc', 'x-team': 'blue' }, sampler: { name: 'parentbased_traceidratio', ratio: 0.25 }, serviceName: 'edge' });
  });

  it.each([
    [{ OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }, 'OTEL_EXPORTER_OTLP_PROTOCOL', /grpc is not supported/],
    [{ OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'thrift' }, 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', /http\/protobuf or http\/json/],
    [{ OTEL_TRACES_SAMPLER: 'sometimes' }, 'OTEL_TRACES_SAMPLER', /must be one of always_on/],
    [{ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '2' }, 'OTEL_TRACES_SAMPLER_ARG', /from 0 to 1/],
    [{ OTEL_EXPORTER_OTLP_HEADERS: 'novalue' }, 'OTEL_EXPORTER_OTLP_HEADERS', /name=value/],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'localhost:4318' }, 'OTEL_EXPORTER_OTLP_ENDPOINT', /http:\/\/ or https:\/\//],
    [{ OTEL_SDK_DISABLED: 'yes' }, 'OTEL_SDK_DISABLED', /true or false/],
  ])('refuses %o naming the variable', (env, variable, message) => {
    let err: unknown;
    try {
      tracingConfig({ ...ENDPOINT, ...env });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TracingConfigError);
    expect((err as TracingConfigError).code).toBe('tracing_config_error');
    expect((err as Error).message.startsWith(`${variable}: `)).toBe(true);
    expect((err as Error).message).toMatch(message);
  });

  it('reports a bad value even when no endpoint turns tracing on', () => {
    expect(() => tracingConfig({ OTEL_TRACES_SAMPLER: 'bogus' })).toThrow(/OTEL_TRACES_SAMPLER/);
  });
});

describe('OtlpTracer sampling', () => {
  const tracer = (name: string, arg?: string) => {
    const t = new OtlpTracer({ config: tracingConfig({ ...ENDPOINT, OTEL_TRACES_SAMPLER: name, ...(arg ? { OTEL_TRACES_SAMPLER_ARG: arg } : {}) })! });
    void t.shutdown();
    return t;
  };
  const ids = (n: number, t: OtlpTracer) => Array.from({ length: n }, () => t.traceId());

  it('keeps no root trace at ratio 0 and every one at 1, and honours the caller with parent-based samplers', () => {
    const zero = tracer('parentbased_traceidratio', '0');
    expect(ids(200, zero).some((id) => zero.sample(id, undefined))).toBe(false);
    expect(zero.sample(zero.traceId(), true)).toBe(true);
    const one = tracer('parentbased_traceidratio', '1');
    expect(ids(200, one).every((id) => one.sample(id, undefined))).toBe(true);
    expect(one.sample(one.traceId(), false)).toBe(false);
  });

  it('samples about the ratio of root traces, and the same trace id the same way every time', () => {
    const t = tracer('traceidratio', '0.5');
    const list = ids(2000, t);
    const kept = list.filter((id) => t.sample(id, undefined)).length;
    expect(kept).toBeGreaterThan(800);
    expect(kept).toBeLessThan(1200);
    expect(list.map((id) => t.sample(id, undefined))).toEqual(list.map((id) => t.sample(id, true)));
  });

  it('follows always_on, always_off and parentbased_always_off', () => {
    expect(tracer('always_on').sample('a'.repeat(32), false)).toBe(true);
    expect(tracer('always_off').sample('a'.repeat(32), true)).toBe(false);
    const pOff = tracer('parentbased_always_off');
    expect(pOff.sample('a'.repeat(32), undefined)).toBe(false);
    expect(pOff.sample('a'.repeat(32), true)).toBe(true);
  });
});

describe('function log lines and run spans', () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  const ok = (stderr: string): InvokeResult => ({ exitCode: 0, stdout: enc('Content-Type: text/plain\n\nok'), stderr: enc(stderr), durationMs: 0 });
  const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
  const req = (flags: string) => ({ method: 'GET', path: '/x', rawQuery: '', headers: {}, body: new Uint8Array(), remoteAddress: '127.0.0.1', requestId: 'r1', traceparent: `00-${TRACE}-00f067aa0ba902b7-${flags}` });

  function setup(tracer?: Tracer) {
    const logs = new FunctionLogs();
    const inv = new FunctionInvoker({ tryInline: () => ({ ...ok('inline line\n'), warm: true, fuel: 140 }), invoke: async () => ({ ...ok('worker line\n'), warm: false }) }, logs, pino({ level: 'silent' }), { name: '127.0.0.1', port: '8080' });
    inv.set({ namespace: 'default', name: 'f', digest: 'sha256:aa', spec: { module: '/f.wasm' } });
    inv.useTracer(tracer);
    return { inv, logs };
  }

  it('tags lines with the gateway span when the trace is not recorded', () => {
    const { inv, logs } = setup();
    inv.tryInline('default', 'f', req('01'));
    expect(logs.tail('default', 'f', 1)[0]).toMatchObject({ requestId: 'r1', line: 'inline line', trace_id: TRACE, span_id: '00f067aa0ba902b7' });
  });

  it('records a run span under the gateway span and tags the lines with it when sampled', async () => {
    const spans: SpanRecord[] = [];
    let n = 0;
    const tracer: Tracer = { sample: () => true, traceId: () => 'f'.repeat(32), spanId: () => `${++n}`.padStart(16, '0'), record: (s) => spans.push(s) };
    const { inv, logs } = setup(tracer);
    inv.tryInline('default', 'f', req('01'));
    await inv.invoke('default', 'f', req('01'));
    expect(spans.map((s) => [s.name, s.parentSpanId, s.attributes['skiff.function.mode'], s.attributes['faas.coldstart'], s.attributes['skiff.function.fuel']])).toEqual([
      ['function default/f', '00f067aa0ba902b7', 'inline', false, 140],
      ['function default/f', '00f067aa0ba902b7', 'worker', true, undefined],
    ]);
    expect(logs.tail('default', 'f', 2).map((l) => [l.line, l.trace_id, l.span_id])).toEqual([
      ['inline line', TRACE, spans[0]!.spanId],
      ['worker line', TRACE, spans[1]!.spanId],
    ]);
    // An unsampled request records nothing.
    inv.tryInline('default', 'f', req('00'));
    expect(spans).toHaveLength(2);
  });
});

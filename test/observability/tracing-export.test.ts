import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { OTLP_KIND, type OtlpReceiver, startOtlpReceiver } from '../helpers/otlp-receiver.js';
import { BIN, REPO, type RunningSkiff, startSkiff } from '../helpers/skiff-process.js';

let otlp: OtlpReceiver;
let s: RunningSkiff | undefined;
const dirs: string[] = [];

beforeAll(async () => {
  otlp = await startOtlpReceiver();
});

afterEach(async () => {
  await s?.stop();
  s = undefined;
  otlp.spans.length = 0;
  otlp.requests.length = 0;
});

afterAll(async () => {
  await otlp.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function dataDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'skiff-otlp-'));
  dirs.push(d);
  return d;
}

describe('OTLP export settings of skiff up', () => {
  it('sends OTLP/JSON with the configured headers, and flushes queued spans on SIGTERM', async () => {
    // A batch delay of a minute: the spans can only arrive in time through the flush on SIGTERM.
    s = await startSkiff({ demo: true, dataDir: dataDir(), args: ['--otlp-endpoint', otlp.url], env: { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_EXPORTER_OTLP_HEADERS: 'x-tenant=blue', OTEL_BSP_SCHEDULE_DELAY: '60000' } });
    await expect.poll(async () => (await fetch(`${s!.gateway}/hello`)).status, { timeout: 15_000 }).toBe(200);
    expect(otlp.spans.filter((x) => x.attributes['url.path'] === '/hello')).toEqual([]);
    expect(await s.stop('SIGTERM')).toBe(0);
    s = undefined;
    const server = otlp.spans.find((x) => x.kind === OTLP_KIND.SERVER && x.attributes['url.path'] === '/hello');
    expect(server).toBeDefined();
    expect(server!.attributes['http.response.status_code']).toBe(200);
    expect(otlp.spans.some((x) => x.name === 'function default/hello' && x.parentSpanId === server!.spanId)).toBe(true);
    expect(otlp.requests.every((r) => r.path === '/v1/traces' && r.contentType.startsWith('application/json') && r.headers['x-tenant'] === 'blue')).toBe(true);
  });

  it('exports no root trace at ratio 0 but keeps a sampled caller’s trace', async () => {
    s = await startSkiff({ demo: true, dataDir: dataDir(), env: { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0', OTEL_BSP_SCHEDULE_DELAY: '100' } });
    await expect.poll(async () => (await fetch(`${s!.gateway}/hello`)).status, { timeout: 15_000 }).toBe(200);
    for (let i = 0; i < 20; i++) {
      const r = await fetch(`${s.gateway}/hello`);
      await r.arrayBuffer();
      expect(r.status).toBe(200);
    }
    const caller = '00-5bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    expect((await fetch(`${s.gateway}/hello`, { headers: { traceparent: caller } })).status).toBe(200);
    await expect.poll(() => otlp.spans.some((x) => x.traceId === '5bf92f3577b34da6a3ce929d0e0e4736' && x.kind === OTLP_KIND.SERVER), { timeout: 10_000 }).toBe(true);
    // Everything exported belongs to the sampled caller's trace (admission reviews are roots too: none).
    expect(new Set(otlp.spans.map((x) => x.traceId))).toEqual(new Set(['5bf92f3577b34da6a3ce929d0e0e4736']));
    expect(otlp.spans.find((x) => x.kind === OTLP_KIND.SERVER)!.parentSpanId).toBe('00f067aa0ba902b7');
  });

  it('refuses grpc at start with exit code 2, naming the variable', async () => {
    const child = spawn(process.execPath, [BIN, 'up', '--data-dir', dataDir(), '--api', '127.0.0.1:0', '--gateway', '127.0.0.1:0'], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }, timeout: 20_000 });
    let err = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    expect(code).toBe(2);
    expect(err).toMatch(/OTEL_EXPORTER_OTLP_PROTOCOL: grpc is not supported/);
  });
});

import http from 'node:http';
import type { AddressInfo } from 'node:net';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { guardedFetchJson, readMetricsApi, TriggerError } from '../../src/autoscaling/triggers/index.js';
import { UpstreamGuard, UpstreamRefusedError } from '../../src/security/upstream-guard.js';

/** A loopback server whose answers the tests pick by path. */
function startServer(): Promise<{ server: http.Server; port: number; hung: Set<http.ServerResponse> }> {
  const hung = new Set<http.ServerResponse>();
  const server = http.createServer((req, res) => {
    const send = (status: number, body: string) => res.writeHead(status, { 'content-type': 'application/json' }).end(body);
    switch (req.url) {
      case '/queue':
        return send(200, JSON.stringify({ stats: { queue: 42, items: [{ n: 1 }, { n: '250m' }], label: 'busy', none: null } }));
      case '/slow':
        hung.add(res);
        res.on('close', () => hung.delete(res));
        return;
      case '/huge': {
        // No content-length: the size limit must hold while streaming.
        res.writeHead(200, { 'content-type': 'application/json' });
        const chunk = Buffer.alloc(64 * 1024, 0x20);
        let sent = 0;
        const pump = () => {
          while (sent < 8 * 1024 * 1024) {
            sent += chunk.length;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          res.end('1');
        };
        res.on('error', () => undefined);
        return pump();
      }
      case '/bad-json':
        return send(200, '{"depth": 4,');
      case '/error':
        return send(503, '{}');
      default:
        return send(404, '{}');
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as AddressInfo).port, hung })));
}

describe('the metrics-api trigger', () => {
  let srv: Awaited<ReturnType<typeof startServer>>;
  let base: string;
  let fetchJson: ReturnType<typeof guardedFetchJson>;

  beforeAll(async () => {
    srv = await startServer();
    base = `http://127.0.0.1:${srv.port}`;
    fetchJson = guardedFetchJson(UpstreamGuard.from([`127.0.0.1:${srv.port}`]), { maxBytes: 64 * 1024 });
  });
  afterAll(async () => {
    for (const res of srv.hung) res.destroy();
    srv.server.closeAllConnections();
    await new Promise((r) => srv.server.close(r));
  });

  const read = (path: string, valueLocation: string, timeoutMs = 2000) => readMetricsApi({ url: base + path, valueLocation, targetValue: '10' }, { fetchJson, timeoutMs });
  const failure = async (p: Promise<unknown>) => {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    return err as TriggerError;
  };

  it('reads the number at a dotted path, through arrays and quantity strings', async () => {
    expect(await read('/queue', 'stats.queue')).toBe(42);
    expect(await read('/queue', 'stats.items.0.n')).toBe(1);
    expect(await read('/queue', 'stats.items.1.n')).toBe(0.25);
  });

  it('names the location and what it found when the path misses or the value is no number', async () => {
    const missing = await failure(read('/queue', 'stats.depth'));
    expect(missing).toBeInstanceOf(TriggerError);
    expect(missing.code).toBe('trigger_value');
    expect(missing.field).toBe('valueLocation');
    expect(missing.message).toContain('stats.depth');
    expect(missing.message).toContain('"queue"');
    const index = await failure(read('/queue', 'stats.items.5.n'));
    expect(index.message).toMatch(/stats\.items has 2 entries, no index 5/);
    const text = await failure(read('/queue', 'stats.label'));
    expect(text.message).toMatch(/found string "busy", not a number/);
    expect((await failure(read('/queue', 'stats.none'))).message).toMatch(/found null/);
    expect((await failure(read('/queue', 'stats.queue.x'))).message).toMatch(/stats\.queue is number 42/);
    expect((await failure(read('/queue', 'stats'))).message).toMatch(/found an object/);
  });

  it('refuses bad metadata before fetching', async () => {
    const calls: string[] = [];
    const spy = async (url: string) => {
      calls.push(url);
      return {};
    };
    const meta = { url: base + '/queue', valueLocation: 'a' };
    for (const [bad, field] of [
      [{ url: 'not a url' }, 'url'],
      [{ url: 'ftp://h/x' }, 'url'],
      [{ valueLocation: '' }, 'valueLocation'],
      [{ valueLocation: 'a..b' }, 'valueLocation'],
      [{ valueLocation: Array(40).fill('a').join('.') }, 'valueLocation'],
      [{ method: 'POST' }, 'method'],
    ] as const) {
      const err = await failure(readMetricsApi({ ...meta, ...bad }, { fetchJson: spy, timeoutMs: 1000 }));
      expect([err.code, err.field]).toEqual(['trigger_metadata', field]);
    }
    expect(calls).toEqual([]);
  });

  it('stops a slow answer at the timeout, even with a fetch that ignores its signal', async () => {
    const t0 = performance.now();
    const slow = await failure(read('/slow', 'depth', 200));
    expect(slow.code).toBe('trigger_timeout');
    expect(performance.now() - t0).toBeLessThan(1500);
    await expect.poll(() => srv.hung.size, { timeout: 2000 }).toBe(0);
    const deaf = await failure(readMetricsApi({ url: base + '/queue', valueLocation: 'x' }, { fetchJson: () => new Promise(() => undefined), timeoutMs: 100 }));
    expect(deaf.code).toBe('trigger_timeout');
  });

  it('bounds the answer size and refuses bad JSON and error statuses', async () => {
    const huge = await failure(read('/huge', 'x'));
    expect(huge.code).toBe('trigger_too_large');
    const bad = await failure(read('/bad-json', 'depth'));
    expect(bad.code).toBe('trigger_bad_json');
    const status = await failure(read('/error', 'depth'));
    expect(status.code).toBe('trigger_fetch');
    expect(status.message).toContain('503');
  });

  it('goes through the upstream guard: loopback and metadata addresses are refused unless allowed', async () => {
    const strict = guardedFetchJson(UpstreamGuard.from([]));
    const loop = await failure(readMetricsApi({ url: base + '/queue', valueLocation: 'stats.queue' }, { fetchJson: strict, timeoutMs: 2000 }));
    expect(loop).toBeInstanceOf(UpstreamRefusedError);
    expect(loop.message).toContain('--allow-upstream');
    const byName = await failure(readMetricsApi({ url: `http://localhost:${srv.port}/queue`, valueLocation: 'stats.queue' }, { fetchJson: strict, timeoutMs: 2000 }));
    expect(byName).toBeInstanceOf(UpstreamRefusedError);
    const metadata = await failure(readMetricsApi({ url: 'http://169.254.169.254/latest/meta-data', valueLocation: 'x' }, { fetchJson: strict, timeoutMs: 2000 }));
    expect(metadata).toBeInstanceOf(UpstreamRefusedError);
    // Allowed for one port only.
    const other = guardedFetchJson(UpstreamGuard.from([`127.0.0.1:${srv.port + 1 > 65535 ? 1 : srv.port + 1}`]));
    expect(await failure(readMetricsApi({ url: base + '/queue', valueLocation: 'stats.queue' }, { fetchJson: other, timeoutMs: 2000 }))).toBeInstanceOf(UpstreamRefusedError);
  });
});

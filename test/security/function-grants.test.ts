import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { cli, type RunningSkiff,startSkiff, waitFor } from '../helpers/skiff-process.js';
import { wat } from '../helpers/wat.js';

/**
 * Probes for issue 11, point 1 and the function maxima: what a Function may mount and ask for, tried
 * against a real `skiff up --demo` over loopback as a client holding the API token would.
 */

/** A WAGI guest that prints the first KiB of `secret.txt` from its first preopened directory (nothing if it cannot open it). */
const READER = `(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 1024) "Content-Type: text/plain\\0a\\0a")
  (data (i32.const 2048) "secret.txt")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 1024))
    (i32.store (i32.const 4) (i32.const 26))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))
    (if (i32.ne (call $path_open (i32.const 3) (i32.const 0) (i32.const 2048) (i32.const 10) (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 20)) (i32.const 0))
      (then (return)))
    (i32.store (i32.const 32) (i32.const 4096))
    (i32.store (i32.const 36) (i32.const 1024))
    (drop (call $fd_read (i32.load (i32.const 20)) (i32.const 32) (i32.const 1) (i32.const 40)))
    (i32.store (i32.const 36) (i32.load (i32.const 40)))
    (drop (call $fd_write (i32.const 1) (i32.const 32) (i32.const 1) (i32.const 44)))))`;

const base = mkdtempSync(join(tmpdir(), 'skiff-grants-'));
const granted = join(base, 'granted');
const outside = join(base, 'outside');
// Modules live in a directory granted across the restart below; only the mounted one loses its grant.
const mods = join(base, 'mods');
let s: RunningSkiff;
let token: string;

const fnUrl = (name = '') => `${s.api}/apis/skiff.dev/v1/namespaces/default/functions${name ? `/${name}` : ''}`;
const headers = () => ({ authorization: `Bearer ${token}`, 'content-type': 'application/json' });

function fn(name: string, spec: Record<string, unknown>): Record<string, unknown> {
  return { apiVersion: 'skiff.dev/v1', kind: 'Function', metadata: { name, namespace: 'default' }, spec: { module: join(mods, 'reader.wasm'), ...spec } };
}

async function post(obj: Record<string, unknown>): Promise<{ status: number; body: any }> {
  const r = await fetch(fnUrl(), { method: 'POST', headers: headers(), body: JSON.stringify(obj), signal: AbortSignal.timeout(10_000) });
  return { status: r.status, body: await r.json() };
}

async function exists(name: string): Promise<boolean> {
  const r = await fetch(fnUrl(name), { headers: headers(), signal: AbortSignal.timeout(10_000) });
  await r.arrayBuffer();
  return r.status === 200;
}

async function ready(name: string): Promise<{ status: string; reason: string; message: string } | undefined> {
  const r = await fetch(fnUrl(name), { headers: headers(), signal: AbortSignal.timeout(10_000) });
  const o = (await r.json()) as any;
  return o.status?.conditions?.find((c: any) => c.type === 'Ready');
}

const env = () => ({ SKIFF_DATA_DIR: s.dataDir, SKIFF_TOKEN: token });

beforeAll(async () => {
  mkdirSync(granted);
  mkdirSync(outside);
  mkdirSync(mods);
  writeFileSync(join(granted, 'secret.txt'), 'granted-content');
  writeFileSync(join(outside, 'secret.txt'), 'HOST-SECRET');
  writeFileSync(join(mods, 'reader.wasm'), await wat(READER));
  symlinkSync(outside, join(granted, 'escape'));
  s = await startSkiff({ demo: true, args: ['--allow-host-dir', granted, '--allow-host-dir', mods, '--max-function-timeout', '30s'] });
  token = readFileSync(join(s.dataDir, 'token'), 'utf8').trim();
}, 30_000);

afterAll(async () => {
  await s?.stop();
});

describe('what a Function may mount', () => {
  it('refuses / with 422 naming the field and --allow-host-dir', async () => {
    const r = await post(fn('root', { capabilities: { dirs: [{ host: '/', guest: '/host' }] } }));
    expect(r.status).toBe(422);
    expect(r.body.reason).toBe('Invalid');
    expect(r.body.message).toContain('spec.capabilities.dirs[0].host');
    expect(r.body.message).toContain('--allow-host-dir');
    expect(r.body.details.causes[0].field).toBe('spec.capabilities.dirs[0].host');
    expect(await exists('root')).toBe(false);
  });

  it('refuses directories outside the grants, by path, by .. and through a symlink', async () => {
    for (const [i, host] of [outside, join(granted, '..', 'outside'), join(granted, 'escape'), '/etc', 'relative/dir'].entries()) {
      const name = `outside-${i}`;
      const r = await post(fn(name, { capabilities: { dirs: [{ host: granted, guest: '/ok' }, { host, guest: '/data' }] } }));
      expect(r.status, host).toBe(422);
      expect(r.body.message).toContain('spec.capabilities.dirs[1].host');
      expect(r.body.message).toContain('--allow-host-dir');
      expect(r.body.message).not.toContain('spec.capabilities.dirs[0].host');
      expect(await exists(name)).toBe(false);
    }
    // A dry run is refused the same way.
    const r = await fetch(`${fnUrl()}?dryRun=All`, { method: 'POST', headers: headers(), body: JSON.stringify(fn('dry', { capabilities: { dirs: [{ host: '/', guest: '/' }] } })) });
    expect(r.status).toBe(422);
  });

  it('lets a guest read a file inside a granted directory', async () => {
    const manifest = `apiVersion: skiff.dev/v1
kind: Function
metadata: { name: reader }
spec:
  module: ${join(mods, 'reader.wasm')}
  capabilities:
    dirs: [{ host: ${granted}, guest: /data, readOnly: true }]
---
apiVersion: skiff.dev/v1
kind: Route
metadata: { name: reader }
spec:
  http:
    - match: [{ uri: { prefix: /reader } }]
      route: [{ destination: { function: reader } }]
`;
    const applied = await cli(['apply', '-f', '-'], { server: s.api, input: manifest, env: env() });
    expect(applied.stderr).toBe('');
    expect(applied.code).toBe(0);
    const body = await waitFor(async () => {
      const r = await fetch(`${s.gateway}/reader`, { signal: AbortSignal.timeout(5000) });
      const text = await r.text();
      return r.status === 200 && text.includes('granted-content') ? text : undefined;
    }, 'the reader serving the granted file', 15_000);
    expect(body).toBe('granted-content');
  });
});

describe('operator maxima on function limits', () => {
  it('refuses limits above the maxima with 422 naming the field and the flag', async () => {
    const cases: Array<[Record<string, unknown>, string, string]> = [
      [{ memory: '2Gi' }, 'spec.limits.memory', '--max-function-memory'],
      [{ timeout: '1m' }, 'spec.limits.timeout', '--max-function-timeout'],
      [{ concurrency: 100_000 }, 'spec.limits.concurrency', '--max-function-concurrency'],
      [{ queue: 1_000_000 }, 'spec.limits.queue', '--max-function-queue'],
      [{ output: '1Gi' }, 'spec.limits.output', '--max-function-output'],
    ];
    for (const [i, [limits, field, flag]] of cases.entries()) {
      const r = await post(fn(`big-${i}`, { limits }));
      expect(r.status, field).toBe(422);
      expect(r.body.message).toContain(field);
      expect(r.body.message).toContain(flag);
      expect(await exists(`big-${i}`)).toBe(false);
    }
  });

  it('accepts limits at the maxima', async () => {
    const r = await post(fn('at-max', { limits: { timeout: '30s', memory: '1Gi' } }));
    expect(r.status).toBe(201);
  });
});

describe('a server restarted with fewer grants', () => {
  it('does not mount a stored Function outside them: Ready=False naming the flag, requests get 503', async () => {
    expect(await s.stop()).toBe(0);
    s = await startSkiff({ dataDir: s.dataDir, demo: true, args: ['--allow-host-dir', mods, '--max-function-timeout', '10s'] });
    const c = (await waitFor(async () => {
      const r = await ready('reader');
      return r?.status === 'False' ? r : undefined;
    }, 'reader reported not ready', 15_000))!;
    expect(c.reason).toBe('HostDirNotAllowed');
    expect(c.message).toContain('--allow-host-dir');
    expect(c.message).not.toContain('granted-content');
    const r = await fetch(`${s.gateway}/reader`, { signal: AbortSignal.timeout(5000) });
    expect(r.status).toBe(503);
    expect(await r.text()).not.toContain('granted-content');
    // The Function stored under a larger --max-function-timeout is not served now either.
    const big = (await waitFor(async () => {
      const x = await ready('at-max');
      return x?.status === 'False' ? x : undefined;
    }, 'at-max reported not ready', 15_000))!;
    expect(big.message).toContain('--max-function-timeout');
  }, 40_000);
});

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, renameSync,writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll,beforeAll, describe, expect, it } from 'vitest';

import { apiFetch, cli, REPO, type RunningSkiff,startSkiff, waitFor } from '../helpers/skiff-process.js';
import { hasBinary } from '../helpers/system-deps.js';
import { wagiWat,wat } from '../helpers/wat.js';

let s: RunningSkiff;
let dir: string;

function manifest(name: string, module: string, extra = ''): string {
  return `apiVersion: skiff.dev/v1
kind: Function
metadata: { name: ${name} }
spec:
  module: ${module}
${extra}---
apiVersion: skiff.dev/v1
kind: Route
metadata: { name: ${name} }
spec:
  http:
    - match: [{ uri: { prefix: /${name} } }]
      route: [{ destination: { function: ${name} } }]
`;
}

async function fnStatus(name: string): Promise<any> {
  const r = await cli(['get', 'fn', name, '-o', 'json'], { skiff: s });
  return r.code === 0 ? JSON.parse(r.stdout).status : undefined;
}

async function ready(name: string): Promise<{ status: string; reason: string; message: string } | undefined> {
  return (await fnStatus(name))?.conditions?.find((c: any) => c.type === 'Ready');
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'skiff-fn-'));
  // The 'granted' Function mounts this directory, and the URL-source test serves modules from a
  // loopback server of its own: the operator grants both.
  s = await startSkiff({ args: ['--allow-host-dir', dir, '--allow-upstream', '127.0.0.1/8'] });
  copyFileSync(join(REPO, 'examples', 'hello', 'hello.wasm'), join(dir, 'hello.wasm'));
});

afterAll(async () => {
  expect(await s.stop()).toBe(0);
});

describe('functions end to end through the CLI', () => {
  it('applies, serves, reports, logs, rolls out a rebuilt module and deletes', async () => {
    writeFileSync(join(dir, 'app.yaml'), manifest('app', './hello.wasm'));
    const apply = await cli(['apply', '-f', join(dir, 'app.yaml')], { skiff: s });
    expect(apply.stderr).toBe('');
    expect(apply.stdout).toBe('function.skiff.dev/app created\nroute.skiff.dev/app created\n');
    await waitFor(async () => (await ready('app'))?.status === 'True', 'app ready');
    const res = await fetch(`${s.gateway}/app/x?y=1`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('path:   /app/x');
    const rid = res.headers.get('x-request-id')!;

    expect((await cli(['apply', '-f', join(dir, 'app.yaml')], { skiff: s })).stdout).toBe('function.skiff.dev/app unchanged\nroute.skiff.dev/app unchanged\n');

    const logs = await cli(['logs', 'app'], { skiff: s });
    expect(logs.code).toBe(0);
    expect(logs.stdout).toMatch(new RegExp(`^\\S+Z ${rid} hello: served GET /app/x$`, 'm'));

    // Rebuild the module in place (a new file renamed over the old, as build tools do) and apply again: it rolls out.
    writeFileSync(join(dir, 'next.wasm'), await wat(wagiWat('Content-Type: text/plain\n\nversion two\n')));
    renameSync(join(dir, 'next.wasm'), join(dir, 'hello.wasm'));
    expect((await cli(['apply', '-f', join(dir, 'app.yaml')], { server: s.api })).stdout).toBe('function.skiff.dev/app configured\nroute.skiff.dev/app unchanged\n');
    await waitFor(async () => (await (await fetch(`${s.gateway}/app`)).text()) === 'version two\n', 'rollout of the rebuilt module');
    const desc = await cli(['describe', 'function', 'app'], { skiff: s });
    expect(desc.stdout).toMatch(/Ready\s+True\s+ModuleLoaded/);
    expect(desc.stdout).toMatch(/Normal\s+ModuleUpdated/);
    expect(desc.stdout).toMatch(/Normal\s+ModuleLoaded/);

    const del = await cli(['delete', 'fn', 'app'], { skiff: s });
    expect(del.stdout).toBe('function.skiff.dev/app deleted\n');
    expect(del.stderr).toMatch(/Warning: function app is used by route app/);
    await waitFor(async () => (await fetch(`${s.gateway}/app`)).status === 503, '503 after delete');
    const routeReady = await waitFor(async () => {
      const r = JSON.parse((await cli(['get', 'route', 'app', '-o', 'json'], { skiff: s })).stdout);
      const c = r.status?.conditions?.find((x: any) => x.type === 'Ready');
      return c?.reason === 'FunctionNotFound' ? c : undefined;
    }, 'route reports the missing function');
    expect(routeReady.message).toMatch(/default\/app does not exist/);
    expect((await cli(['delete', '-f', join(dir, 'app.yaml'), '--ignore-not-found'], { skiff: s })).code).toBe(0);
  }, 60_000);

  it('loads modules from http URLs and checks their digest', async () => {
    const bytes = await wat(wagiWat('Content-Type: text/plain\n\nremote\n'));
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    const srv = http.createServer((_q, r) => r.end(bytes));
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(srv.address() as { port: number }).port}/m.wasm`;
    try {
      writeFileSync(join(dir, 'remote.yaml'), manifest('remote', url, `  digest: ${digest}\n`));
      expect((await cli(['apply', '-f', join(dir, 'remote.yaml')], { skiff: s })).code).toBe(0);
      await waitFor(async () => (await ready('remote'))?.status === 'True', 'remote ready');
      expect(await (await fetch(`${s.gateway}/remote`)).text()).toBe('remote\n');
      writeFileSync(join(dir, 'bad-digest.yaml'), manifest('baddigest', url, `  digest: sha256:${'0'.repeat(64)}\n`));
      expect((await cli(['apply', '-f', join(dir, 'bad-digest.yaml')], { skiff: s })).code).toBe(0);
      const c = (await waitFor(async () => ((await ready("baddigest"))?.reason === "DigestMismatch" ? ready("baddigest") : undefined), "digest mismatch reported"))!;
      expect(c!.message).toContain(digest);
      const res = await fetch(`${s.gateway}/baddigest`);
      expect(res.status).toBe(503);
      expect(await res.text()).not.toContain('sha256');
    } finally {
      srv.close();
    }
  });
});

describe.skipIf(!hasBinary('clang'))('a function written in C', async () => {
  it('builds with clang for wasm32-wasi and serves', async () => {
    const out = join(dir, 'c');
    mkdirSync(out, { recursive: true });
    copyFileSync(join(REPO, 'examples', 'hello-c', 'hello.c'), join(out, 'hello.c'));
    copyFileSync(join(REPO, 'examples', 'hello-c', 'function.yaml'), join(out, 'function.yaml'));
    execFileSync('clang', ['--target=wasm32-wasi', '--sysroot=/usr', '-O2', '-o', join(out, 'hello.wasm'), join(out, 'hello.c')]);
    expect((await cli(['apply', '-f', join(out, 'function.yaml')], { skiff: s })).code).toBe(0);
    await waitFor(async () => (await ready('hello-c'))?.status === 'True', 'hello-c ready');
    const res = await fetch(`${s.gateway}/hello-c/x`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('Hello from C on Skiff!\nmethod: GET\npath: /hello-c/x\n');
    expect((await cli(['logs', 'hello-c'], { skiff: s })).stdout).toMatch(/served GET \/hello-c\/x/);
  });
});

describe('bad input', async () => {
  it('names file, line and column of malformed YAML and applies nothing', async () => {
    writeFileSync(join(dir, 'broken.yaml'), 'apiVersion: skiff.dev/v1\nkind: Function\nmetadata:\n  name: [oops\n');
    const r = await cli(['apply', '-f', join(dir, 'broken.yaml')], { skiff: s });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/broken\.yaml:\d+:\d+: /);
  });

  it('refuses an unknown kind with the list of known ones', async () => {
    const r = await cli(['apply', '-f', '-'], { skiff: s, input: 'apiVersion: skiff.dev/v1\nkind: Gizmo\nmetadata: {name: g}\n' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/<stdin>:1: unknown kind "Gizmo"/);
  });

  it('lists every missing or mistyped field', async () => {
    const r = await cli(['apply', '-f', '-'], { skiff: s, input: 'apiVersion: skiff.dev/v1\nkind: Function\nmetadata: {name: f1}\nspec:\n  modul: x.wasm\n  args: 3\n  limits: {concurrency: "many"}\n' });
    expect(r.code).toBe(1);
    for (const f of ['spec.module: Required value', 'spec.modul: unknown field', 'spec.args: must be of type array', 'spec.limits.concurrency: must be of type integer']) expect(r.stderr).toContain(f);
  });

  it('refuses two objects with the same name in one apply before sending anything', async () => {
    const doc = 'apiVersion: skiff.dev/v1\nkind: Function\nmetadata: {name: twin}\nspec: {module: /x.wasm}\n';
    const r = await cli(['apply', '-f', '-'], { skiff: s, input: `${doc}---\n${doc}` });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/<stdin>:6: Function "twin" in namespace default is also defined at <stdin>:1/);
    expect((await cli(['get', 'fn', 'twin'], { skiff: s })).code).toBe(1);
  });

  it('reports a missing module file before sending anything', async () => {
    writeFileSync(join(dir, 'missing.yaml'), manifest('missing', './nope.wasm'));
    const r = await cli(['apply', '-f', join(dir, 'missing.yaml')], { skiff: s });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/missing\.yaml:1: spec\.module: .*nope\.wasm does not exist/);
    expect((await cli(['get', 'fn', 'missing'], { skiff: s })).code).toBe(1);
    expect((await cli(['get', 'route', 'missing'], { skiff: s })).code).toBe(1);
    expect((await fetch(`${s.gateway}/missing`)).status).toBe(404);
  });

  it('reports a file that is not WebAssembly', async () => {
    writeFileSync(join(dir, 'text.wasm'), 'this is not wasm');
    writeFileSync(join(dir, 'notwasm.yaml'), manifest('notwasm', './text.wasm'));
    await cli(['apply', '-f', join(dir, 'notwasm.yaml')], { skiff: s });
    const c = (await waitFor(() => ready('notwasm').then((x) => (x?.status === 'False' ? x : undefined)), 'not-wasm reported'))!;
    expect(c.reason).toBe('NotWasm');
    expect(c.message).toMatch(/not a WebAssembly/i);
  });

  it('refuses a module that imports host functions Skiff does not provide, naming them', async () => {
    writeFileSync(join(dir, 'alien.wasm'), await wat('(module (import "env" "launch_missiles" (func)) (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32))) (memory (export "memory") 1) (func (export "_start")))'));
    writeFileSync(join(dir, 'alien.yaml'), manifest('alien', './alien.wasm'));
    await cli(['apply', '-f', join(dir, 'alien.yaml')], { skiff: s });
    const c = (await waitFor(() => ready('alien').then((x) => (x?.status === 'False' ? x : undefined)), 'missing imports reported'))!;
    expect(c.reason).toBe('MissingImports');
    expect(c.message).toContain('env.launch_missiles');
    expect((await fetch(`${s.gateway}/alien`)).status).toBe(503);
  });

  it('warns when a Function grants capabilities its module cannot use', async () => {
    writeFileSync(join(dir, 'granted.yaml'), manifest('granted', './hello.wasm', `  capabilities:\n    dirs: [{ host: ${JSON.stringify(dir)}, guest: /data, readOnly: true }]\n    random: real\n`));
    copyFileSync(join(REPO, 'examples', 'hello', 'hello.wasm'), join(dir, 'hello.wasm'));
    await cli(['apply', '-f', join(dir, 'granted.yaml')], { skiff: s });
    await waitFor(async () => (await ready('granted'))?.status === 'True', 'granted ready');
    const desc = await waitFor(async () => {
      const d = (await cli(['describe', 'fn', 'granted'], { skiff: s })).stdout;
      return /CapabilityUnused/.test(d) ? d : undefined;
    }, 'CapabilityUnused event');
    expect(desc).toMatch(/Warning\s+CapabilityUnused\s+.*grants directories, randomness but its module imports nothing that could use them/);
  });

  it('answers 500 for a trap, logs the trap, and keeps serving', async () => {
    writeFileSync(join(dir, 'trap.wasm'), await wat(wagiWat('', { stderr: 'about to fail\n', tail: '(unreachable)' })));
    writeFileSync(join(dir, 'trap.yaml'), manifest('trap', './trap.wasm'));
    await cli(['apply', '-f', join(dir, 'trap.yaml')], { skiff: s });
    await waitFor(async () => (await ready('trap'))?.status === 'True', 'trap ready');
    const res = await fetch(`${s.gateway}/trap`);
    expect(res.status).toBe(500);
    const logs = (await cli(['logs', 'trap'], { skiff: s })).stdout;
    expect(logs).toMatch(/about to fail/);
    expect(logs).toMatch(/\[skiff\] trap: .*unreachable/);
    expect((await fetch(`${s.gateway}/trap`)).status).toBe(500);
    expect((await fetch(`${s.api}/healthz`)).status).toBe(200);
  });

  it('answers 502 with a clear log line for malformed WAGI output', async () => {
    writeFileSync(join(dir, 'garbage.wasm'), await wat(wagiWat('no headers here')));
    writeFileSync(join(dir, 'garbage.yaml'), manifest('garbage', './garbage.wasm'));
    await cli(['apply', '-f', join(dir, 'garbage.yaml')], { skiff: s });
    await waitFor(async () => (await ready('garbage'))?.status === 'True', 'garbage ready');
    expect((await fetch(`${s.gateway}/garbage`)).status).toBe(502);
    expect((await cli(['logs', 'garbage'], { skiff: s })).stdout).toMatch(/\[skiff\] bad output: .*blank line/);
  });

  it('answers 504 for a function that loops forever, while others keep serving', async () => {
    writeFileSync(join(dir, 'loop.wasm'), await wat(wagiWat('', { tail: '(loop $l (br $l))' })));
    writeFileSync(join(dir, 'loop.yaml'), manifest('loop', './loop.wasm', '  limits: { timeout: 1500ms }\n'));
    writeFileSync(join(dir, 'ok.wasm'), await wat(wagiWat('Content-Type: text/plain\n\nok\n')));
    writeFileSync(join(dir, 'ok.yaml'), manifest('ok', './ok.wasm'));
    await cli(['apply', '-f', join(dir, 'loop.yaml'), '-f', join(dir, 'ok.yaml')], { skiff: s });
    await waitFor(async () => (await ready('loop'))?.status === 'True' && (await ready('ok'))?.status === 'True', 'loop and ok ready');
    // The looping request holds a sandbox worker until its deadline; the other function is served meanwhile.
    let loopDone = 0;
    const looping = fetch(`${s.gateway}/loop`).then(async (r) => {
      loopDone = Date.now();
      return r;
    });
    await new Promise((r) => setTimeout(r, 50));
    const ok = await fetch(`${s.gateway}/ok`);
    const okDone = Date.now();
    expect(ok.status).toBe(200);
    expect((await looping).status).toBe(504);
    expect(okDone).toBeLessThan(loopDone);
    expect((await cli(['logs', 'loop'], { skiff: s })).stdout).toMatch(/deadline exceeded/);
  });

  it('answers 404 when no route matches and 503 with a clear body for a route to a missing function', async () => {
    expect((await fetch(`${s.gateway}/no-such-route`)).status).toBe(404);
    const r = await cli(['apply', '-f', '-'], { skiff: s, input: 'apiVersion: skiff.dev/v1\nkind: Route\nmetadata: {name: ghost}\nspec:\n  http:\n    - match: [{uri: {prefix: /ghost}}]\n      route: [{destination: {function: ghost}}]\n' });
    expect(r.code).toBe(0);
    const res = await fetch(`${s.gateway}/ghost`);
    expect(res.status).toBe(503);
    expect(await res.text()).toMatch(/ghost/);
    await waitFor(async () => JSON.parse((await cli(['get', 'rt', 'ghost', '-o', 'json'], { skiff: s })).stdout).status?.conditions?.[0]?.reason === 'FunctionNotFound', 'route status');
  });

  it('answers 413 for an API body over the limit', async () => {
    const res = await apiFetch(s, '/apis/skiff.dev/v1/namespaces/default/functions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ pad: 'x'.repeat(4 * 1024 * 1024) }) });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { reason: string }).reason).toBe('RequestEntityTooLarge');
  });

  it('exits 2 with a clear message when the server cannot be reached', async () => {
    const probe = http.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as { port: number }).port;
    await new Promise((r) => probe.close(r));
    const r = await cli(['get', 'functions'], { server: `http://127.0.0.1:${port}` });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`cannot reach the Skiff API at http://127.0.0.1:${port} (connection refused)`);
  });

  it('refuses to start on an address in use, naming the flag to change', async () => {
    const r = await cli(['up', '--data-dir', mkdtempSync(join(tmpdir(), 'skiff-busy-')), '--api', s.api.replace('http://', ''), '--gateway', '127.0.0.1:0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/cannot listen on 127\.0\.0\.1:\d+: the address is already in use.*--api HOST:PORT/);
  });

  it('refuses to share a data directory with a running Skiff', async () => {
    const r = await cli(['up', '--data-dir', s.dataDir, '--api', '127.0.0.1:0', '--gateway', '127.0.0.1:0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/in use by another Skiff process/);
  });

  it('exits 2 for usage errors and 1 for a missing object', async () => {
    expect((await cli(['get'], { skiff: s })).code).toBe(2);
    expect((await cli(['get', 'gizmos'], { skiff: s })).code).toBe(2);
    const nf = await cli(['describe', 'fn', 'nobody'], { skiff: s });
    expect(nf.code).toBe(1);
    expect(nf.stderr).toMatch(/function "nobody" not found/);
  });
});

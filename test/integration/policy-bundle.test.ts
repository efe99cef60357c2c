import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGzip } from 'node:zlib';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { buildBundle, readArchive, writeArchive } from '../../src/policy/bundle/index.js';
import { apiFetch, cli, type RunningSkiff, startSkiff, waitFor } from '../helpers/skiff-process.js';
import { tarGz } from '../policy/bundle/helpers.js';

/** The bundle server: serves `bytes` with an ETag, answers If-None-Match with 304, or fails as told. */
const served = { bytes: Buffer.alloc(0) as Buffer, etag: '', mode: 'ok' as 'ok' | '500' | 'stall', requests: 0, conditional: 0 };
const stalled = new Set<Socket>();
let bundleServer: http.Server;
let url: string;
let s: RunningSkiff;
const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
let serial = 0;

/** bundle builds a signed bundle whose rule data.envoy.authz.allow is `rule`. */
async function bundle(revision: string, rule: string, opts: { sign?: boolean; extra?: Record<string, string> } = {}): Promise<Buffer> {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-pb-'));
  mkdirSync(join(dir, 'envoy', 'authz'), { recursive: true });
  writeFileSync(join(dir, '.manifest'), JSON.stringify({ roots: ['envoy/authz'] }));
  writeFileSync(join(dir, 'envoy', 'authz', 'policy.rego'), `package envoy.authz\n\ndefault allow := false\n\n${rule}\n`);
  writeFileSync(join(dir, 'envoy', 'authz', 'data.json'), JSON.stringify({ methods: ['GET'] }));
  for (const [f, text] of Object.entries(opts.extra ?? {})) writeFileSync(join(dir, f), text);
  return (await buildBundle(dir, { revision, signingKey: opts.sign === false ? undefined : privateKey, keyId: 'default' })).bytes;
}

function serve(bytes: Buffer): void {
  served.bytes = bytes;
  served.etag = `"b${++serial}"`;
  served.mode = 'ok';
}

// The API is read with fetch, not the CLI: spawnSync would block this process, which also serves the bundles.
async function status(): Promise<any> {
  const r = await apiFetch(s, '/apis/skiff.dev/v1/policybundles/envoy');
  return r.ok ? ((await r.json()) as any).status : undefined;
}
async function policyStatus(name: string): Promise<any> {
  const r = await apiFetch(s, `/apis/skiff.dev/v1/namespaces/default/policies/${name}`);
  return r.ok ? ((await r.json()) as any).status : undefined;
}
const ready = (st: any) => st?.conditions?.find((c: any) => c.type === 'Ready');
const verified = (st: any) => st?.conditions?.find((c: any) => c.type === 'Verified');
const code = async (method: string) => (await fetch(`${s.gateway}/hello`, { method })).status;

/** refused serves bytes and waits until the bundle's Ready condition reports `reason`, returning its message. */
async function refused(bytes: Buffer, reason: string): Promise<string> {
  serve(bytes);
  const before = ready(await status())?.message;
  const c = await waitFor(async () => {
    const r = ready(await status());
    return r?.reason === reason && r.status === 'False' && r.message !== before ? r : undefined;
  }, `Ready False ${reason}`, 15_000).catch(async (err: Error) => {
    throw new Error(`${err.message}; status: ${JSON.stringify(await status())}; served ${served.requests}; log: ${s.stderr().split('\n').filter((l) => /bundle|reconcile/i.test(l)).slice(-5).join('\n')}`);
  });
  return c.message as string;
}

beforeAll(async () => {
  bundleServer = http.createServer((req, res) => {
    served.requests++;
    if (served.mode === 'stall') {
      stalled.add(req.socket);
      return;
    }
    if (served.mode === '500') {
      res.writeHead(500).end('boom');
      return;
    }
    if (req.headers['if-none-match'] === served.etag) {
      served.conditional++;
      res.writeHead(304, { etag: served.etag }).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/gzip', etag: served.etag }).end(served.bytes);
  });
  await new Promise<void>((r) => bundleServer.listen(0, '127.0.0.1', r));
  const port = (bundleServer.address() as AddressInfo).port;
  url = `http://127.0.0.1:${port}/envoy.tar.gz`;
  serve(await bundle('r1', 'allow if input.attributes.request.http.method in data.envoy.authz.methods'));
  s = await startSkiff({ demo: true, args: ['--allow-upstream', `127.0.0.1:${port}`, '--decision-log'] });
});

afterAll(async () => {
  await s?.stop();
  for (const sock of stalled) sock.destroy();
  await new Promise((r) => bundleServer?.close(r));
});

const manifest = (rollout = '') => `apiVersion: skiff.dev/v1
kind: PolicyBundle
metadata: { name: envoy }
spec:
  source: ${url}
  pollingInterval: 1s
  timeout: 2s
  roots: [envoy/authz]
  verification:
    keyId: default
    publicKey: |
${publicPem.trim().split('\n').map((l) => `      ${l}`).join('\n')}
${rollout}---
apiVersion: skiff.dev/v1
kind: Route
metadata: { name: hello }
spec:
  filters: [{ authz: { policy: data.envoy.authz.allow } }]
  http:
    - match: [{ uri: { prefix: /hello } }]
      route: [{ destination: { function: hello } }]
`;

describe('a Route whose authz comes from a signed OPA bundle', () => {
  it('activates the signed bundle, follows a new revision, and keeps it through bad ones', async () => {
    expect((await cli(['apply', '-f', '-'], { skiff: s, input: manifest() })).code).toBe(0);
    await waitFor(async () => (await code('GET')) === 200, 'GET allowed by revision r1', 15_000);
    expect(await code('POST')).toBe(403);
    const st1 = await waitFor(async () => {
      const x = await status();
      return ready(x)?.reason === 'Activated' ? x : undefined;
    }, 'status of r1');
    expect(st1).toMatchObject({ revision: 'r1', etag: served.etag });
    expect(st1.digest).toMatch(/^sha256:/);
    expect(ready(st1)).toMatchObject({ status: 'True', reason: 'Activated' });
    expect(verified(st1)).toMatchObject({ status: 'True', reason: 'SignatureVerified' });
    // the unchanged bundle is polled with If-None-Match and answered 304
    await waitFor(() => served.conditional > 0, 'a conditional poll');

    // r2 lets POST through too: replay reports the POST decisions it flips
    serve(await bundle('r2', 'allow if input.attributes.request.http.method in {"GET", "POST"}'));
    await waitFor(async () => (await code('POST')) === 200, 'POST allowed by revision r2', 15_000);
    const st2 = await waitFor(async () => {
      const x = await status();
      return x?.revision === 'r2' ? x : undefined;
    }, 'status of r2');
    expect(st2.revision).toBe('r2');
    expect(st2.replay.evaluated).toBeGreaterThan(0);
    expect(st2.replay.changed).toBeGreaterThan(0);
    expect(st2.replay.examples[0]).toMatchObject({ query: 'data.envoy.authz.allow', old: { result: false }, new: { result: true } });

    // a tampered file: the signature no longer covers what is served
    const good = await readArchive(await bundle('r3', 'allow := true'), 'r3');
    const tampered = await writeArchive(good.map((e) => ({ name: `/${e.path}`, bytes: e.path.endsWith('.rego') ? Buffer.from('package envoy.authz\n\nallow := true\n') : e.bytes })));
    expect(await refused(tampered, 'VerificationFailed')).toMatch(/file envoy\/authz\/policy\.rego: does not match its signed digest.*revision "r2" keeps deciding/);
    expect(verified(await status())).toMatchObject({ status: 'False', reason: 'VerificationFailed' });
    expect(await code('DELETE')).toBe(403);

    // a file added after signing
    const added = await writeArchive([...good.map((e) => ({ name: `/${e.path}`, bytes: e.bytes })), { name: '/envoy/authz/extra.rego', bytes: Buffer.from('package envoy.authz\nx := 1\n') }]);
    expect(await refused(added, 'VerificationFailed')).toContain('file envoy/authz/extra.rego: is not covered by the bundle signature');

    // unsigned, while a signature is required
    expect(await refused(await bundle('r4', 'allow := true', { sign: false }), 'VerificationFailed')).toContain('has no .signatures.json but a signature is required');

    // signed and parsed, but it does not compile: the file and line are named
    expect(await refused(await bundle('r5', 'allow if {\n  x == input.y\n}'), 'CompileError')).toMatch(/bundle:envoy\/envoy\/authz\/policy\.rego:6: rego_unsafe_var_error: var x is unsafe.*revision "r2" keeps deciding/);

    // entries that climb out of the bundle, and a gzip bomb
    expect(await refused(await tarGz([{ name: '../../etc/cron.d/x.rego', body: 'package x' }]), 'InvalidBundle')).toContain('climbs out of the bundle');
    const gz = createGzip();
    const chunks: Buffer[] = [];
    gz.on('data', (c: Buffer) => chunks.push(c));
    const done = new Promise((r) => gz.on('end', r));
    gz.write(Buffer.alloc(512));
    for (let i = 0; i < 70; i++) gz.write(Buffer.alloc(1 << 20));
    gz.end();
    await done;
    expect(await refused(Buffer.concat(chunks), 'InvalidBundle')).toContain('decompresses to more than');

    // a server that fails, then one that stalls past spec.timeout
    served.mode = '500';
    await waitFor(async () => ready(await status())?.message?.includes('answered HTTP 500'), 'HTTP 500 reported', 15_000);
    served.mode = 'stall';
    await waitFor(async () => ready(await status())?.message?.includes('took longer than 2000 ms'), 'stall reported', 15_000);
    expect(ready(await status()).reason).toBe('DownloadFailed');

    // through all of it, r2 kept deciding
    expect((await status()).revision).toBe('r2');
    expect(await code('POST')).toBe(200);
    expect(await code('DELETE')).toBe(403);
  }, 120_000);

  it('holds back a revision that would change more decisions than allowed, and skiff policy replay lists them', async () => {
    for (let i = 0; i < 3; i++) expect(await code('GET')).toBe(200);
    expect((await cli(['apply', '-f', '-'], { skiff: s, input: manifest('  rollout: { maxChangedDecisions: 0 }\n') })).code).toBe(0);
    // the rollout limit is in force once the controller has seen the new spec
    await waitFor(async () => (await status())?.observedGeneration === 2, 'generation 2 observed');
    // r6 would deny GET: held back, r2 keeps deciding
    const msg = await refused(await bundle('r6', 'allow if input.attributes.request.http.method == "POST"'), 'RolloutHeld');
    expect(msg).toMatch(/revision "r6" is held back: \d+ of \d+ replayed decisions would change \(spec.rollout.maxChangedDecisions: 0\); skiff policy replay envoy lists them; revision "r2" keeps deciding/);
    const st = await status();
    expect(st.candidate.revision).toBe('r6');
    expect(st.replay.changed).toBeGreaterThan(0);
    expect(await code('GET')).toBe(200);

    const r = await cli(['policy', 'replay', 'envoy', '--since', '1h'], { skiff: s });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toMatch(/data\.envoy\.authz\.allow {2}true -> false/);
    expect(r.stdout).toMatch(/\d+ evaluated, [1-9]\d* would change, 0 not replayable/);

    // raising the limit lets it through
    expect((await cli(['apply', '-f', '-'], { skiff: s, input: manifest('  rollout: { maxChangedDecisions: 100000 }\n') })).code).toBe(0);
    await waitFor(async () => (await status())?.revision === 'r6', 'r6 active', 15_000);
    expect(await code('GET')).toBe(403);
  }, 60_000);

  it('holds back a Policy generation the same way, the previous generation deciding', async () => {
    const pol = (allow: string, max = 0) => `apiVersion: skiff.dev/v1
kind: Policy
metadata: { name: gate }
spec:
  rollout: { maxChangedDecisions: ${max} }
  rego: |
    package gate
    default allow := false
    allow if ${allow}
---
apiVersion: skiff.dev/v1
kind: Route
metadata: { name: hello }
spec:
  filters: [{ authz: { policy: data.gate.allow } }]
  http:
    - match: [{ uri: { prefix: /hello } }]
      route: [{ destination: { function: hello } }]
`;
    expect((await cli(['apply', '-f', '-'], { skiff: s, input: pol('input.attributes.request.http.method == "GET"') })).code).toBe(0);
    await waitFor(async () => (await code('GET')) === 200, 'gate allows GET', 15_000);
    for (let i = 0; i < 3; i++) await code('GET');
    expect((await cli(['apply', '-f', '-'], { skiff: s, input: pol('input.attributes.request.http.method == "PUT"') })).code).toBe(0);
    const st = await waitFor(async () => {
      const x = await policyStatus('gate');
      return x?.conditions?.[0]?.reason === 'RolloutHeld' ? x : undefined;
    }, 'Policy held back', 15_000);
    expect(st.active.generation).toBeLessThan(st.observedGeneration);
    expect(st.replay.changed).toBeGreaterThan(0);
    expect(await code('GET')).toBe(200);
    const r = await cli(['policy', 'replay', 'gate', '--kind', 'policy'], { skiff: s });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('data.gate.allow  true -> false');
  }, 60_000);
});

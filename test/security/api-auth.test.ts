import { copyFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll,beforeAll, describe, expect, it } from 'vitest';

import { apiFetch, cli, type RunningSkiff,startSkiff } from '../helpers/skiff-process.js';

/**
 * The API as an attacker on the same machine meets it: a web page in the user's browser (cross-site
 * posts, DNS rebinding), a local process without the token, and hand-made URLs and bodies.
 */

let s: RunningSkiff;
let port: number;
const FN = '/apis/skiff.dev/v1/namespaces/default/functions';
const NS = '/apis/skiff.dev/v1/namespaces';

/** A Function that would mount the whole host file system: what the audit's cross-site post created. */
const mountRoot = (name: string) =>
  JSON.stringify({ apiVersion: 'skiff.dev/v1', kind: 'Function', metadata: { name }, spec: { module: 'hello.wasm', capabilities: { dirs: [{ host: '/', guest: '/host' }] } } });

interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** raw sends exactly this request target and these headers (fetch would normalise `..` and set Host itself). */
function raw(method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers: { host: `127.0.0.1:${port}`, ...headers }, setHost: false, timeout: 10_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}

const bearer = () => ({ authorization: `Bearer ${s.token}` });
const reason = (r: RawResponse) => (JSON.parse(r.body) as { reason: string }).reason;

async function exists(path: string): Promise<boolean> {
  const r = await apiFetch(s, path);
  await r.arrayBuffer();
  if (r.status !== 200 && r.status !== 404) throw new Error(`GET ${path}: ${r.status}`);
  return r.status === 200;
}

beforeAll(async () => {
  s = await startSkiff({ demo: true });
  port = Number(new URL(s.api).port);
}, 60_000);

afterAll(async () => {
  await s?.stop();
});

describe('a web page in the browser', () => {
  it('cannot create a Function with a cross-site text/plain form post', async () => {
    const forms: Array<Record<string, string>> = [
      { 'content-type': 'text/plain', origin: 'http://evil.example' },
      { 'content-type': 'text/plain;charset=UTF-8', origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' },
      { 'content-type': 'application/x-www-form-urlencoded', origin: 'null' },
    ];
    for (const headers of forms) {
      const r = await raw('POST', FN, headers, mountRoot('pwn'));
      expect(r.status).toBe(403);
      expect(reason(r)).toBe('Forbidden');
      expect(Object.keys(r.headers).filter((h) => h.startsWith('access-control-'))).toEqual([]);
    }
    // Without Origin (an old browser, or a page whose Origin is stripped) the media type still refuses it, token or not.
    const noOrigin = await raw('POST', FN, { 'content-type': 'text/plain' }, mountRoot('pwn'));
    expect(noOrigin.status).toBe(415);
    expect(reason(noOrigin)).toBe('UnsupportedMediaType');
    expect((await raw('POST', FN, { 'content-type': 'text/plain', ...bearer() }, mountRoot('pwn'))).status).toBe(415);
    expect((await raw('POST', FN, { ...bearer() }, mountRoot('pwn'))).status).toBe(415);
    expect(await exists(`${FN}/pwn`)).toBe(false);
  });

  it('gets no CORS permission from a preflight', async () => {
    const r = await raw('OPTIONS', FN, { origin: 'http://evil.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,authorization' });
    expect(r.status).toBe(403);
    expect(Object.keys(r.headers).filter((h) => h.startsWith('access-control-'))).toEqual([]);
  });

  it('cannot read or delete through DNS rebinding (a foreign Host on the loopback listener)', async () => {
    for (const headers of [{ host: 'rebind.evil.example' }, { host: `rebind.evil.example:${port}` }, { host: `rebind.evil.example:${port}`, ...bearer() }]) {
      const read = await raw('GET', `${FN}/hello`, headers);
      expect(read.status).toBe(403);
      expect(read.body).toMatch(/DNS rebinding/);
      expect(read.body).not.toMatch(/hello\.wasm/);
      const del = await raw('DELETE', `${FN}/hello`, headers);
      expect(del.status).toBe(403);
    }
    expect(await exists(`${FN}/hello`)).toBe(true);
    // The names a person uses for loopback still work.
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `skiff.localhost:${port}`]) expect((await raw('GET', `${FN}/hello`, { host, ...bearer() })).status).toBe(200);
  });
});

describe('a client without the token', () => {
  const paths = [
    ['GET', `${FN}/hello`],
    ['GET', FN],
    ['GET', '/apis/skiff.dev/v1/functions'],
    ['GET', `${FN}?watch=true&timeoutSeconds=1`],
    ['GET', `${FN}/hello/log`],
    ['GET', `${FN}/hello/log?follow=true`],
    ['GET', '/apis'],
    ['GET', '/apis/skiff.dev/v1'],
    ['GET', NS],
    ['POST', FN],
    ['PUT', `${FN}/hello`],
    ['PATCH', `${FN}/hello`],
    ['DELETE', `${FN}/hello`],
    ['DELETE', `${NS}/default`],
    ['PUT', `${FN}/hello/status`],
  ] as const;

  it.each(paths)('gets 401 for %s %s, with or without a wrong token', async (method, path) => {
    const withBody = method === 'POST' || method === 'PUT' || method === 'PATCH';
    const ct = method === 'PATCH' ? 'application/merge-patch+json' : 'application/json';
    const auths: Array<Record<string, string>> = [{}, { authorization: 'Bearer wrong' }, { authorization: `Bearer ${s.token}x` }, { authorization: `Basic ${Buffer.from(`x:${s.token}`).toString('base64')}` }];
    for (const auth of auths) {
      const r = await raw(method, path, { ...auth, ...(withBody ? { 'content-type': ct } : {}) }, withBody ? mountRoot('hello') : undefined);
      expect(r.status).toBe(401);
      expect(JSON.parse(r.body)).toMatchObject({ kind: 'Status', reason: 'Unauthorized', code: 401 });
      expect(r.body).toMatch(/DATA_DIR\/token/);
      expect(r.body).toMatch(/SKIFF_TOKEN/);
      expect(r.body).toMatch(/--token/);
      expect(r.body).not.toMatch(/hello\.wasm|"items"/);
    }
    expect(await exists(`${FN}/hello`)).toBe(true);
    expect(await exists(`${NS}/default`)).toBe(true);
  });

  it('still reaches health and version', async () => {
    for (const path of ['/healthz', '/livez', '/readyz', '/version']) {
      const r = await raw('GET', path);
      expect(r.status).toBe(200);
    }
    expect(JSON.parse((await raw('GET', '/version')).body).version).toEqual(expect.any(String));
  });

  it('cannot write status with the user token: that needs the controller token', async () => {
    const cur = (await (await apiFetch(s, `${FN}/hello`)).json()) as Record<string, unknown>;
    const r = await apiFetch(s, `${FN}/hello/status`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...cur, status: { forged: true } }) });
    expect(r.status).toBe(403);
  });
});

describe('hand-made URLs', () => {
  it.each(['%2e%2e', '%2E%2E', '%2e%2E', '.%2e', '%2e.', '..', '.', '%2e'])('refuse a dot segment (%s) with 400, and delete nothing', async (dots) => {
    const r = await raw('DELETE', `${FN}/${dots}?dryRun=All`, bearer());
    expect(r.status).toBe(400);
    expect(reason(r)).toBe('BadRequest');
    const real = await raw('DELETE', `${FN}/${dots}`, bearer());
    expect(real.status).toBe(400);
    expect(await exists(`${NS}/default`)).toBe(true);
    expect(await exists(`${FN}/hello`)).toBe(true);
  });

  it('refuse a dot segment in the middle of the path', async () => {
    expect((await raw('GET', '/apis/skiff.dev/v1/namespaces/default/../default/functions', bearer())).status).toBe(400);
    expect((await raw('GET', '/apis/skiff.dev/v1/namespaces/default/functions/%2e%2e/%2e%2e/namespaces', bearer())).status).toBe(400);
  });

  it('refuse malformed escapes with 400, not 500', async () => {
    for (const path of [`${FN}/%zz`, `${FN}/a%`, `/apis/skiff.dev/v1/namespaces/%zz/functions`, `${FN}?labelSelector=%zz`, `${FN}/%ff%fe`]) {
      const r = await raw('GET', path, bearer());
      expect(r.status).toBe(400);
      expect(reason(r)).toBe('BadRequest');
    }
  });

  it('refuse empty segments instead of listing every namespace', async () => {
    const r = await raw('GET', '/apis/skiff.dev/v1/namespaces//functions', bearer());
    expect(r.status).toBe(400);
    expect(r.body).toMatch(/empty segment/);
  });

  it('refuse encoded slashes and invalid namespaces and names, naming the segment', async () => {
    const slash = await raw('GET', '/apis/skiff.dev/v1/namespaces/a%2Fb/functions', bearer());
    expect(slash.status).toBe(400);
    expect(slash.body).toMatch(/a%2Fb/);
    for (const path of ['/apis/skiff.dev/v1/namespaces/Default/functions', '/apis/skiff.dev/v1/namespaces/a.b/functions', `/apis/skiff.dev/v1/namespaces/${'a'.repeat(64)}/functions`]) {
      const r = await raw('GET', path, bearer());
      expect(r.status).toBe(400);
      expect(r.body).toMatch(/namespace in the URL/);
    }
    const name = await raw('GET', `${FN}/Bad_Name`, bearer());
    expect(name.status).toBe(400);
    expect(name.body).toMatch(/Function name in the URL.*Bad_Name/);
    expect((await raw('GET', `${NS}/a.b`, bearer())).status).toBe(400);
    expect((await raw('GET', `${FN}/a.b`, bearer())).status).toBe(404);
  });
});

describe('hand-made bodies', async () => {
  it('refuse JSON nested 200,000 deep with 400 naming the limit', async () => {
    const body = '{"a":'.repeat(200_000) + '1' + '}'.repeat(200_000);
    const r = await raw('POST', FN, { 'content-type': 'application/json', ...bearer() }, body);
    expect(r.status).toBe(400);
    expect(r.body).toMatch(/limit of 100 levels/);
    const patch = await raw('PATCH', `${FN}/hello`, { 'content-type': 'application/merge-patch+json', ...bearer() }, '['.repeat(200_000) + ']'.repeat(200_000));
    expect(patch.status).toBe(400);
  });

  it('refuse deeply nested YAML with 400, quickly', async () => {
    for (const body of ['['.repeat(1_000_000), '- '.repeat(500_000) + 'x', 'spec: ' + '{a: '.repeat(150) + '1' + '}'.repeat(150)]) {
      const t0 = performance.now();
      const r = await raw('POST', FN, { 'content-type': 'application/yaml', ...bearer() }, body);
      expect(r.status).toBe(400);
      expect(r.body).toMatch(/limit of 100 levels/);
      expect(performance.now() - t0).toBeLessThan(5_000);
    }
    expect((await raw('GET', '/healthz')).status).toBe(200);
  });

  it('accept YAML and apply-patch bodies within the limit', async () => {
    const yaml = 'apiVersion: skiff.dev/v1\nkind: Service\nmetadata: {name: yaml-svc}\nspec:\n  endpoints: [{address: 192.0.2.1, port: 80}]\n';
    const created = await raw('POST', '/apis/skiff.dev/v1/namespaces/default/services', { 'content-type': 'application/yaml; charset=utf-8', ...bearer() }, yaml);
    expect(created.status).toBe(201);
    const applied = await raw('PATCH', '/apis/skiff.dev/v1/namespaces/default/services/applied?fieldManager=test', { 'content-type': 'application/apply-patch+yaml', ...bearer() }, yaml.replace('yaml-svc', 'applied'));
    expect(applied.status).toBe(201);
    const labels = 'apiVersion: skiff.dev/v1\nkind: Service\nmetadata: {name: applied, labels: {a: b}}\n';
    const again = await raw('PATCH', '/apis/skiff.dev/v1/namespaces/default/services/applied?fieldManager=other', { 'content-type': 'application/apply-patch+yaml', ...bearer() }, labels);
    expect(again.status).toBe(200);
    expect(JSON.parse(again.body).metadata.labels).toEqual({ a: 'b' });
    // Server-side apply names its manager; without one it is a 400.
    const anonymous = await raw('PATCH', '/apis/skiff.dev/v1/namespaces/default/services/applied', { 'content-type': 'application/apply-patch+yaml', ...bearer() }, labels);
    expect(anonymous.status).toBe(400);
    const jsonPatch = await raw('PATCH', '/apis/skiff.dev/v1/namespaces/default/services/applied', { 'content-type': 'application/json-patch+json', ...bearer() }, '[{"op":"test","path":"/metadata/labels/a","value":"b"}]');
    expect(jsonPatch.status).toBe(200);
    const textPatch = await raw('PATCH', '/apis/skiff.dev/v1/namespaces/default/services/applied', { 'content-type': 'text/plain', ...bearer() }, '[]');
    expect(textPatch.status).toBe(415);
    expect(textPatch.body).toMatch(/merge-patch\+json/);
  });
});

// Each CLI run is a process start; on a busy machine a handful of them outlast the default timeout.
describe('the CLI', async () => {
  const tokenFile = () => join(s.dataDir, 'token');

  it('finds the token through --token, SKIFF_TOKEN, SKIFF_DATA_DIR and ./.skiff in its folder', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'skiff-cwd-'));
    const withSkiff = mkdtempSync(join(tmpdir(), 'skiff-cwd-'));
    mkdirSync(join(withSkiff, '.skiff'));
    copyFileSync(tokenFile(), join(withSkiff, '.skiff', 'token'));
    const ways: Array<{ args: string[]; cwd: string; env: Record<string, string> }> = [
      { args: ['--token', s.token], cwd: empty, env: {} },
      { args: [], cwd: empty, env: { SKIFF_TOKEN: s.token } },
      { args: [], cwd: empty, env: { SKIFF_DATA_DIR: s.dataDir } },
      { args: [], cwd: withSkiff, env: {} },
      // The order: --token wins over a wrong SKIFF_TOKEN, SKIFF_TOKEN over a data dir.
      { args: ['--token', s.token], cwd: empty, env: { SKIFF_TOKEN: 'wrong' } },
      { args: [], cwd: withSkiff, env: { SKIFF_TOKEN: s.token, SKIFF_DATA_DIR: empty } },
    ];
    for (const w of ways) {
      // An empty SKIFF_DATA_DIR stops the test helper from pointing the CLI at the server's data dir.
      const r = await cli(['get', 'functions', ...w.args], { server: s.api, cwd: w.cwd, env: { SKIFF_DATA_DIR: '', ...w.env } });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^hello\s/m);
    }
  }, 180_000);

  it('says where it looked when it has no token, and which token the server refused', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'skiff-cwd-'));
    const hidden = { SKIFF_DATA_DIR: '' };
    const none = await cli(['get', 'functions'], { server: s.api, cwd: empty, env: hidden });
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/Unauthorized/);
    expect(none.stderr).toMatch(/found no token/);
    expect(none.stderr).toContain(join(empty, '.skiff', 'token'));
    const wrong = await cli(['logs', 'hello'], { server: s.api, cwd: empty, env: { ...hidden, SKIFF_TOKEN: 'wrong' } });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/refused the token from \$SKIFF_TOKEN/);
    const watch = await cli(['get', 'functions', '--watch', '--token', 'wrong'], { server: s.api, cwd: empty, env: hidden });
    expect(watch.code).toBe(1);
    expect(watch.stderr).toMatch(/refused the token from --token/);
  }, 120_000);
});

import { execFileSync,spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll,beforeAll, describe, expect, it } from 'vitest';

import { BIN, cli, REPO, type RunningSkiff,startSkiff, waitFor } from '../helpers/skiff-process.js';
import { wagiWat, wat } from '../helpers/wat.js';

// What Function modules may name, tried as an API client would: host paths outside the operator's
// grants, symlinks and FIFOs inside them, URLs aimed at Skiff itself or redirected inward, and the
// upload endpoint that replaces host paths for the CLI.

const base = mkdtempSync(join(tmpdir(), 'skiff-modsrc-'));
const allowed = join(base, 'allowed');
const outside = join(base, 'outside');
const FN = '/apis/skiff.dev/v1/namespaces/default/functions';
const ROUTES = '/apis/skiff.dev/v1/namespaces/default/routes';

let s: RunningSkiff;
let token = '';
let origin: http.Server;
let originUrl = '';
const originHits: string[] = [];
let moduleV1: Uint8Array;

async function api(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(`${s.api}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

const fnObject = (name: string, module: string) => ({ apiVersion: 'skiff.dev/v1', kind: 'Function', metadata: { name }, spec: { module, limits: { timeout: '2s' } } });

async function createFunction(name: string, module: string): Promise<{ status: number; body: any }> {
  const r = await api('POST', FN, fnObject(name, module));
  if (r.status === 201) {
    await api('POST', ROUTES, { apiVersion: 'skiff.dev/v1', kind: 'Route', metadata: { name }, spec: { http: [{ match: [{ uri: { prefix: `/${name}` } }], route: [{ destination: { function: name } }] }] } });
  }
  return r;
}

async function readyOf(name: string): Promise<{ status: string; reason: string; message: string } | undefined> {
  const r = await api('GET', `${FN}/${name}`);
  return r.body?.status?.conditions?.find((c: { type: string }) => c.type === 'Ready');
}

async function untilReady(name: string, status: 'True' | 'False', timeoutMs = 10_000): Promise<{ status: string; reason: string; message: string }> {
  return waitFor(async () => {
    const c = await readyOf(name);
    return c?.status === status ? c : undefined;
  }, `${name} Ready=${status}`, timeoutMs) as Promise<{ status: string; reason: string; message: string }>;
}

/** served waits until the gateway answers `path` with `body` (the Route is programmed a moment after the Function is ready). */
async function served(path: string, body: string): Promise<void> {
  await waitFor(async () => (await (await fetch(`${s.gateway}${path}`)).text()) === body, `${path} to answer ${JSON.stringify(body)}`);
}

/** everything an API client can read about a Function: the object with its status, and its events. */
async function visibleAbout(name: string): Promise<string> {
  const fn = await api('GET', `${FN}/${name}`);
  const events = await api('GET', '/apis/skiff.dev/v1/namespaces/default/events');
  return JSON.stringify(fn.body) + JSON.stringify(events.body.items.filter((e: any) => e.involvedObject?.name === name));
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  mkdirSync(allowed);
  mkdirSync(outside);
  moduleV1 = await wat(wagiWat('Content-Type: text/plain\n\ninside v1\n'));
  writeFileSync(join(allowed, 'ok.wasm'), moduleV1);
  writeFileSync(join(allowed, 'swap.wasm'), moduleV1);
  writeFileSync(join(outside, 'secret.wasm'), await wat(wagiWat('Content-Type: text/plain\n\nOUTSIDE SECRET\n')));
  symlinkSync(join(outside, 'secret.wasm'), join(allowed, 'link.wasm'));
  execFileSync('mkfifo', [join(allowed, 'fifo.wasm')]);
  writeFileSync(join(allowed, 'text.wasm'), 'SECRET-TEXT-CONTENT this is not WebAssembly');
  // A module with the WebAssembly header whose export section V8 rejects, quoting the export's name.
  writeFileSync(join(allowed, 'dup.wasm'), Buffer.from('0061736d010000000104016000000303020000071b020a5345435245544e414d4500000a5345435245544e414d4500010a070202000b02000b', 'hex'));

  s = await startSkiff({ demo: true, args: ['--allow-host-dir', allowed, '--allow-upstream', '127.0.0.1/8'] });
  token = readFileSync(join(s.dataDir, 'token'), 'utf8').trim();
  const apiPort = new URL(s.api).port;
  const gatewayPort = new URL(s.gateway).port;
  origin = http.createServer((req, res) => {
    originHits.push(req.url ?? '');
    const redirect = async (to: string) => {
      res.writeHead(302, { location: to, 'content-type': 'text/plain' });
      res.end('REDIRECT-BODY-SECRET');
    };
    if (req.url === '/to-api') return redirect(`http://127.0.0.1:${apiPort}/apis/skiff.dev/v1/namespaces/default/functions`);
    if (req.url === '/to-gateway') return redirect(`http://localhost:${gatewayPort}/hello`);
    if (req.url === '/to-metadata') return redirect('http://169.254.169.254/latest/meta-data/');
    if (req.url === '/loop') return redirect('/loop');
    if (req.url === '/hop') return redirect('/module');
    if (req.url === '/module') {
      res.writeHead(200, { 'content-type': 'application/wasm' });
      return res.end(moduleV1);
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('BODY-SECRET-404');
  });
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
  originUrl = `http://127.0.0.1:${(origin.address() as { port: number }).port}`;
});

afterAll(async () => {
  await new Promise((r) => origin?.close(r));
  await s?.stop();
  rmSync(base, { recursive: true, force: true });
});

describe('host paths in spec.module', async () => {
  it('refuses paths outside every --allow-host-dir with 422, saying nothing about what exists there', async () => {
    const refused = ['/etc/passwd', '/etc/no-such-file-here', '/root/x', 'relative.wasm', 'file:///etc/shadow', join(outside, 'secret.wasm'), `${allowed}/../outside/secret.wasm`];
    const messages: Record<string, string> = {};
    for (const [i, module] of refused.entries()) {
      const r = await api('POST', FN, fnObject(`host-${i}`, module));
      expect(r.status, module).toBe(422);
      expect(r.body.details.causes[0].field).toBe('spec.module');
      expect(r.body.message).toContain('skiff apply');
      if (module !== 'relative.wasm') expect(r.body.message).toContain('--allow-host-dir');
      messages[module] = r.body.message.replace(`host-${i}`, 'N');
      expect((await api('GET', `${FN}/host-${i}`)).status).toBe(404);
    }
    // A file that exists and one that does not get the same answer.
    expect(messages['/etc/passwd']!.replace('/etc/passwd', 'P')).toBe(messages['/etc/no-such-file-here']!.replace('/etc/no-such-file-here', 'P'));
  });

  it('serves a module inside an allowed directory and rolls out a rebuilt file', async () => {
    expect((await createFunction('inside', join(allowed, 'ok.wasm'))).status).toBe(201);
    await untilReady('inside', 'True');
    await served('/inside', 'inside v1\n');
    writeFileSync(join(allowed, 'ok.next'), await wat(wagiWat('Content-Type: text/plain\n\ninside v2\n')));
    renameSync(join(allowed, 'ok.next'), join(allowed, 'ok.wasm'));
    await waitFor(async () => (await (await fetch(`${s.gateway}/inside`)).text()) === 'inside v2\n', 'the rebuilt module to roll out');
  });

  it('refuses a symlink that leads outside, at admission and when it replaces an admitted file', async () => {
    const r = await api('POST', FN, fnObject('link', join(allowed, 'link.wasm')));
    expect(r.status).toBe(422);
    expect(r.body.message).toContain('--allow-host-dir');

    expect((await createFunction('swap', join(allowed, 'swap.wasm'))).status).toBe(201);
    await untilReady('swap', 'True');
    await served('/swap', 'inside v1\n');
    // The admitted file becomes a symlink to a module outside: the reload refuses it and the old version keeps serving.
    symlinkSync(join(outside, 'secret.wasm'), join(allowed, 'swap.tmp'));
    renameSync(join(allowed, 'swap.tmp'), join(allowed, 'swap.wasm'));
    const c = await untilReady('swap', 'False');
    expect(c.reason).toBe('HostPathNotAllowed');
    expect(c.message).toContain('--allow-host-dir');
    const res = await fetch(`${s.gateway}/swap`);
    expect(await res.text()).toBe('inside v1\n');
  });

  it('refuses a FIFO promptly, without blocking the server', async () => {
    const t0 = Date.now();
    expect((await createFunction('fifo', join(allowed, 'fifo.wasm'))).status).toBe(201);
    const c = await untilReady('fifo', 'False', 5_000);
    expect(c.reason).toBe('ModuleNotRegularFile');
    expect(Date.now() - t0).toBeLessThan(5_000);
    const h0 = Date.now();
    expect((await fetch(`${s.api}/healthz`)).status).toBe(200);
    expect(Date.now() - h0).toBeLessThan(1_000);
    expect((await fetch(`${s.gateway}/hello`)).status).toBe(200);
  });

  it('never quotes the module file in status or events', async () => {
    expect((await createFunction('notwasm', join(allowed, 'text.wasm'))).status).toBe(201);
    const c = await untilReady('notwasm', 'False');
    expect(c.reason).toBe('NotWasm');
    expect(c.message).toMatch(/not a WebAssembly module/);
    expect(await visibleAbout('notwasm')).not.toMatch(/SECRET|TEXT-CONTENT|53 45 43/);

    expect((await createFunction('dupexport', join(allowed, 'dup.wasm'))).status).toBe(201);
    const d = await untilReady('dupexport', 'False');
    expect(d.reason).toBe('InvalidModule');
    expect(await visibleAbout('dupexport')).not.toContain('SECRETNAME');
  });
});

describe('URL sources', async () => {
  it('refuses URLs aimed at Skiff\'s own listeners at admission, whatever --allow-upstream says', async () => {
    const apiPort = new URL(s.api).port;
    const gatewayPort = new URL(s.gateway).port;
    for (const url of [`http://127.0.0.1:${apiPort}/apis`, `http://localhost:${apiPort}/apis`, `http://127.0.0.1:${gatewayPort}/hello`, `http://[::1]:${apiPort}/apis`, 'http://169.254.169.254/latest/meta-data/']) {
      const r = await api('POST', FN, fnObject('url-self', url));
      expect(r.status, url).toBe(422);
      expect(r.body.details.causes[0].field).toBe('spec.module');
      expect(r.body.message).toContain('--allow-upstream');
    }
  });

  it('checks every redirect, names the reason, and never quotes what a server answered', async () => {
    const cases: Array<[string, string, RegExp]> = [
      ['redir-api', '/to-api', /own listeners/],
      ['redir-gw', '/to-gateway', /own listeners/],
      ['redir-meta', '/to-metadata', /169\.254\.169\.254.*--allow-upstream/],
    ];
    for (const [name, path, why] of cases) {
      expect((await createFunction(name, `${originUrl}${path}`)).status).toBe(201);
      const c = await untilReady(name, 'False');
      expect(c.reason, name).toBe('UpstreamRefused');
      expect(c.message).toMatch(/redirect 1 leads to a refused target/);
      expect(c.message).toMatch(why);
      expect(await visibleAbout(name)).not.toContain('SECRET');
    }
    expect((await createFunction('redir-404', `${originUrl}/nothing`)).status).toBe(201);
    const nf = await untilReady('redir-404', 'False');
    expect(nf.reason).toBe('FetchFailed');
    expect(nf.message).toMatch(/answered HTTP 404/);
    expect(await visibleAbout('redir-404')).not.toContain('SECRET');

    expect((await createFunction('redir-loop', `${originUrl}/loop`)).status).toBe(201);
    expect((await untilReady('redir-loop', 'False')).message).toMatch(/redirected more than 5 times/);

    // Redirects between allowed targets still work.
    expect((await createFunction('redir-ok', `${originUrl}/hop`)).status).toBe(201);
    await untilReady('redir-ok', 'True');
    await served('/redir-ok', 'inside v1\n');
    expect(originHits.filter((h) => h === '/module').length).toBeGreaterThan(0);
  });
});

describe('uploads', async () => {
  it('need the token and the right digest, and answer HEAD for what is stored', async () => {
    const bytes = await wat(wagiWat('Content-Type: text/plain\n\nuploaded\n'));
    const hex = sha(bytes);
    const put = (h: string, body: Uint8Array, headers: Record<string, string>) => fetch(`${s.api}/blobs/sha256/${h}`, { method: 'PUT', body, headers: { 'content-type': 'application/wasm', ...headers } });
    expect((await put(hex, bytes, {})).status).toBe(401);
    expect((await put(hex, bytes, { authorization: 'Bearer not-the-token' })).status).toBe(401);
    expect((await fetch(`${s.api}/blobs/sha256/${hex}`, { method: 'HEAD' })).status).toBe(401);
    const wrong = await put(sha(Buffer.from('other')), bytes, { authorization: `Bearer ${token}` });
    expect(wrong.status).toBe(400);
    expect(((await wrong.json()) as { message: string }).message).toContain(`sha256:${hex}`);
    expect((await put(hex, bytes, { authorization: `Bearer ${token}`, 'content-type': 'text/plain' })).status).toBe(415);
    const head = () => fetch(`${s.api}/blobs/sha256/${hex}`, { method: 'HEAD', headers: { authorization: `Bearer ${token}` } });
    expect((await head()).status).toBe(404);
    expect((await put(hex, bytes, { authorization: `Bearer ${token}` })).status).toBe(201);
    expect((await put(hex, bytes, { authorization: `Bearer ${token}` })).status).toBe(200);
    expect((await head()).status).toBe(200);
    expect((await head()).headers.get('content-length')).toBe(String(bytes.length));
    expect((await createFunction('uploaded', `blob:sha256:${hex}`)).status).toBe(201);
    await untilReady('uploaded', 'True');
    await served('/uploaded', 'uploaded\n');
    const missing = await api('POST', FN, fnObject('never-uploaded', `blob:sha256:${sha(Buffer.from('never'))}`));
    expect(missing.status).toBe(422);
    expect(missing.body.message).toMatch(/has been uploaded/);
  });

  it('answer 413 to a declared size over the limit without reading it', async () => {
    const status = await new Promise<number>(async (resolve, reject) => {
      const req = http.request(`${s.api}/blobs/sha256/${'a'.repeat(64)}`, { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/wasm', 'content-length': String(300 * 1024 * 1024) } }, async (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
        req.destroy();
      });
      req.on('error', reject);
      req.write(Buffer.alloc(1024));
    });
    expect(status).toBe(413);
  });

  it('skiff apply uploads a module from a folder outside every grant, and the function answers', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'skiff-upload-'));
    writeFileSync(join(dir, 'up.wasm'), await wat(wagiWat('Content-Type: text/plain\n\nfrom the CLI\n')));
    writeFileSync(join(dir, 'up.yaml'), `apiVersion: skiff.dev/v1\nkind: Function\nmetadata: { name: up }\nspec: { module: ./up.wasm }\n---\napiVersion: skiff.dev/v1\nkind: Route\nmetadata: { name: up }\nspec:\n  http:\n    - match: [{ uri: { prefix: /up } }]\n      route: [{ destination: { function: up } }]\n`);
    const r = await cli(['apply', '-f', join(dir, 'up.yaml')], { server: s.api });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('function.skiff.dev/up created\nroute.skiff.dev/up created\n');
    await untilReady('up', 'True');
    await served('/up', 'from the CLI\n');
    const fn = (await api('GET', `${FN}/up`)).body;
    expect(fn.spec.module).toBe(`blob:sha256:${sha(readFileSync(join(dir, 'up.wasm')))}`);
    expect(fn.metadata.annotations['skiff.dev/module-source']).toBe('./up.wasm');
    expect((await cli(['get', 'fn', 'up', '-o', 'wide'], { server: s.api })).stdout).toMatch(/\.\/up\.wasm \(uploaded [0-9a-f]{12}\)/);
    // Without the token the upload is refused and nothing is applied.
    writeFileSync(join(dir, 'up.wasm'), await wat(wagiWat('Content-Type: text/plain\n\nchanged\n')));
    const denied = await cli(['apply', '-f', join(dir, 'up.yaml')], { server: s.api, env: { SKIFF_TOKEN: 'wrong' } });
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/uploading \.\/up\.wasm was refused/);
    expect(denied.stdout).toBe('');
    await served('/up', 'from the CLI\n');
    rmSync(dir, { recursive: true, force: true });
  });

  it('skiff apply --watch rolls out a rebuilt module and stops on SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'skiff-watch-'));
    writeFileSync(join(dir, 'w.wasm'), await wat(wagiWat('Content-Type: text/plain\n\nwatch v1\n')));
    writeFileSync(join(dir, 'w.yaml'), `apiVersion: skiff.dev/v1\nkind: Function\nmetadata: { name: watched }\nspec: { module: ./w.wasm }\n---\napiVersion: skiff.dev/v1\nkind: Route\nmetadata: { name: watched }\nspec:\n  http:\n    - match: [{ uri: { prefix: /watched } }]\n      route: [{ destination: { function: watched } }]\n`);
    const proc = spawn(process.execPath, [BIN, 'apply', '-f', join(dir, 'w.yaml'), '--watch'], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SKIFF_SERVER: s.api, SKIFF_DATA_DIR: s.dataDir } });
    let out = '';
    let err = '';
    proc.stdout!.on('data', (d) => (out += d));
    proc.stderr!.on('data', (d) => (err += d));
    const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
    try {
      await waitFor(() => /watching \d+ files/.test(err), 'the watch to start', 15_000);
      expect(out).toBe('function.skiff.dev/watched created\nroute.skiff.dev/watched created\n');
      await untilReady('watched', 'True');
      const d1 = (await api('GET', `${FN}/watched`)).body.status.digest;
      writeFileSync(join(dir, 'w.next'), await wat(wagiWat('Content-Type: text/plain\n\nwatch v2\n')));
      renameSync(join(dir, 'w.next'), join(dir, 'w.wasm'));
      const d2 = await waitFor(async () => {
        const d = (await api('GET', `${FN}/watched`)).body.status?.digest;
        return d && d !== d1 ? d : undefined;
      }, 'the new digest', 15_000);
      expect(d2).toBe(`sha256:${sha(readFileSync(join(dir, 'w.wasm')))}`);
      await served('/watched', 'watch v2\n');
      await waitFor(async () => /Normal\s+ModuleUpdated/.test((await cli(['describe', 'fn', 'watched'], { server: s.api })).stdout), 'a ModuleUpdated event');
      expect(out).toContain('function.skiff.dev/watched configured\n');
      expect(err).toMatch(/w\.wasm changed: applying again/);
    } finally {
      proc.kill('SIGTERM');
    }
    const t0 = Date.now();
    expect(await exited).toBe(0);
    expect(Date.now() - t0).toBeLessThan(5_000);
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('a restart with fewer grants', () => {
  it('leaves a stored Function on a host path not ready, naming the flag, without reading the path', async () => {
    await s.stop();
    // Removed: a server that looked would say ModuleNotFound; one that checks its grants first does not look.
    rmSync(join(allowed, 'ok.wasm'));
    s = await startSkiff({ demo: true, dataDir: s.dataDir });
    const c = await untilReady('inside', 'False');
    expect(c.reason).toBe('HostPathNotAllowed');
    expect(c.message).toContain('--allow-host-dir');
    expect((await fetch(`${s.gateway}/hello`)).status).toBe(200);
    await served('/up', 'from the CLI\n');
  });
});

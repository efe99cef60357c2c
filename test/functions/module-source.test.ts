import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll,beforeAll, describe, expect, it } from 'vitest';

import { ModuleLoadError, ModuleSource } from '../../src/functions/index.js';
import { v8Message } from '../../src/runtime/inspect.js';
import { HostDirs, UpstreamGuard } from '../../src/security/index.js';
import { BlobStore } from '../../src/store/index.js';

const base = mkdtempSync(join(tmpdir(), 'skiff-modsrc-unit-'));
const allowed = join(base, 'allowed');
mkdirSync(allowed);
writeFileSync(join(allowed, 'm.wasm'), 'module bytes');
const blobs = new BlobStore({ dir: join(base, 'blobs') });
let server: http.Server;
let url = '';

const source = (opts: { maxBytes?: number; fetchTimeoutMs?: number; upstreams?: UpstreamGuard } = {}) =>
  new ModuleSource({ blobs, hostDirs: HostDirs.from([allowed]), upstreams: opts.upstreams ?? UpstreamGuard.from(['127.0.0.1/32']), maxBytes: opts.maxBytes, fetchTimeoutMs: opts.fetchTimeoutMs });

async function failure(p: Promise<unknown>): Promise<ModuleLoadError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(ModuleLoadError);
  return err as ModuleLoadError;
}

beforeAll(async () => {
  server = http.createServer((req, res) => {
    if (req.url === '/big') {
      res.writeHead(200);
      for (let i = 0; i < 64; i++) res.write(Buffer.alloc(1024));
      return res.end();
    }
    if (req.url === '/declared-big') {
      res.writeHead(200, { 'content-length': String(1 << 30) });
      return res.write('x');
    }
    if (req.url === '/hang') return; // never answers
    if (req.url === '/to-link-local') {
      res.writeHead(301, { location: 'http://169.254.169.254/' });
      return res.end('secret redirect body');
    }
    res.writeHead(200);
    res.end('module over http');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

describe('ModuleSource', () => {
  it('reads allowed host files and uploads, checking spec.digest', async () => {
    const m = await source().load(join(allowed, 'm.wasm'));
    expect(Buffer.from(m.bytes).toString()).toBe('module bytes');
    const hex = createHash('sha256').update('module bytes').digest('hex');
    expect(m.digest).toBe(`sha256:${hex}`);
    await blobs.put(hex, Buffer.from('module bytes'));
    expect((await source().load(`blob:sha256:${hex}`, `sha256:${hex}`)).digest).toBe(`sha256:${hex}`);
    expect((await failure(source().load(`blob:sha256:${hex}`, `sha256:${'0'.repeat(64)}`))).reason).toBe('DigestMismatch');
    expect((await failure(source().load(`blob:sha256:${'1'.repeat(64)}`))).reason).toBe('ModuleNotFound');
    expect((await failure(source().load(join(base, 'elsewhere.wasm')))).reason).toBe('HostPathNotAllowed');
    expect((await failure(source().load('m.wasm'))).reason).toBe('HostPathNotAllowed');
    expect(source().watchPath(join(allowed, 'm.wasm'))).toBe(join(allowed, 'm.wasm'));
    expect(source().watchPath('/etc/passwd')).toBeUndefined();
    expect(source().watchPath(`blob:sha256:${hex}`)).toBeUndefined();
  });

  it('fetches allowed URLs within the size limit and the deadline', async () => {
    expect(Buffer.from((await source().load(`${url}/m.wasm`)).bytes).toString()).toBe('module over http');
    expect((await failure(source({ maxBytes: 4096 }).load(`${url}/big`))).reason).toBe('ModuleTooLarge');
    expect((await failure(source({ maxBytes: 4096 }).load(`${url}/declared-big`))).reason).toBe('ModuleTooLarge');
    const t0 = Date.now();
    const slow = await failure(source({ fetchTimeoutMs: 300 }).load(`${url}/hang`));
    expect(slow.reason).toBe('FetchFailed');
    expect(slow.message).toMatch(/longer than 300 ms/);
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it('refuses targets the guard refuses, on the first hop and on redirects, without quoting bodies', async () => {
    const refused = await failure(source({ upstreams: UpstreamGuard.from([]) }).load(`${url}/m.wasm`));
    expect(refused.reason).toBe('UpstreamRefused');
    expect(refused.message).toContain('--allow-upstream');
    const redirected = await failure(source().load(`${url}/to-link-local`));
    expect(redirected.reason).toBe('UpstreamRefused');
    expect(redirected.message).toMatch(/redirect 1 leads to a refused target: 169\.254\.169\.254:80/);
    expect(redirected.message).not.toContain('secret');
  });
});

describe('compile messages', () => {
  it('keep what helps a module author and drop the bytes and names V8 quotes', () => {
    expect(v8Message('WebAssembly.compile(): expected magic word 00 61 73 6d, found 74 68 69 73 @+0')).toBe('not a WebAssembly module (bad magic number)');
    expect(v8Message("WebAssembly.compile(): Duplicate export name 'SECRET' for function 0 and function 1 @+36")).toBe("WebAssembly.compile(): Duplicate export name '…' for function 0 and function 1 @+36");
    expect(v8Message('WebAssembly.compile(): section (code 83, "<unknown>") extends past end of the module (length 69, remaining bytes 17) @+8')).toContain('"<unknown>"');
    expect(v8Message('WebAssembly.compile(): Expected signature definition 0x60, got 0x62 @+11')).toBe('WebAssembly.compile(): Expected signature definition 0x60, got 0x62 @+11');
    expect(v8Message('found 41 42 43 44 instead')).toBe('found other bytes instead');
  });
});

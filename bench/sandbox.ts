/**
 * `npm run bench -- sandbox [--json FILE]`: the sandbox runtime's hot paths, with Node's built-in
 * `node:wasi` doing the same work as the peer.
 *
 * - instantiate_*: request start → first guest instruction (`_start` about to run), small (~200 B)
 *   and large (~1.5 MB) modules; Skiff reuses warm instances reset from a post-init snapshot.
 * - wagi_*: end-to-end HTTP requests through a minimal WAGI server on 127.0.0.1 (env from the request,
 *   stdout parsed as a CGI response); Skiff runs guests on its worker pool, the peer on the event loop.
 * - sandboxes_per_gib: live idle sandboxes per GiB of RSS (each with its own WASI host and instance).
 */
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, ftruncateSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { WASI } from 'node:wasi';
import { Pool } from 'undici';
import { emit, parseBenchArgs, percentile, type Figures } from './lib/report.js';
import { Runtime } from '../src/runtime/index.js';
import { SandboxHost, type RunSpec } from '../src/runtime/sandbox.js';
import { WasiHost } from '../src/runtime/wasi/host.js';
import { Wasm, type WasmInstance, type WasmModule } from '../src/runtime/wasm-api.js';
import { commandWat, helloWat, wat2wasm } from '../test/runtime/helpers/wat.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const { json } = parseBenchArgs();

const WAGI_BODY = 'content-type: text/plain\n\nHello from WAGI\n';

/** largeWat builds a ~1.5 MB command: thousands of small functions plus a data segment. */
function largeWat(): string {
  const funcs: string[] = [];
  for (let i = 0; i < 3500; i++) {
    let expr = `(i32.const ${i})`;
    for (let k = 0; k < 40; k++) expr = `(i32.add ${expr} (i32.mul (local.get 0) (i32.const ${(i * 31 + k) % 1000})))`;
    funcs.push(`(func (export "f${i}") (param i32) (result i32) ${expr})`);
  }
  let data = '';
  for (let i = 0; i < 600_000; i++) data += '\\' + ((i * 7919) & 0xff).toString(16).padStart(2, '0');
  return commandWat({ imports: ['fd_write', 'proc_exit'], memory: '16', data: `(data (i32.const 1024) "${data}")`, extra: funcs.join('\n'), start: '(call $proc_exit (i32.const 0))' });
}

function spec(): RunSpec {
  return { args: ['x'], env: { REQUEST_METHOD: 'GET' }, dirs: [], clock: 'real', random: 'real', maxOutputBytes: 1 << 20, memoryBytes: 256 << 20 };
}

function sorted(xs: number[]): Float64Array {
  return Float64Array.from(xs).sort();
}

/** Skiff: instantiate-to-first-instruction as the worker measures it (same SandboxHost code, here in-process). */
function skiffInstantiate(module: WasmModule, iterations: number, reuse = true): Float64Array {
  const host = new SandboxHost();
  const out: number[] = [];
  for (let i = 0; i < iterations + 200; i++) {
    const r = host.run('bench', module, reuse, spec());
    if (!r.ok) throw new Error(r.message);
    if (i >= 200) out.push(r.instantiateUs);
  }
  return sorted(out);
}

/** node:wasi: a fresh WASI object and instance per request, up to `start()`. */
function nodeWasiInstantiate(module: WasmModule, iterations: number, stdoutFd: number): Float64Array {
  const out: number[] = [];
  for (let i = 0; i < iterations + 200; i++) {
    const t0 = process.hrtime.bigint();
    const wasi = new WASI({ version: 'preview1', args: ['x'], env: { REQUEST_METHOD: 'GET' }, stdout: stdoutFd, returnOnExit: true });
    const inst = new Wasm.Instance(module, wasi.getImportObject() as never);
    const us = Number(process.hrtime.bigint() - t0) / 1000;
    wasi.start(inst as never);
    if (i >= 200) out.push(us);
  }
  return sorted(out);
}

/** Live idle sandboxes per GiB: RSS growth while holding `n` instantiated sandboxes. */
function perGiB(n: number, make: () => unknown): number {
  const keep: unknown[] = [];
  gc();
  const before = process.memoryUsage().rss;
  for (let i = 0; i < n; i++) keep.push(make());
  gc();
  const after = process.memoryUsage().rss;
  const per = Math.max(1, (after - before) / n);
  keep.length = 0;
  gc();
  return Math.floor(2 ** 30 / per);
}

async function httpLoad(port: number, total: number, concurrency: number): Promise<{ rps: number; p50: number; p99: number }> {
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: concurrency, pipelining: 1 });
  const lat: number[] = [];
  let next = 0;
  const one = async () => {
    while (next < total) {
      next++;
      const t0 = process.hrtime.bigint();
      const res = await pool.request({ path: '/hello?name=x', method: 'GET' });
      const body = await res.body.text();
      if (res.statusCode !== 200 || !body.includes('Hello')) throw new Error(`bad response ${res.statusCode}: ${body}`);
      lat.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
  };
  // Warm-up.
  await Promise.all(Array.from({ length: concurrency }, async () => {
    for (let i = 0; i < 20; i++) await (await pool.request({ path: '/hello', method: 'GET' })).body.text();
  }));
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, one));
  const secs = (performance.now() - t0) / 1000;
  await pool.close();
  const s = sorted(lat);
  return { rps: total / secs, p50: percentile(s, 50), p99: percentile(s, 99) };
}

function cgiEnv(req: IncomingMessage): Record<string, string> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  return { REQUEST_METHOD: req.method ?? 'GET', PATH_INFO: url.pathname, QUERY_STRING: url.search.slice(1), SERVER_PROTOCOL: 'HTTP/1.1' };
}

function respond(res: ServerResponse, out: string): void {
  const i = out.indexOf('\n\n');
  const head = out.slice(0, i);
  const type = /content-type:\s*(.*)/i.exec(head)?.[1] ?? 'text/plain';
  res.writeHead(200, { 'content-type': type });
  res.end(out.slice(i + 2));
}

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => Promise<void> | void) {
  const server = createServer((req, res) => {
    Promise.resolve(handler(req, res)).catch((err) => {
      res.writeHead(500);
      res.end(String(err));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return { port, close: () => new Promise<void>((r) => server.close(() => r())) };
}

async function main(): Promise<void> {
  const small = await wat2wasm(helloWat(WAGI_BODY));
  const large = await wat2wasm(largeWat());
  process.stderr.write(`small module ${small.length} B, large module ${(large.length / 1e6).toFixed(2)} MB\n`);
  const smallMod = await Wasm.compile(small);
  const t0 = performance.now();
  const largeMod = await Wasm.compile(large);
  const compileLargeMs = performance.now() - t0;
  const tmp = mkdtempSync(join(tmpdir(), 'skiff-bench-'));
  const outPath = join(tmp, 'stdout');
  const outFd = openSync(outPath, 'a+');

  const figures: Figures = {};
  const peer: Figures = {};

  // Instantiate to first instruction.
  const si = skiffInstantiate(smallMod, 20_000);
  const sl = skiffInstantiate(largeMod, 2_000);
  figures.instantiate_small_p50_us = percentile(si, 50);
  figures.instantiate_small_p99_us = percentile(si, 99);
  figures.instantiate_large_p50_us = percentile(sl, 50);
  figures.instantiate_large_p99_us = percentile(sl, 99);
  figures.compile_large_ms = compileLargeMs;
  // Without warm-instance reuse (every request a new WebAssembly.Instance), for comparison.
  const sf = skiffInstantiate(smallMod, 5_000, false);
  const lf = skiffInstantiate(largeMod, 1_000, false);
  figures.instantiate_small_fresh_p99_us = percentile(sf, 99);
  figures.instantiate_large_fresh_p99_us = percentile(lf, 99);
  const ni = nodeWasiInstantiate(smallMod, 20_000, outFd);
  const nl = nodeWasiInstantiate(largeMod, 2_000, outFd);
  peer.instantiate_small_p50_us = percentile(ni, 50);
  peer.instantiate_small_p99_us = percentile(ni, 99);
  peer.instantiate_large_p50_us = percentile(nl, 50);
  peer.instantiate_large_p99_us = percentile(nl, 99);

  // Live idle sandboxes per GiB (the process can also hold at most ~12,800 instances: V8 reserves
  // 10 GiB of address space per memory).
  figures.sandboxes_per_gib = perGiB(3000, () => {
    const host = new WasiHost({ args: ['x'], env: {} });
    const inst: WasmInstance = new Wasm.Instance(smallMod, host.imports());
    return [host, inst];
  });
  peer.sandboxes_per_gib = perGiB(3000, () => {
    const wasi = new WASI({ version: 'preview1', args: ['x'], env: {}, returnOnExit: true });
    return [wasi, new Wasm.Instance(smallMod, wasi.getImportObject() as never)];
  });

  // End-to-end WAGI over HTTP.
  const rt = new Runtime({ workers: 2 });
  const info = await rt.compile(small);
  const skiffSrv = await serve(async (req, res) => {
    const r = await rt.invoke(info.digest, { args: ['/hello'], env: cgiEnv(req), poolKey: 'bench/hello' });
    respond(res, new TextDecoder().decode(r.stdout));
  });
  const s = await httpLoad(skiffSrv.port, 4000, 8);
  await skiffSrv.close();
  await rt.close();
  figures.wagi_rps = s.rps;
  figures.wagi_p50_us = s.p50;
  figures.wagi_p99_us = s.p99;

  const peerSrv = await serve((req, res) => {
    ftruncateSync(outFd, 0);
    const wasi = new WASI({ version: 'preview1', args: ['/hello'], env: cgiEnv(req), stdout: outFd, returnOnExit: true });
    const inst = new Wasm.Instance(smallMod, wasi.getImportObject() as never);
    wasi.start(inst as never);
    respond(res, readFileSync(outPath, 'utf8'));
  });
  const p = await httpLoad(peerSrv.port, 4000, 8);
  await peerSrv.close();
  peer.wagi_rps = p.rps;
  peer.wagi_p50_us = p.p50;
  peer.wagi_p99_us = p.p99;

  closeSync(outFd);
  rmSync(tmp, { recursive: true, force: true });
  emit({ name: 'sandbox', figures, peers: { node_wasi: peer } }, json);
}

await main();

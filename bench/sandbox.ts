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
import { spawnSync } from 'node:child_process';
import { closeSync, ftruncateSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { WASI } from 'node:wasi';

import { Pool } from 'undici';

import { Runtime, RuntimeError } from '../src/runtime/index.js';
import { type RunSpec,SandboxHost } from '../src/runtime/sandbox.js';
import { HostSwitch, WasiHost } from '../src/runtime/wasi/host.js';
import { Wasm, type WasmInstance, type WasmModule } from '../src/runtime/wasm-api.js';
import { commandWat, helloWat, wat2wasm } from '../test/runtime/helpers/wat.js';

import { emit, type Figures,parseBenchArgs, percentile } from './lib/report.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const { json } = parseBenchArgs(process.argv.slice(2).filter((a) => !a.startsWith('--peer')));

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
    if (i % 2000 === 1999) gc();
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
    // Untimed, and done the same way for Skiff: without it node:wasi itself crashes (SIGSEGV) after
    // ~12k instances, when V8's address space for Wasm memories runs out before the GC frees any.
    if (i % 2000 === 1999) gc();
    const t0 = process.hrtime.bigint();
    const wasi = new WASI({ version: 'preview1', args: ['x'], env: { REQUEST_METHOD: 'GET' }, stdout: stdoutFd, returnOnExit: true });
    const inst = new Wasm.Instance(module, wasi.getImportObject() as never);
    const us = Number(process.hrtime.bigint() - t0) / 1000;
    wasi.start(inst as never);
    if (i >= 200) out.push(us);
  }
  return sorted(out);
}

/**
 * Live idle sandboxes per GiB: growth of resident memory while holding `n` instantiated sandboxes.
 * RSS can also shrink while the heap grows (the GC returns pages), so the larger of the RSS and the
 * JS-heap growth is taken.
 */
function perGiB(n: number, make: () => unknown): number {
  const keep: unknown[] = [];
  gc();
  gc();
  const before = process.memoryUsage();
  for (let i = 0; i < n; i++) keep.push(make());
  gc();
  gc();
  const after = process.memoryUsage();
  const per = Math.max(1024, (after.rss - before.rss) / n, (after.heapUsed - before.heapUsed) / n);
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

/**
 * peerFigures measures node:wasi. It runs in a child process: node:wasi in Node 20 crashes the whole
 * process (SIGSEGV, or a V8 fatal error) after a few thousand instantiations, so the parent retries.
 */
async function peerFigures(smallPath: string, largePath: string): Promise<Figures> {
  const small = readFileSync(smallPath);
  const smallMod = await Wasm.compile(small);
  const largeMod = await Wasm.compile(readFileSync(largePath));
  const tmp = mkdtempSync(join(tmpdir(), 'skiff-bench-peer-'));
  const outPath = join(tmp, 'stdout');
  const outFd = openSync(outPath, 'a+');
  const peer: Figures = {};
  const ni = nodeWasiInstantiate(smallMod, 3_000, outFd);
  const nl = nodeWasiInstantiate(largeMod, 500, outFd);
  peer.instantiate_small_p50_us = percentile(ni, 50);
  peer.instantiate_small_p99_us = percentile(ni, 99);
  peer.instantiate_large_p50_us = percentile(nl, 50);
  peer.instantiate_large_p99_us = percentile(nl, 99);
  peer.sandboxes_per_gib = perGiB(2000, () => {
    const wasi = new WASI({ version: 'preview1', args: ['x'], env: {}, returnOnExit: true });
    return [wasi, new Wasm.Instance(smallMod, wasi.getImportObject() as never)];
  });
  const peerSrv = await serve((req, res) => {
    ftruncateSync(outFd, 0);
    const wasi = new WASI({ version: 'preview1', args: ['/hello'], env: cgiEnv(req), stdout: outFd, returnOnExit: true });
    const inst = new Wasm.Instance(smallMod, wasi.getImportObject() as never);
    wasi.start(inst as never);
    respond(res, readFileSync(outPath, 'utf8'));
  });
  const p = await httpLoad(peerSrv.port, 2000, 8);
  await peerSrv.close();
  peer.wagi_rps = p.rps;
  peer.wagi_p50_us = p.p50;
  peer.wagi_p99_us = p.p99;
  closeSync(outFd);
  rmSync(tmp, { recursive: true, force: true });
  return peer;
}

/** runPeer runs peerFigures in a child process, retrying when node:wasi crashes it. */
function runPeer(smallPath: string, largePath: string): { figures: Figures; crashes: number } {
  let crashes = 0;
  for (let attempt = 0; attempt < 4; attempt++) {
    const r = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--peer', smallPath, largePath], {
      encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 300_000,
    });
    const line = r.stdout.trim().split('\n').pop() ?? '';
    if (r.status === 0 && line.startsWith('{')) return { figures: JSON.parse(line) as Figures, crashes };
    crashes++;
    process.stderr.write(`node:wasi peer crashed (${r.signal ?? `exit ${r.status}`}); retrying\n`);
  }
  return { figures: {}, crashes };
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
  const smallPath = join(tmp, 'small.wasm');
  const largePath = join(tmp, 'large.wasm');
  writeFileSync(smallPath, small);
  writeFileSync(largePath, large);

  const figures: Figures = {};
  const stage = (name: string) => process.stderr.write(`${name}...\n`);
  stage('instantiate');
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

  stage('idle sandboxes');
  // As a worker holds them: each sandbox has its own WASI host state; the import functions are shared.
  // (V8 reserves 10 GiB of address space per Wasm memory, so one process holds at most ~12,800.)
  const sw = new HostSwitch();
  figures.sandboxes_per_gib = perGiB(3000, () => {
    const host = new WasiHost({ args: ['x'], env: {} });
    const inst: WasmInstance = new Wasm.Instance(smallMod, sw.imports());
    return [host, inst];
  });

  stage('WAGI over HTTP');
  const rt = new Runtime();
  const info = await rt.compile(small);
  const skiffSrv = await serve(async (req, res) => {
    // As the gateway serves a function: on this thread when the runtime may, else on a worker.
    const invocation = { args: ['/hello'], env: cgiEnv(req), poolKey: 'bench/hello' };
    const now = rt.tryInline(info.digest, invocation);
    if (now instanceof RuntimeError) throw now;
    const r = now ?? (await rt.invoke(info.digest, invocation));
    respond(res, new TextDecoder().decode(r.stdout));
  });
  const s = await httpLoad(skiffSrv.port, 4000, 8);
  await skiffSrv.close();
  await rt.close();
  figures.wagi_rps = s.rps;
  figures.wagi_p50_us = s.p50;
  figures.wagi_p99_us = s.p99;

  stage('node:wasi peer (child process)');
  const peer = runPeer(smallPath, largePath);
  peer.figures.crashes = peer.crashes;
  rmSync(tmp, { recursive: true, force: true });
  emit({ name: 'sandbox', figures, peers: { node_wasi: peer.figures } }, json);
}

const peerIdx = process.argv.indexOf('--peer');
if (peerIdx >= 0) {
  process.stdout.write(JSON.stringify(await peerFigures(process.argv[peerIdx + 1]!, process.argv[peerIdx + 2]!)) + '\n');
} else {
  await main();
}

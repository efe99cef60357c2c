/**
 * kubectl benchmark: what a kubectl user waits for on Skiff, next to the same work done with Skiff's
 * own CLI (peer `skiff_cli`, same figure names):
 *
 * - `kubectl_get_ms`: wall time of `kubectl get functions` on 100 Functions (median of --runs, after
 *   one unmeasured run that fills kubectl's discovery cache, as a user's second command finds it).
 * - `apply_1000_objects_s`: `kubectl apply --server-side -f DIR` on a directory of 1,000 manifests
 *   (one Service per file) into an empty namespace.
 * - `watch_fanout_p99_ms`: --watchers concurrent `kubectl get functions -w` processes; one Function is
 *   created at a time and the figure is the p99, over every watcher and change, of the time from
 *   sending the write to the watcher printing the object's name.
 *
 *   npm run bench -- kubectl [--json FILE] [--runs N] [--watchers N] [--changes N]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { Agent, fetch } from 'undici';

import { emit, parseBenchArgs, percentile } from './lib/report.js';
import { BIN, startBenchSkiff } from './lib/skiff.js';
import { ensureTool } from './lib/wrk.js';

const ROOT = resolve(import.meta.dirname, '..');
const { json, rest } = parseBenchArgs();
const opt = (name: string, dflt: number) => {
  const i = rest.indexOf(name);
  return i >= 0 ? Number(rest[i + 1]) || dflt : dflt;
};
const RUNS = opt('--runs', 9);
const WATCHERS = opt('--watchers', 100);
const CHANGES = opt('--changes', 5);

interface Server {
  proc: ChildProcess;
  api: string;
  token: string;
  dataDir: string;
}

/** A command line to time: the tool's binary and the environment that points it at the server. */
interface Tool {
  name: 'kubectl' | 'skiff_cli';
  cmd: string;
  env: NodeJS.ProcessEnv;
  get: string[];
  apply: (dir: string) => string[];
  watch: (ns: string) => string[];
}

async function startSkiff(): Promise<Server> {
  return startBenchSkiff(mkdtempSync(join(tmpdir(), 'skiff-bench-kubectl-')));
}

/**
 * The bench's own requests drop idle connections well before the server's 5 s keep-alive timeout:
 * while 100 watchers start, the event loop can stall long enough to reuse a socket the server closed.
 */
const dispatcher = new Agent({ keepAliveTimeout: 1000, keepAliveMaxTimeout: 1000 });

async function api(s: Server, method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<{ status: number; body: any }> {
  const res = await fetch(s.api + path, { dispatcher, method, headers: { authorization: `Bearer ${s.token}`, 'content-type': contentType }, body: body === undefined ? undefined : Buffer.isBuffer(body) ? body : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text && res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text };
}

const fnBody = (name: string, ns: string, module: string) => ({ apiVersion: 'skiff.dev/v1', kind: 'Function', metadata: { name, namespace: ns }, spec: { module } });

/** timed runs a command to its end; asynchronously, so that this process's idle connections to the server see their close. */
function timed(tool: Tool, args: string[]): Promise<{ ms: number; stdout: string }> {
  return new Promise((resolveRun, reject) => {
    const t0 = performance.now();
    const p = spawn(tool.cmd, args, { env: tool.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code) => {
      const ms = performance.now() - t0;
      if (code !== 0) reject(new Error(`${tool.name} ${args.join(' ')} exited ${code}: ${stderr}`));
      else resolveRun({ ms, stdout });
    });
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** getMs times `get functions` on the namespace holding 100 Functions. */
async function getMs(tool: Tool): Promise<number> {
  const first = await timed(tool, tool.get);
  const lines = first.stdout.trim().split('\n').length;
  if (lines !== 101) throw new Error(`${tool.name} get printed ${lines} lines, expected a header and 100 rows`);
  const samples: number[] = [];
  for (let i = 0; i < RUNS; i++) samples.push((await timed(tool, tool.get)).ms);
  return median(samples);
}

/** applySeconds writes 1,000 one-object manifests into a fresh directory and namespace and applies them. */
async function applySeconds(s: Server, tool: Tool): Promise<number> {
  const ns = `apply-${tool.name.replace('_', '-')}`;
  const dir = join(s.dataDir, ns);
  mkdirSync(dir);
  for (let i = 0; i < 1000; i++)
    writeFileSync(join(dir, `svc-${String(i).padStart(4, '0')}.yaml`), `apiVersion: skiff.dev/v1\nkind: Service\nmetadata:\n  name: svc-${i}\n  namespace: ${ns}\nspec:\n  endpoints: [{ address: 127.0.0.1, port: ${20000 + i} }]\n`);
  const { ms } = await timed(tool, tool.apply(dir));
  const listed = await api(s, 'GET', `/apis/skiff.dev/v1/namespaces/${ns}/services`);
  if (listed.body.items.length !== 1000) throw new Error(`${tool.name} apply left ${listed.body.items.length} objects, expected 1000`);
  return ms / 1000;
}

/**
 * watchFanoutP99 starts the watchers, makes sure each is connected (warm-up objects until every
 * watcher has printed one), then creates CHANGES Functions one at a time, each once every watcher saw the last.
 */
async function watchFanoutP99(s: Server, tool: Tool, module: string): Promise<number> {
  const ns = `fan-${tool.name.replace('_', '-')}`;
  const seen = Array.from({ length: WATCHERS }, () => new Map<string, number>());
  const procs = seen.map((mine) => {
    const p = spawn(tool.cmd, tool.watch(ns), { env: tool.env, stdio: ['ignore', 'pipe', 'ignore'] });
    let buf = '';
    p.stdout!.on('data', (d) => {
      const now = performance.now();
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const name = buf.slice(0, nl).trim().split('/').pop()!;
        buf = buf.slice(nl + 1);
        if (!mine.has(name)) mine.set(name, now);
      }
    });
    return p;
  });
  const until = async (cond: () => boolean, ms: number, what: string) => {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) throw new Error(`${tool.name}: timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  try {
    let warm = 0;
    const connected = () => seen.every((m) => [...m.keys()].some((k) => k.startsWith('warm-')));
    const end = Date.now() + 180_000;
    while (!connected()) {
      if (Date.now() > end) throw new Error(`${tool.name}: only ${seen.filter((m) => m.size).length} of ${WATCHERS} watchers connected`);
      await api(s, 'POST', `/apis/skiff.dev/v1/namespaces/${ns}/functions`, fnBody(`warm-${warm++}`, ns, module));
      await new Promise((r) => setTimeout(r, 1000));
    }
    const latencies: number[] = [];
    for (let i = 0; i < CHANGES; i++) {
      const name = `change-${i}`;
      const t0 = performance.now();
      const r = await api(s, 'POST', `/apis/skiff.dev/v1/namespaces/${ns}/functions`, fnBody(name, ns, module));
      if (r.status !== 201) throw new Error(`write failed: ${r.status}`);
      await until(() => seen.every((m) => m.has(name)), 30_000, `every watcher to see ${name}`);
      for (const m of seen) latencies.push(m.get(name)! - t0);
      // Let the controller's status write for this Function settle before the next change.
      await new Promise((r) => setTimeout(r, 300));
    }
    return percentile(latencies.sort((a, b) => a - b), 99);
  } finally {
    for (const p of procs) p.kill('SIGTERM');
  }
}

async function main(): Promise<void> {
  if (!existsSync(join(ROOT, 'dist', 'cli', 'main.js'))) throw new Error('run `npm run build` first');
  const haveKubectl = ensureTool('kubectl');
  if (!haveKubectl) process.stderr.write('kubectl is not available: only the skiff_cli figures are measured\n');
  const s = await startSkiff();
  const figures: Record<string, number> = {};
  const peers: Record<string, Record<string, number>> = { skiff_cli: {} };
  try {
    const wasm = readFileSync(join(ROOT, 'examples', 'hello', 'hello.wasm'));
    const hex = createHash('sha256').update(wasm).digest('hex');
    await api(s, 'PUT', `/blobs/sha256/${hex}`, wasm, 'application/wasm');
    const module = `blob:sha256:${hex}`;
    // kubectl's default --validate=strict needs /openapi/v2; without it, validation is left to the server.
    const openapi = (await api(s, 'GET', '/openapi/v2')).status === 200;
    if (!openapi) process.stderr.write('the server has no /openapi/v2: kubectl apply runs with --validate=false\n');
    const kubectl: Tool = {
      name: 'kubectl',
      cmd: 'kubectl',
      env: { PATH: process.env.PATH, KUBECONFIG: join(s.dataDir, 'kubeconfig'), HOME: mkdtempSync(join(tmpdir(), 'skiff-bench-kubectl-home-')) },
      get: ['get', 'functions', '-n', 'get100'],
      apply: (dir) => ['apply', '--server-side', '-f', dir, ...(openapi ? [] : ['--validate=false'])],
      watch: (ns) => ['get', 'functions', '-n', ns, '-w', '--watch-only', '-o', 'name'],
    };
    const skiff: Tool = {
      name: 'skiff_cli',
      cmd: BIN,
      env: { ...process.env, SKIFF_SERVER: s.api, SKIFF_DATA_DIR: s.dataDir },
      get: ['get', 'functions', '-n', 'get100'],
      apply: (dir) => ['apply', '-f', dir],
      watch: (ns) => ['get', 'functions', '-n', ns, '-w', '-o', 'name'],
    };
    const tools = haveKubectl ? [kubectl, skiff] : [skiff];
    const put = (tool: Tool, figure: string, v: number) => {
      if (tool.name === 'kubectl') figures[figure] = v;
      else peers.skiff_cli![figure] = v;
    };

    for (let i = 0; i < 100; i += 10) await Promise.all(Array.from({ length: 10 }, (_, j) => api(s, 'POST', '/apis/skiff.dev/v1/namespaces/get100/functions', fnBody(`fn-${i + j}`, 'get100', module))));
    // Measure once the controller has loaded every module, so its status writes do not share the time.
    for (const end = Date.now() + 60_000; Date.now() < end; await new Promise((r) => setTimeout(r, 200))) {
      const l = await api(s, 'GET', '/apis/skiff.dev/v1/namespaces/get100/functions');
      if (l.body.items.every((o: { status?: { digest?: string } }) => o.status?.digest)) break;
    }
    for (const t of tools) put(t, 'kubectl_get_ms', await getMs(t));
    for (const t of tools) put(t, 'apply_1000_objects_s', await applySeconds(s, t));
    for (const t of tools) put(t, 'watch_fanout_p99_ms', await watchFanoutP99(s, t, module));
  } finally {
    s.proc.kill('SIGTERM');
    await new Promise((r) => s.proc.once('exit', r));
    await dispatcher.close();
  }
  emit({ name: 'kubectl', figures, peers }, json);
}

main().catch((err) => {
  process.stderr.write(`bench kubectl failed: ${err.stack ?? err}${err.cause ? `\ncause: ${err.cause.stack ?? err.cause}` : ''}\n`);
  process.exit(1);
});

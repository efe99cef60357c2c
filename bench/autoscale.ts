/**
 * `npm run bench -- autoscale [--json FILE] [--hours N] [--functions N] [--container-hours N] [--container-functions N] [--seed N]`:
 * production-like serverless traffic replayed through a real Skiff (in this process: its gateway,
 * activator and autoscaler) on a compressed clock, once per scaling policy, side by side.
 *
 * The trace (bench/lib/serverless-trace.ts, seeded) has heavy-tailed popularity, daily and weekly
 * cycles, timers, bursts and long idle gaps. Its first two weeks become each Function's request
 * history (what a Skiff that had served them would have stored); the next `--hours` are replayed:
 * the clock advances by the autoscaler's 2 s tick, the requests that fall in each tick are sent to the
 * gateway over loopback, then the autoscaler decides. A request waits for a replica as a user's would
 * (the clock stands still meanwhile), so a cold start costs what it costs on this machine.
 *
 * Every trace Function is deployed once per policy, all at the same time:
 * - `skiff`: Skiff's default KPA with predictive pre-warming (Holt-Winters on the history);
 * - `keepalive_10m`: a replica kept for 10 minutes after the last request (the common FaaS default),
 *   as `scaleDownDelay: 10m` with a 6 s stable window;
 * - `kpa`: Knative's KPA with its default settings (concurrency 100, 60 s stable window, 30 s grace);
 * - `hpa`: an autoscaling/v2 HorizontalPodAutoscaler with Kubernetes' default behavior (15 s sync,
 *   5 minute scale-down stabilization), on requests per second per replica, with minReplicas 0 (how
 *   KEDA runs HPA for scale to zero; its default cooldown is the same 5 minutes).
 * The peers run through the same gateway and activator; only the decisions differ.
 *
 * Figures, per policy (the peers under `peers`, Skiff's own at the top level):
 * - cold_start_fraction: requests that found no ready replica / requests;
 * - replica_seconds: replicas held (Wasm: warm instances; containers: running replicas) × trace seconds;
 * - p99_ms: request latency through the gateway, real time;
 * - dropped_requests: requests that got no 200.
 * And scale_from_zero_wasm_ms / scale_from_zero_container_ms: one request to a Function at zero
 * replicas → its answer (median of several).
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import pino from 'pino';

import { ManualClock } from '../src/autoscaling/clock.js';
import { IdleHistogram, RequestHistory } from '../src/autoscaling/forecast/index.js';
import { HostDirs } from '../src/security/index.js';
import { Skiff } from '../src/server/skiff.js';

import { emit, type Figures, parseBenchArgs, percentile, positiveOption } from './lib/report.js';
import { bucketCounts, generateTrace, type TraceFunction } from './lib/serverless-trace.js';
import { type BenchObject, readyCondition, SkiffApi } from './lib/skiff-api.js';

const ROOT = resolve(import.meta.dirname, '..');
const { json, rest } = parseBenchArgs();
const opt = (name: string, dflt: number) => positiveOption(rest, name, dflt);
const HOURS = opt('--hours', 24);
const FUNCTIONS = opt('--functions', 8);
const CONTAINER_HOURS = opt('--container-hours', 3);
const CONTAINER_FUNCTIONS = opt('--container-functions', 3);
const SEED = opt('--seed', 17);
/** --detail prints each trace Function's figures per policy. */
const DETAIL = rest.includes('--detail');

const DAY = 24 * 3600_000;
const TICK_MS = 2_000;
const HISTORY_DAYS = 14;
/** Monday 2026-11-02 00:00 UTC: history starts here, the replay two weeks later, on a Monday. */
const TRACE_START = Date.UTC(2026, 10, 2);
const REPLAY_START = TRACE_START + HISTORY_DAYS * DAY;
const POLICIES = ['skiff', 'keepalive_10m', 'kpa', 'hpa'] as const;
type Policy = (typeof POLICIES)[number];
const TARGET_RPS = 50;

const figures: Figures = {};
const peers: Record<string, Figures> = {};
const notes: string[] = [];

function stage(s: string): void {
  process.stderr.write(`autoscale: ${s}\n`);
}

function scaleFor(policy: Policy): Record<string, unknown> {
  switch (policy) {
    case 'skiff':
      return { minScale: 0, metric: 'rps', target: TARGET_RPS, predictive: { enabled: true } };
    case 'keepalive_10m':
      return { minScale: 0, metric: 'rps', target: TARGET_RPS, stableWindow: '6s', scaleDownDelay: '10m', scaleToZeroGracePeriod: '0s' };
    case 'kpa':
      return { minScale: 0 };
    case 'hpa':
      return { minScale: 0 };
  }
}

function hpaFor(name: string): BenchObject {
  return {
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: { name, namespace: 'default' },
    spec: {
      scaleTargetRef: { apiVersion: 'skiff.dev/v1', kind: 'Function', name },
      minReplicas: 0,
      maxReplicas: 10,
      metrics: [{ type: 'Pods', pods: { metric: { name: 'requests_per_second' }, target: { type: 'AverageValue', averageValue: String(TARGET_RPS) } } }],
    },
  };
}

/** route sends /NAME to the Function; the example image answers on its CGI path. */
function route(name: string, rewrite?: string): BenchObject {
  return { apiVersion: 'skiff.dev/v1', kind: 'Route', metadata: { name, namespace: 'default' }, spec: { http: [{ match: [{ uri: { prefix: `/${name}` } }], ...(rewrite ? { rewrite: { uri: rewrite } } : {}), route: [{ destination: { function: name } }] }] } };
}

const CGI = '/cgi-bin/hello';

interface Deployed {
  name: string;
  policy: Policy;
  trace: TraceFunction;
}

interface PolicyTally {
  requests: number;
  coldStarts: number;
  replicaMs: number;
  dropped: number;
  latencies: number[];
}

interface Run {
  skiff: Skiff;
  api: SkiffApi;
  clock: ManualClock;
  gateway: string;
}

async function startSkiff(tmp: string, allow: string[]): Promise<Run> {
  const clock = new ManualClock(REPLAY_START);
  const dataDir = join(tmp, 'data');
  const skiff = await Skiff.start({
    dataDir,
    api: { host: '127.0.0.1', port: 0 },
    gateway: { host: '127.0.0.1', port: 0 },
    logger: pino({ level: 'silent' }),
    hostDirs: HostDirs.from(allow),
    // The compressed clock packs a day's status writes and Events into minutes: on SQLite their fsyncs
    // would stall the one event loop the client shares, so the replay keeps the store in memory.
    store: 'memory://',
    autoscalerTickMs: 0,
    autoscalerClock: clock,
    accessLog: false,
  });
  const token = readFileSync(join(dataDir, 'token'), 'utf8').trim();
  return { skiff, clock, api: new SkiffApi(`http://127.0.0.1:${skiff.apiAddress.port}`, token), gateway: `http://127.0.0.1:${skiff.gatewayAddress.port}` };
}

async function deploy(run: Run, fns: TraceFunction[], prefix: string, spec: (name: string) => Record<string, unknown>, rewrite?: string): Promise<Deployed[]> {
  const out: Deployed[] = [];
  for (const [i, t] of fns.entries()) {
    for (const policy of POLICIES) {
      const name = `${prefix}${i}-${policy.replace('_', '')}`;
      await run.api.apply({ apiVersion: 'skiff.dev/v1', kind: 'Function', metadata: { name, namespace: 'default' }, spec: { ...spec(name), scale: scaleFor(policy) } });
      await run.api.apply(route(name, rewrite));
      if (policy === 'hpa') await run.api.apply(hpaFor(name));
      out.push({ name, policy, trace: t });
    }
  }
  for (const d of out) {
    await run.api.waitFor('Function', d.name, 'loaded', (o) => (readyCondition(o)?.status === 'True' ? true : undefined), 120_000);
  }
  // Each Function's history: the two weeks of the trace before the replay, in the autoscaler's buckets.
  // And its idle times, as the autoscaler records them: the gaps between ticks that saw a request.
  const a = run.skiff.autoscaler!;
  for (const d of out) {
    const h = new RequestHistory();
    const counts = bucketCounts(d.trace.arrivals, 0, h.bucketMs, (HISTORY_DAYS * DAY) / h.bucketMs);
    for (const [i, c] of counts.entries()) if (c > 0) h.add(TRACE_START + i * h.bucketMs, c);
    const idle = new IdleHistogram();
    let last: number | undefined;
    for (const t of d.trace.arrivals) {
      if (t >= HISTORY_DAYS * DAY) break;
      const tick = Math.ceil(t / TICK_MS) * TICK_MS;
      if (last !== undefined && tick - last > TICK_MS) idle.add(tick - last);
      last = tick;
    }
    a.seedHistory('default', d.name, h, idle, last === undefined ? undefined : TRACE_START + last);
  }
  return out;
}

/** request sends one GET through the gateway and resolves with its latency and status. */
async function request(url: string): Promise<{ ms: number; status: number }> {
  const t0 = performance.now();
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(120_000) });
    await res.arrayBuffer();
    return { ms: performance.now() - t0, status: res.status };
  } catch {
    return { ms: performance.now() - t0, status: 0 };
  }
}

/** freshRequest is `request` on a new connection, so a request after an idle period and one right after it cost the same to connect. */
function freshRequest(url: string): Promise<{ ms: number; status: number }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const req = get(url, { agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ ms: performance.now() - t0, status: res.statusCode ?? 0 }));
    });
    req.setTimeout(120_000, () => req.destroy());
    req.on('error', () => resolve({ ms: performance.now() - t0, status: 0 }));
  });
}

/** replay sends the trace's requests from `fromMs` for `hours`, tick by tick, and tallies per policy. */
async function replay(run: Run, deployed: Deployed[], hours: number, label: string): Promise<Record<Policy, PolicyTally>> {
  const tally = Object.fromEntries(POLICIES.map((p) => [p, { requests: 0, coldStarts: 0, replicaMs: 0, dropped: 0, latencies: [] as number[] }])) as Record<Policy, PolicyTally>;
  const a = run.skiff.autoscaler!;
  const byName = new Map(deployed.map((d) => [d.name, d]));
  const cursors = deployed.map((d) => {
    // Arrivals are ms from the trace's start; the replay begins after the history.
    let i = 0;
    const from = HISTORY_DAYS * DAY;
    while (i < d.trace.arrivals.length && d.trace.arrivals[i]! < from) i++;
    return { d, i };
  });
  const coldBefore = new Map(a.stats().map((s) => [s.name, s.coldStarts]));
  const perFn = new Map<string, number>();
  const ticks = Math.round((hours * 3600_000) / TICK_MS);
  const t0 = performance.now();
  for (let k = 0; k < ticks; k++) {
    const end = HISTORY_DAYS * DAY + (k + 1) * TICK_MS;
    const pending: Array<Promise<void>> = [];
    for (const c of cursors) {
      while (c.i < c.d.trace.arrivals.length && c.d.trace.arrivals[c.i]! < end) {
        c.i++;
        const t = tally[c.d.policy];
        t.requests++;
        pending.push(
          request(`${run.gateway}/${c.d.name}`).then((r) => {
            t.latencies.push(r.ms);
            if (r.status !== 200) t.dropped++;
          }),
        );
      }
    }
    await Promise.all(pending);
    run.clock.advance(TICK_MS);
    a.tick();
    for (const s of a.stats()) {
      const d = byName.get(s.name);
      if (!d) continue;
      tally[d.policy].replicaMs += s.replicas * TICK_MS;
      if (DETAIL) perFn.set(s.name, (perFn.get(s.name) ?? 0) + s.replicas * TICK_MS);
    }
    if (k % 1800 === 0) stage(`${label}: trace hour ${(k * TICK_MS) / 3600_000} of ${hours} (${Math.round((performance.now() - t0) / 1000)} s)`);
  }
  for (const s of a.stats()) {
    const d = byName.get(s.name);
    if (d) tally[d.policy].coldStarts += s.coldStarts - (coldBefore.get(s.name) ?? 0);
  }
  if (DETAIL) {
    for (const s of a.stats()) {
      const d = byName.get(s.name);
      if (d) process.stdout.write(`detail ${label} ${d.trace.pattern} ${Math.round(d.trace.meanPerDay)}/day ${d.policy}: cold ${s.coldStarts - (coldBefore.get(s.name) ?? 0)} replica_s ${Math.round((perFn.get(s.name) ?? 0) / 1000)}\n`);
    }
  }
  return tally;
}

function report(prefix: string, tally: Record<Policy, PolicyTally>): void {
  for (const p of POLICIES) {
    const t = tally[p];
    const sorted = t.latencies.sort((x, y) => x - y);
    const f: Figures = {
      [`${prefix}cold_start_fraction`]: t.requests ? Math.round((t.coldStarts / t.requests) * 1e6) / 1e6 : 0,
      [`${prefix}replica_seconds`]: Math.round(t.replicaMs / 1000),
      [`${prefix}p99_ms`]: Math.round(percentile(sorted, 99) * 100) / 100,
      [`${prefix}dropped_requests`]: t.dropped,
      [`${prefix}requests`]: t.requests,
      [`${prefix}cold_starts`]: t.coldStarts,
    };
    if (p === 'skiff') Object.assign(figures, f);
    else Object.assign((peers[p] ??= {}), f);
  }
}

/** scaleFromZero times one request to a Function that is at zero, `runs` times, scaling it back to zero between. */
async function scaleFromZero(run: Run, name: string, runs: number, warm: number[] = []): Promise<number[]> {
  const a = run.skiff.autoscaler!;
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    // Quiet for longer than the stable window and the grace: the autoscaler takes it to zero.
    for (let k = 0; k < 300 && (a.stats().find((s) => s.name === name)?.replicas ?? 1) > 0; k++) {
      run.clock.advance(TICK_MS);
      a.tick();
      if (k % 10 === 9) await new Promise((r) => setTimeout(r, 10));
    }
    const st = a.stats().find((s) => s.name === name);
    if (!st || st.replicas > 0) throw new Error(`${name} did not scale to zero`);
    // A container's replica takes a moment to stop after the decision.
    await new Promise((r) => setTimeout(r, 50));
    const r = await freshRequest(`${run.gateway}/${name}`);
    if (r.status !== 200) throw new Error(`${name}: the request at zero answered ${r.status}`);
    samples.push(r.ms);
    // The same request once a replica is there: what the gateway and the client cost anyway.
    const w = await freshRequest(`${run.gateway}/${name}`);
    if (w.status === 200) warm.push(w.ms);
  }
  warm.sort((x, y) => x - y);
  return samples.sort((x, y) => x - y);
}

async function main(): Promise<void> {
  const hello = join(ROOT, 'examples', 'hello', 'hello.wasm');
  if (!existsSync(hello)) throw new Error(`${hello} is missing: run \`npm run build\` first`);
  const tmp = mkdtempSync(join(tmpdir(), 'skiff-bench-autoscale-'));
  const modules = join(tmp, 'modules');
  mkdirSync(modules);
  copyFileSync(hello, join(modules, 'hello.wasm'));
  stage('building the example image (scripts/build-runtime-examples.mjs)');
  const examples = join(tmp, 'examples');
  const built = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build-runtime-examples.mjs'), '--out', examples], { encoding: 'utf8' });
  const image = built.status === 0 ? join(examples, 'image') : undefined;
  if (!image) notes.push(`container runs left out: the example image could not be built: ${(built.stderr || built.stdout).trim().split('\n')[0]}`);

  const trace = generateTrace({ seed: SEED, functions: Math.max(FUNCTIONS, CONTAINER_FUNCTIONS) * 4, days: HISTORY_DAYS + Math.ceil(Math.max(HOURS, CONTAINER_HOURS) / 24) + 1, startMs: TRACE_START, maxArrivals: 2_000_000 });
  // A mix the size of the run: the busiest, and a spread of the others (every pattern present).
  const ranked = [...trace].sort((x, y) => y.meanPerDay - x.meanPerDay).filter((t) => t.meanPerDay <= 20_000);
  const pick = (n: number) => Array.from({ length: n }, (_, i) => ranked[Math.floor((i * ranked.length) / n)]!);
  const wasmFns = pick(FUNCTIONS);
  notes.push(`trace: seed ${SEED}; wasm: ${wasmFns.length} Functions (${wasmFns.map((t) => `${t.pattern} ${Math.round(t.meanPerDay)}/day`).join(', ')}), ${HOURS} h replayed after ${HISTORY_DAYS} days of history`);

  const run = await startSkiff(tmp, [modules, examples]);
  try {
    stage(`deploying ${wasmFns.length} × ${POLICIES.length} Wasm Functions`);
    const wasm = await deploy(run, wasmFns, 'w', () => ({ module: join(modules, 'hello.wasm') }));
    stage(`replaying ${HOURS} trace hours (Wasm)`);
    report('', await replay(run, wasm, HOURS, 'wasm'));

    stage('scale from zero (Wasm)');
    await run.api.apply({ apiVersion: 'skiff.dev/v1', kind: 'Function', metadata: { name: 'zero-wasm', namespace: 'default' }, spec: { module: join(modules, 'hello.wasm'), scale: { minScale: 0, stableWindow: '6s', scaleToZeroGracePeriod: '0s' } } });
    await run.api.apply(route('zero-wasm'));
    await run.api.waitFor('Function', 'zero-wasm', 'loaded', (o) => (readyCondition(o)?.status === 'True' ? true : undefined), 60_000);
    const wzWarm: number[] = [];
    const wz = await scaleFromZero(run, 'zero-wasm', 20, wzWarm);
    figures.scale_from_zero_wasm_ms = percentile(wz, 50);
    figures.scale_from_zero_wasm_p90_ms = percentile(wz, 90);
    figures.warm_request_wasm_ms = percentile(wzWarm, 50);

    if (image) {
      const cfns = pick(CONTAINER_FUNCTIONS);
      notes.push(`container: ${cfns.length} Functions (${cfns.map((t) => `${t.pattern} ${Math.round(t.meanPerDay)}/day`).join(', ')}), ${CONTAINER_HOURS} h replayed`);
      stage(`deploying ${cfns.length} × ${POLICIES.length} container Functions`);
      const cont = await deploy(run, cfns, 'c', () => ({ runtimeClassName: 'container', image, port: 8080, terminationGracePeriodSeconds: 2 }), CGI);
      stage(`replaying ${CONTAINER_HOURS} trace hours (containers)`);
      report('container_', await replay(run, cont, CONTAINER_HOURS, 'container'));
      for (const d of cont) await run.api.delete('Function', d.name).catch(() => {});

      stage('scale from zero (container)');
      await run.api.apply({ apiVersion: 'skiff.dev/v1', kind: 'Function', metadata: { name: 'zero-container', namespace: 'default' }, spec: { runtimeClassName: 'container', image, port: 8080, terminationGracePeriodSeconds: 2, scale: { minScale: 0, initialScale: 0, stableWindow: '6s', scaleToZeroGracePeriod: '0s' } } });
      await run.api.apply(route('zero-container', CGI));
      await run.api.waitFor('Function', 'zero-container', 'prepared', (o) => (readyCondition(o)?.status === 'True' ? true : undefined), 120_000);
      const czWarm: number[] = [];
      const cz = await scaleFromZero(run, 'zero-container', 5, czWarm);
      figures.scale_from_zero_container_ms = percentile(cz, 50);
      figures.warm_request_container_ms = percentile(czWarm, 50);
    }
  } finally {
    await run.skiff.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
  notes.push('peers run through the same gateway and activator as Skiff; their decisions follow their published algorithms with default settings (see the file comment)');
  for (const n of notes) process.stdout.write(`note: ${n}\n`);
  emit({ name: 'autoscale', figures, peers }, json);
}

await main();

/**
 * `npm run bench -- runtime-classes [--json FILE] [--runs N] [--vm-runs N] [--seconds N] [--replicas N]`:
 * the three runtime classes side by side on this host, through a real `skiff up` and its gateway,
 * with bare bubblewrap, runc and QEMU starts of the same image as peers.
 *
 * - *_cold_start_ms: a request to a Function at zero replicas → the first byte of its answer, through
 *   the gateway (median of several runs; *_p90_ms beside it). Containers and VMs: `minScale: 0`, each
 *   run after the Function scaled back to zero (the first run right after it was applied with
 *   `initialScale: 0`). Wasm: a freshly applied module (a digest Skiff never saw) answering its first
 *   request; `wasm_new_instance_us` is the issue's other meaning, one new sandbox instance.
 * - *_cold_start_to_running_ms: the request → the handler reports the replica's process running
 *   (its `startedAt`); the rest of a cold start is readiness probing and the first answer.
 * - *_warm_start_ms: the same single request (a new connection each) when a replica is running.
 * - *_rps, *_p99_us: wrk through the gateway for a few seconds, loopback only, one replica;
 *   *_keepalive_stalls: of 8 keep-alive connections sending requests back to back for as long as
 *   wrk ran, those on which a request got no complete answer within 2 s (wrk counts such a request nowhere).
 * - *_instances_per_gib: what one idle instance costs. Containers: N idle replicas, the larger of their
 *   mean memory cgroup charge and the mean PSS of their processes; VMs: PSS of QEMU per replica;
 *   Wasm: live idle sandboxes in one process (the sandbox bench's `sandboxes_per_gib` with the hello module).
 * - peers bwrap / runc / qemu: cold_start_ms = spawning the tool → first HTTP answer, no Skiff.
 *
 * The report goes to `--json FILE` and always to DATA_DIR/bench/runtime-classes.json for `skiff advise`.
 */
import { type ChildProcess, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

import { Wasm } from '../src/runtime/wasm-api.js';

import { bwrapPeer, httpdFloor, killGroup, type PeerContext, type PeerOutcome, qemuPeer, runcPeer } from './lib/bare-peers.js';
import { descendants, memoryCgroupsOf, ProcessLedger, type ProcInfo, pssBytes } from './lib/procs.js';
import { emit, type Figures, parseBenchArgs, positiveOption } from './lib/report.js';
import { defaultFiguresPath, perGiB, putTimings, summarize, writeReport } from './lib/runtime-figures.js';
import { type BenchSkiff, startBenchSkiff } from './lib/skiff.js';
import { keepAliveStalls, type ReadObject, readyCondition, SkiffApi, timedGet } from './lib/skiff-api.js';
import { sha256, wasmInProcess, withCustomSection } from './lib/wasm-instances.js';
import { ensureTool, wrk } from './lib/wrk.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const ROOT = resolve(import.meta.dirname, '..');
const MiB = 2 ** 20;
const { json, rest } = parseBenchArgs();
const opt = (name: string, dflt: number) => positiveOption(rest, name, dflt);
const RUNS = opt('--runs', 7);
const VM_RUNS = opt('--vm-runs', 3);
const SECONDS = opt('--seconds', 3);
const REPLICAS = opt('--replicas', 10);
const CONNECTIONS = 8;

const figures: Figures = {};
const peers: Record<string, Figures> = {};
/** What was measured and what was left out, printed under the table. */
const notes: string[] = [];
const t0 = performance.now();
const stage = (s: string) => process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(1)}s] ${s}\n`);

/** Bench state that cleanup needs whatever happened. */
interface Run {
  tmp: string;
  ledger: ProcessLedger;
  skiff?: BenchSkiff;
  api?: SkiffApi;
  peerChildren: ChildProcess[];
}

/** skiffChildren are the processes below Skiff: replicas (launchers, bwrap, runc, QEMU) and nothing else. */
const skiffChildren = (s: BenchSkiff): ProcInfo[] => descendants(s.proc.pid!);

async function until<T>(what: string, test: () => T | undefined | Promise<T | undefined>, timeoutMs: number, everyMs = 50): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await test();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

const fnReplicas = (o: ReadObject | undefined) => Number(o?.status?.replicas ?? 0);

/**
 * waitZero waits until a minScale-0 Function has scaled to zero: its status says no replica (the
 * caller saw the status show the one its last request started) and no replica process runs under Skiff.
 */
async function waitZero(run: Run, name: string, timeoutMs: number): Promise<void> {
  await run.api!.waitFor('Function', name, 'scaled to zero', (o) => (fnReplicas(o) === 0 && !(o?.status?.replicaStatuses as unknown[] | undefined)?.length ? true : undefined), timeoutMs, 100);
  await until(`the replica processes of ${name} to end`, () => (skiffChildren(run.skiff!).length === 0 ? true : undefined), 30_000);
}

/** waitApplied waits for a workload Function's Ready condition to settle: undefined when it can serve, else why not. */
async function waitApplied(run: Run, name: string): Promise<string | undefined> {
  return run.api!.waitFor('Function', name, 'prepared', (o) => {
    const c = readyCondition(o);
    if (c?.status === 'True') return '';
    if (c?.status === 'False' && c.reason !== 'ReplicasStarting') return `${c.reason}: ${c.message}`;
    return undefined;
  }, 120_000).then((v) => v || undefined);
}

function routeTo(name: string, prefix: string, rewrite?: string) {
  return { apiVersion: 'skiff.dev/v1', kind: 'Route', metadata: { name, namespace: 'default' }, spec: { hosts: ['*'], http: [{ match: [{ uri: { prefix } }], ...(rewrite ? { rewrite: { uri: rewrite } } : {}), route: [{ destination: { function: name }, weight: 100 }] }] } };
}

function workload(name: string, runtimeClassName: string, image: string, extra: Record<string, unknown>) {
  return { apiVersion: 'skiff.dev/v1', kind: 'Function', metadata: { name, namespace: 'default' }, spec: { runtimeClassName, image, port: 8080, terminationGracePeriodSeconds: 5, ...extra } };
}

const ZERO = { scale: { minScale: 0, initialScale: 0, scaleToZeroGracePeriod: '1s' } };

/** expectAnswer checks that a timed answer is the example's, and returns its time to first byte. */
function answerMs(a: { ttfbMs: number; status: number; body: string }, marker: string, what: string): number {
  if (a.status !== 200 || !a.body.includes(marker)) throw new Error(`${what}: answered ${a.status}: ${a.body.slice(0, 200)}`);
  return a.ttfbMs;
}

/** ColdStarts are a workload class's cold-start samples, with when the handler had its process running. */
interface ColdStarts {
  samples: number[];
  /** Request → the handler reports the replica's process running (status startedAt); the rest is readiness and the answer. */
  toRunning: number[];
  /** Cold requests that got no proper answer (not in the samples). */
  errors: string[];
  applyToFirstByteMs: number;
}

/**
 * coldStarts measures a minScale-0 workload Function: applied with initialScale 0, then `runs` first
 * requests, each after it scaled back to zero. Returns the samples, or why the class cannot run here.
 */
async function coldStarts(run: Run, name: string, cls: string, image: string, runs: number): Promise<ColdStarts | string> {
  const s = run.skiff!;
  await run.api!.apply(routeTo(name, `/${name}`, '/cgi-bin/hello'));
  const applied = performance.now();
  await run.api!.apply(workload(name, cls, image, ZERO));
  const problem = await waitApplied(run, name);
  if (problem) return problem;
  const out: ColdStarts = { samples: [], toRunning: [], errors: [], applyToFirstByteMs: NaN };
  for (let i = 0; i < runs; i++) {
    if (i > 0) await waitZero(run, name, 60_000);
    const wall = Date.now();
    try {
      out.samples.push(answerMs(await timedGet(`${s.gateway}/${name}`), 'hello from a container', `${cls} cold start`));
    } catch (err) {
      // One bad answer is a finding, not the end of the bench: counted, and the next run goes on.
      out.errors.push((err as Error).message.trim());
      continue;
    }
    if (i === 0) out.applyToFirstByteMs = performance.now() - applied;
    const started = await run.api!.waitFor('Function', name, 'showing its replica', (o) => {
      const r = (o?.status?.replicaStatuses as Array<{ startedAt?: string }> | undefined)?.find((x) => x.startedAt);
      return r ? Date.parse(r.startedAt!) : undefined;
    }, 10_000);
    out.toRunning.push(started - wall);
  }
  if (!out.samples.length) throw new Error(`every ${cls} cold start failed: ${out.errors[0]}`);
  return out;
}

/** putErrors sets PREFIX_cold_start_errors and says in the notes what the failed requests got. */
function putErrors(prefix: string, c: ColdStarts): void {
  figures[`${prefix}_cold_start_errors`] = c.errors.length;
  for (const e of new Set(c.errors)) notes.push(`${prefix} cold start: ${c.errors.filter((x) => x === e).length} request(s) failed: ${e}`);
}

async function warmStarts(url: string, n: number, marker: string): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(answerMs(await timedGet(url), marker, 'warm request'));
  return out;
}

/**
 * load runs wrk with a short unmeasured warm-up; undefined without wrk. Eight connections for every
 * class: busybox httpd listens with a backlog of 9, and more concurrent connects than that get SYN
 * retransmits (a 1 s tail) that measure the backlog, not the runtime class.
 */
function load(url: string): { rps: number; p99_us: number } | undefined {
  if (!ensureTool('wrk')) return undefined;
  wrk(url, { connections: CONNECTIONS, threads: 2, seconds: 1 });
  return wrk(url, { connections: CONNECTIONS, threads: 2, seconds: SECONDS });
}

/** throughput sets PREFIX_rps, PREFIX_p99_us and PREFIX_keepalive_stalls (connections of 8 on which a request hung for 2 s). */
async function throughput(prefix: string, url: string): Promise<void> {
  const r = load(url);
  if (r) {
    figures[`${prefix}_rps`] = r.rps;
    figures[`${prefix}_p99_us`] = r.p99_us;
  }
  figures[`${prefix}_keepalive_stalls`] = await keepAliveStalls(url, CONNECTIONS, SECONDS * 1000);
}

async function wasmThroughGateway(run: Run, helloWasm: Buffer): Promise<void> {
  const s = run.skiff!;
  const modules = join(run.tmp, 'modules');
  const fn = (module: string) => ({ apiVersion: 'skiff.dev/v1', kind: 'Function', metadata: { name: 'rc-wasm', namespace: 'default' }, spec: { module, limits: { memory: '16Mi', timeout: '2s' } } });
  await run.api!.apply(routeTo('rc-wasm', '/rc-wasm'));
  const samples: number[] = [];
  // Run 0 is not counted: it waits for the Route to reach the gateway.
  for (let i = 0; i <= RUNS; i++) {
    const bytes = withCustomSection(helloWasm, `${process.pid}-${i}-${Date.now()}`);
    const file = join(modules, `m${i}.wasm`);
    writeFileSync(file, bytes);
    const digest = sha256(bytes);
    await run.api!.apply(fn(file));
    await run.api!.waitFor('Function', 'rc-wasm', `serving ${digest}`, (o) => (o?.status?.digest === digest && readyCondition(o)?.status === 'True' ? true : undefined), 30_000);
    if (i === 0) await until('the rc-wasm Route', async () => ((await timedGet(`${s.gateway}/rc-wasm`)).status === 200 ? true : undefined), 30_000, 100);
    else samples.push(answerMs(await timedGet(`${s.gateway}/rc-wasm`), 'Hello from Skiff', 'wasm cold start'));
  }
  await run.api!.delete('Function', 'rc-wasm');
  await run.api!.delete('Route', 'rc-wasm');
  putTimings(figures, 'wasm_cold_start', samples);
  putTimings(figures, 'wasm_warm_start', await warmStarts(`${s.gateway}/hello`, 20, 'Hello from Skiff'));
  await throughput('wasm', `${s.gateway}/hello`);
}

/** memoryPerReplica reads N idle container replicas: mean cgroup charge and mean PSS of their processes. */
function containerMemory(s: BenchSkiff, name: string, n: number): { chargeBytes: number; pssBytes: number; how: string } {
  const groups = memoryCgroupsOf(s.proc.pid!, `skiff-${s.proc.pid}-default.${name}.`);
  if (groups.length >= n) {
    const charge = groups.reduce((a, g) => a + g.memoryBytes, 0) / groups.length;
    const pss = groups.reduce((a, g) => a + g.pids.reduce((b, p) => b + pssBytes(p), 0), 0) / groups.length;
    return { chargeBytes: charge, pssBytes: pss, how: `${groups.length} replica memory cgroups` };
  }
  // No memory cgroup (rlimits): every process below Skiff belongs to these replicas now.
  const pss = skiffChildren(s).reduce((a, p) => a + pssBytes(p.pid), 0) / n;
  return { chargeBytes: 0, pssBytes: pss, how: 'PSS of the processes below Skiff (no memory cgroups found)' };
}

async function containerClass(run: Run, image: string): Promise<void> {
  const s = run.skiff!;
  const cold = await coldStarts(run, 'rc-container', 'container', image, RUNS);
  if (typeof cold === 'string') {
    notes.push(`container class left out: ${cold}`);
    return;
  }
  putTimings(figures, 'container_cold_start', cold.samples);
  figures.container_cold_start_to_running_ms = summarize(cold.toRunning).median;
  putErrors('container', cold);
  figures.container_apply_to_first_byte_ms = cold.applyToFirstByteMs;
  putTimings(figures, 'container_warm_start', await warmStarts(`${s.gateway}/rc-container`, 20, 'hello from a container'));
  await throughput('container', `${s.gateway}/rc-container`);
  await run.api!.delete('Function', 'rc-container');
  await run.api!.delete('Route', 'rc-container');

  // The data path without the CGI script's fork per request: httpd serving a static file.
  await run.api!.apply(routeTo('rc-static', '/rc-static', '/passwd'));
  await run.api!.apply(workload('rc-static', 'container', image, { command: ['/bin/busybox', 'httpd', '-f', '-p', '8080', '-h', '/etc'] }));
  await run.api!.waitFor('Function', 'rc-static', 'ready', (o) => (Number(o?.status?.readyReplicas ?? 0) >= 1 ? true : undefined), 60_000);
  await throughput('container_static', `${s.gateway}/rc-static`);
  await run.api!.delete('Function', 'rc-static');
  await run.api!.delete('Route', 'rc-static');
  await until('rc-static to stop', () => (skiffChildren(s).length === 0 ? true : undefined), 30_000);

  // runc as a Skiff handler: a RuntimeClass naming it.
  await run.api!.apply({ apiVersion: 'node.k8s.io/v1', kind: 'RuntimeClass', metadata: { name: 'rc-runc' }, handler: 'runc' });
  const runc = await coldStarts(run, 'rc-runc', 'rc-runc', image, Math.max(3, Math.ceil(RUNS / 2)));
  if (typeof runc === 'string') notes.push(`runc handler left out: ${runc}`);
  else {
    putTimings(figures, 'runc_cold_start', runc.samples);
    figures.runc_cold_start_to_running_ms = summarize(runc.toRunning).median;
    putErrors('runc', runc);
  }
  await run.api!.delete('Function', 'rc-runc');
  await run.api!.delete('Route', 'rc-runc');
  await until('rc-runc to stop', () => (skiffChildren(s).length === 0 ? true : undefined), 30_000);

  // Density: N idle replicas.
  await run.api!.apply(workload('rc-density', 'container', image, { terminationGracePeriodSeconds: 2, scale: { minScale: REPLICAS } }));
  await run.api!.waitFor('Function', 'rc-density', `${REPLICAS} ready replicas`, (o) => (Number(o?.status?.readyReplicas ?? 0) >= REPLICAS ? true : undefined), 120_000, 200);
  await new Promise((r) => setTimeout(r, 1_500));
  const m = containerMemory(s, 'rc-density', REPLICAS);
  figures.container_replica_pss_mib = m.pssBytes / MiB;
  if (m.chargeBytes) figures.container_replica_cgroup_mib = m.chargeBytes / MiB;
  figures.container_instances_per_gib = perGiB(Math.max(m.pssBytes, m.chargeBytes));
  notes.push(`container_instances_per_gib: ${REPLICAS} idle bwrap replicas of the example (busybox httpd), ${m.how}: the larger of the mean cgroup charge and the mean PSS; Skiff's own per-replica state is not counted`);
  await run.api!.delete('Function', 'rc-density');
  await until('rc-density to stop', () => (skiffChildren(s).length === 0 ? true : undefined), 60_000);
}

async function vmClass(run: Run, image: string): Promise<void> {
  const s = run.skiff!;
  const cold = await coldStarts(run, 'rc-vm', 'vm', image, VM_RUNS);
  if (typeof cold === 'string') {
    notes.push(`vm class left out: ${cold}`);
    await run.api!.delete('Function', 'rc-vm');
    await run.api!.delete('Route', 'rc-vm');
    return;
  }
  putTimings(figures, 'vm_cold_start', cold.samples);
  figures.vm_cold_start_to_running_ms = summarize(cold.toRunning).median;
  putErrors('vm', cold);
  putTimings(figures, 'vm_warm_start', await warmStarts(`${s.gateway}/rc-vm`, 10, 'hello from a container'));
  await throughput('vm', `${s.gateway}/rc-vm`);
  // Density: two idle VMs, so the pages QEMU's processes share are split between them.
  await run.api!.apply(workload('rc-vm', 'vm', image, { scale: { minScale: 2, initialScale: 0, scaleToZeroGracePeriod: '1s' } }));
  await run.api!.waitFor('Function', 'rc-vm', '2 ready replicas', (o) => (Number(o?.status?.readyReplicas ?? 0) >= 2 ? true : undefined), 120_000, 200);
  await new Promise((r) => setTimeout(r, 2_000));
  const qemus = skiffChildren(s).filter((p) => p.comm.startsWith('qemu'));
  if (qemus.length) {
    const pss = qemus.reduce((a, p) => a + pssBytes(p.pid), 0) / qemus.length;
    figures.vm_replica_pss_mib = pss / MiB;
    figures.vm_instances_per_gib = perGiB(pss);
    notes.push(`vm_instances_per_gib: PSS of ${qemus.length} idle QEMU processes (guest RAM touched so far, TCG code cache, QEMU); each may grow to its guest RAM (256 MiB by default)`);
  }
  await run.api!.delete('Function', 'rc-vm');
  await run.api!.delete('Route', 'rc-vm');
  await until('rc-vm to stop', () => (skiffChildren(s).length === 0 ? true : undefined), 60_000);
}

async function stopSkiff(run: Run): Promise<void> {
  const s = run.skiff;
  if (!s || s.proc.exitCode !== null || s.proc.signalCode !== null) return;
  const exited = new Promise((r) => s.proc.once('exit', r));
  s.proc.kill('SIGTERM');
  const timer = setTimeout(() => s.proc.kill('SIGKILL'), 30_000);
  await exited;
  clearTimeout(timer);
}

function putPeer(name: string, outcome: PeerOutcome): void {
  if ('skipped' in outcome) {
    notes.push(`peer ${name} left out: ${outcome.skipped}`);
    return;
  }
  const sum = summarize(outcome.samplesMs);
  peers[name] = { cold_start_ms: sum.median, cold_start_p90_ms: sum.p90, runs: sum.n };
  notes.push(`peer ${name}: ${outcome.what}; ${sum.n} runs, ${sum.min.toFixed(0)}–${sum.max.toFixed(0)} ms`);
}

/** Phases that failed, each with why; the others still report. */
const failures: string[] = [];

/** phase runs one part of the bench; when it fails, it says so, removes what it applied and the bench goes on. */
async function phase(run: Run, name: string, fn: () => Promise<void>): Promise<void> {
  stage(name);
  try {
    await fn();
  } catch (err) {
    const why = (err as Error).message.split('\n')[0]!;
    failures.push(`${name}: ${why}`);
    stage(`${name} FAILED: ${why}; removing its Functions`);
    await run.api?.deleteAll().catch(() => undefined);
    if (run.skiff) await until('the replicas to stop', () => (skiffChildren(run.skiff!).length === 0 ? true : undefined), 60_000).catch(() => undefined);
  }
}

async function main(run: Run): Promise<void> {
  if (!existsSync(join(ROOT, 'dist', 'cli', 'main.js'))) throw new Error('run `npm run build` first');
  const helloPath = join(ROOT, 'examples', 'hello', 'hello.wasm');
  if (!existsSync(helloPath)) throw new Error(`${helloPath} is missing: run \`npm run build\` first`);
  const hello = readFileSync(helloPath);

  stage('wasm in process: new sandbox instances, idle sandboxes per GiB');
  const w = wasmInProcess(await Wasm.compile(hello), gc);
  Object.assign(figures, w.figures);
  notes.push(w.note);

  stage('building the example image (scripts/build-runtime-examples.mjs)');
  const examples = join(run.tmp, 'examples');
  const built = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build-runtime-examples.mjs'), '--out', examples], { encoding: 'utf8' });
  const image = built.status === 0 ? join(examples, 'image') : undefined;
  if (!image) notes.push(`container and vm classes left out: the example image could not be built: ${(built.stderr || built.stdout).trim().split('\n')[0]}`);

  mkdirSync(join(run.tmp, 'modules'));
  const dataDir = join(run.tmp, 'data');
  stage('starting skiff up');
  run.skiff = await startBenchSkiff(dataDir, { demo: true, args: ['--allow-host-dir', join(run.tmp, 'modules'), '--allow-host-dir', examples] });
  run.api = new SkiffApi(run.skiff.api, run.skiff.token);

  await phase(run, 'wasm through the gateway', () => wasmThroughGateway(run, hello));
  if (image) {
    await phase(run, 'container class (bwrap, then runc)', () => containerClass(run, image));
    await phase(run, 'vm class', () => vmClass(run, image));
  }
  stage('stopping skiff');
  await stopSkiff(run);

  const rootfsDir = join(dataDir, 'rootfs');
  const rootfs = existsSync(rootfsDir) ? readdirSync(rootfsDir).filter((n) => n.startsWith('sha256-')).map((n) => join(rootfsDir, n, 'root'))[0] : undefined;
  if (!rootfs) notes.push('peers left out: no unpacked example image');
  else {
    const ctx = (runs: number, sub: string): PeerContext => {
      const dir = join(run.tmp, sub);
      mkdirSync(dir, { recursive: true });
      return { rootfs, dir, runs, track: (c) => run.peerChildren.push(c) };
    };
    stage('peer: bare bwrap');
    putPeer('bwrap', await bwrapPeer(ctx(RUNS, 'bwrap')));
    stage('peer: busybox httpd on the host (throughput floor)');
    const floor = await httpdFloor(ctx(1, 'floor'), load);
    if ('skipped' in floor) notes.push(`peer busybox_httpd left out: ${floor.skipped}`);
    else {
      peers.busybox_httpd = floor;
      notes.push('peer busybox_httpd: the same httpd chrooted into the image on a host loopback port, no sandbox, no gateway: the floor for container_rps (CGI) and container_static_rps');
    }
    // runc's container root (host uid 65534) must be able to reach the bundle below the bench's directory.
    chmodSync(run.tmp, 0o755);
    stage('peer: bare runc');
    putPeer('runc', await runcPeer(ctx(Math.max(3, Math.ceil(RUNS / 2)), 'runc')));
    // The vm handler boots an uncompressed vmlinux it unpacked into its cache (PVH entry): the same
    // file makes the fair peer; the bzImage as is is the boot the issue timed.
    const vmCache = join(dataDir, 'vm');
    const vmlinux = existsSync(vmCache) ? readdirSync(vmCache).find((n) => n.startsWith('vmlinux-')) : undefined;
    if (vmlinux) {
      stage('peer: bare qemu (the vm handler\'s vmlinux)');
      putPeer('qemu', await qemuPeer(ctx(VM_RUNS, 'qemu'), { file: join(vmCache, vmlinux), what: `the vm handler's unpacked ${vmlinux} (PVH)` }));
      stage('peer: bare qemu (bzImage)');
      putPeer('qemu_bzimage', await qemuPeer(ctx(VM_RUNS, 'qemu-bz')));
    } else {
      stage('peer: bare qemu');
      putPeer('qemu', await qemuPeer(ctx(VM_RUNS, 'qemu')));
    }
  }
}

/** cleanup stops whatever is still running, then checks that nothing the bench started is left. */
async function cleanup(run: Run): Promise<string[]> {
  for (const c of run.peerChildren) killGroup(c);
  await stopSkiff(run).catch(() => undefined);
  await new Promise((r) => setTimeout(r, 500));
  run.ledger.stop();
  const problems: string[] = [];
  for (const p of run.ledger.leftovers()) {
    problems.push(`process left running: ${p.pid} ${p.comm} ${p.cmd.slice(0, 160)}`);
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  if (run.skiff) for (const g of memoryCgroupsOf(process.pid, `skiff-${run.skiff.proc.pid}-`)) problems.push(`cgroup left behind: ${g.dir}`);
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(run.tmp));
  for (const m of mounts) problems.push(`mount left behind: ${m}`);
  if (!mounts.length) rmSync(run.tmp, { recursive: true, force: true });
  return problems;
}

const run: Run = { tmp: mkdtempSync(join(tmpdir(), 'skiff-rc-bench-')), ledger: undefined as unknown as ProcessLedger, peerChildren: [] };
run.ledger = new ProcessLedger(process.pid, run.tmp);
run.ledger.start();
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    process.stderr.write(`\n${sig}: stopping what the bench started\n`);
    void cleanup(run).finally(() => process.exit(130));
  });
}
// An error thrown outside main's promise chain (a child process's 'error' event) still cleans up.
process.once('uncaughtException', (err) => {
  process.stderr.write(`bench runtime-classes failed: ${err.stack ?? err}\nstopping what the bench started\n`);
  void cleanup(run).finally(() => process.exit(1));
});
let failed: Error | undefined;
try {
  await main(run);
} catch (err) {
  failed = err as Error;
}
const problems = await cleanup(run);
stage(`done; ${run.ledger.count} processes were started, ${problems.length ? `${problems.length} left behind` : 'none left behind'}`);
const report = { name: 'runtime-classes', figures, peers };
emit(report, undefined);
for (const n of notes) process.stdout.write(`- ${n}\n`);
for (const f of failures) process.stdout.write(`FAILED: ${f}\n`);
for (const p of problems) process.stdout.write(`LEAK: ${p}\n`);
if (failed) process.stderr.write(`bench runtime-classes failed: ${failed.stack ?? failed}\n`);
// A run that failed part-way still writes --json (asked for); the file skiff advise reads keeps the
// last complete run's figures instead.
const complete = !failed && failures.length === 0;
for (const p of writeReport(report, complete ? [json, defaultFiguresPath(ROOT)] : [json])) process.stdout.write(`figures written to ${p}\n`);
if (!complete) process.stdout.write(`not written to ${defaultFiguresPath(ROOT)}: the run was not complete\n`);
process.exit(failed || failures.length || problems.length ? 1 : 0);

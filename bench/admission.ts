// Admission benchmark: one constraint and twenty constraints evaluated in process against a Pod with
// 20 containers; the HTTPS webhook at a steady 1,000 AdmissionReviews/s over loopback with
// keep-alive (`skiff webhook` as it ships, in its own process, evaluating on its main thread, and
// on two worker threads), measured in alternating seconds with a floor server that only parses and
// allows; and the memory 10,000 inventory objects take.
//
// Measure what ships: the compiled code in dist/ (and `node bin/skiff.js webhook`) when `npm run
// build` is newer than the sources it needs; otherwise the sources through tsx, and the table says
// so. `--src` forces the sources.
import { type ChildProcess,spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Worker } from 'node:worker_threads';

import { Agent, request } from 'undici';

import type { K8sObject } from '../src/admission/index.js';

import { emit, parseBenchArgs, percentile, sampleUs } from './lib/report.js';

const ROOT = join(import.meta.dirname, '..');
const TLS = join(ROOT, 'test', 'admission', 'fixtures', 'tls');
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');

/** newestMtime is the newest modification time of the code files (`ext`) under dir: a README does not make dist/ stale. */
function newestMtime(dir: string, ext: string): number {
  let m = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) m = Math.max(m, newestMtime(p, ext));
    else if (e.name.endsWith(ext)) m = Math.max(m, statSync(p).mtimeMs);
  }
  return m;
}
// The webhook runs admission, policy and util code (and the CLI entry that starts it).
const SHIPPED = ['admission', 'policy', 'util', 'cli'];
const distFresh = SHIPPED.every((d) => existsSync(join(ROOT, 'dist', d)) && newestMtime(join(ROOT, 'dist', d), '.js') >= newestMtime(join(ROOT, 'src', d), '.ts'));
const { json, rest } = parseBenchArgs();
const useDist = distFresh && !rest.includes('--src');
const admission = (useDist ? await import(join(ROOT, 'dist', 'admission', 'index.js')) : await import('../src/admission/index.js')) as typeof import('../src/admission/index.js');
const { GatekeeperClient, reviewFromObject } = admission;

const tpl = (kind: string, rego: string, schema?: Record<string, unknown>): K8sObject => ({
  apiVersion: 'templates.gatekeeper.sh/v1',
  kind: 'ConstraintTemplate',
  metadata: { name: kind.toLowerCase() },
  spec: { crd: { spec: { names: { kind }, ...(schema ? { validation: { openAPIV3Schema: schema } } : {}) } }, targets: [{ target: 'admission.k8s.gatekeeper.sh', rego }] },
});
const strings = { type: 'array', items: { type: 'string' } };

// Templates in the style of the Gatekeeper library (Rego v0), each used by several constraints.
const TEMPLATES: K8sObject[] = [
  tpl('BenchAllowedRepos', `package benchallowedrepos
violation[{"msg": msg}] {
  container := input.review.object.spec.containers[_]
  not startswith_any(container.image, input.parameters.repos)
  msg := sprintf("container <%v> has an invalid image repo <%v>", [container.name, container.image])
}
startswith_any(s, prefixes) { startswith(s, prefixes[_]) }`, { type: 'object', properties: { repos: strings } }),
  tpl('BenchRequiredLabels', `package benchrequiredlabels
violation[{"msg": msg, "details": {"missing": missing}}] {
  provided := {l | input.review.object.metadata.labels[l]}
  required := {l | l := input.parameters.labels[_]}
  missing := required - provided
  count(missing) > 0
  msg := sprintf("missing labels: %v", [missing])
}`, { type: 'object', properties: { labels: strings } }),
  tpl('BenchPrivileged', `package benchprivileged
violation[{"msg": msg}] {
  c := input.review.object.spec.containers[_]
  c.securityContext.privileged
  msg := sprintf("privileged container: %v", [c.name])
}`),
  tpl('BenchLimits', `package benchlimits
violation[{"msg": msg}] {
  c := input.review.object.spec.containers[_]
  not c.resources.limits[input.parameters.resource]
  msg := sprintf("container %v has no %v limit", [c.name, input.parameters.resource])
}`, { type: 'object', properties: { resource: { type: 'string' } } }),
  tpl('BenchDisallowedTags', `package benchdisallowedtags
violation[{"msg": msg}] {
  c := input.review.object.spec.containers[_]
  tag := split(c.image, ":")[1]
  tag == input.parameters.tags[_]
  msg := sprintf("container %v uses a disallowed tag %v", [c.name, tag])
}`, { type: 'object', properties: { tags: strings } }),
  tpl('BenchRuntimeClass', `package benchruntimeclass
violation[{"msg": msg}] {
  rc := object.get(input.review.object.spec, "runtimeClassName", "")
  not rc == input.parameters.allowed[_]
  msg := sprintf("runtimeClassName %q is not allowed", [rc])
}`, { type: 'object', properties: { allowed: strings } }),
  tpl('BenchUniqueHost', `package benchuniquehost
violation[{"msg": msg}] {
  input.review.kind.kind == "Ingress"
  host := input.review.object.spec.rules[_].host
  other := data.inventory.namespace[ns][_]["Ingress"][name]
  other.spec.rules[_].host == host
  msg := sprintf("host %v already used by %v/%v", [host, ns, name])
}`),
];

const constraint = (kind: string, name: string, parameters?: unknown): K8sObject => ({ apiVersion: 'constraints.gatekeeper.sh/v1beta1', kind, metadata: { name }, spec: { match: { kinds: [{ apiGroups: [''], kinds: ['Pod'] }], excludedNamespaces: ['kube-*'] }, ...(parameters ? { parameters } : {}) } });
const CONSTRAINTS: K8sObject[] = [
  ...[0, 1, 2, 3].map((i) => constraint('BenchAllowedRepos', `repos-${i}`, { repos: ['registry.example.com/', `mirror-${i}.example.com/`] })),
  ...[0, 1, 2, 3].map((i) => constraint('BenchRequiredLabels', `labels-${i}`, { labels: ['app', `team-${i}`] })),
  ...[0, 1, 2].map((i) => constraint('BenchPrivileged', `privileged-${i}`)),
  ...['cpu', 'memory', 'ephemeral-storage'].map((r) => constraint('BenchLimits', `limits-${r}`, { resource: r })),
  ...[0, 1, 2].map((i) => constraint('BenchDisallowedTags', `tags-${i}`, { tags: ['latest', `dev-${i}`] })),
  ...[0, 1, 2].map((i) => constraint('BenchRuntimeClass', `runtime-${i}`, { allowed: ['wasm', 'gvisor'] })),
];

const POD: K8sObject = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'bench', namespace: 'apps', labels: { app: 'bench', 'team-0': 'a', 'team-1': 'b', 'team-2': 'c', 'team-3': 'd' } },
  spec: {
    runtimeClassName: 'wasm',
    containers: Array.from({ length: 20 }, (_, i) => ({ name: `c${i}`, image: `registry.example.com/app-${i}:1.${i}`, resources: { limits: { cpu: '100m', memory: '64Mi', 'ephemeral-storage': '1Gi' } }, securityContext: { privileged: false } })),
  },
};

function clientWith(constraints: K8sObject[]): InstanceType<typeof GatekeeperClient> {
  const gk = new GatekeeperClient();
  for (const t of TEMPLATES) gk.addTemplate(t);
  for (const c of constraints) gk.addConstraint(c);
  return gk;
}

/** Webhook is a running server child (`skiff webhook`, or the floor server) and the port it serves on. */
interface Webhook {
  child: ChildProcess;
  port: number;
}

/** Server picks what answers the reviews: `skiff webhook` as it ships (with N evaluation threads), or the floor server. */
type Server = { kind: 'skiff'; workers: number } | { kind: 'floor' };

/**
 * The floor: a bare node:https server that reads each AdmissionReview, parses it and allows it,
 * with no policy at all. Driven exactly like the webhook, it shows what TLS, HTTP, JSON and this
 * machine (with its other work) cost before any evaluation; the webhook cannot beat it.
 */
const FLOOR = `
import { createServer } from 'node:https';
import { readFileSync } from 'node:fs';
const [cert, key] = process.argv.slice(1);
const server = createServer({ cert: readFileSync(cert), key: readFileSync(key), keepAliveTimeout: 60000 }, (req, res) => {
  const chunks = [];
  req.on('data', (d) => chunks.push(d));
  req.on('end', () => {
    const review = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    const body = JSON.stringify({ apiVersion: review.apiVersion, kind: 'AdmissionReview', response: { uid: review.request.uid, allowed: true } });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
});
server.listen(0, '127.0.0.1', () => process.stdout.write('ready https://127.0.0.1:' + server.address().port + ' \\n'));
process.on('SIGTERM', () => { server.close(); server.closeAllConnections(); });`;

function spawnServer(s: Server, policies: string): ChildProcess {
  const io = { stdio: ['ignore', 'pipe', 'inherit'] as Array<'ignore' | 'pipe' | 'inherit'> };
  if (s.kind === 'floor') return spawn(process.execPath, ['--input-type=module', '-e', FLOOR, join(TLS, 'cert.pem'), join(TLS, 'key.pem')], io);
  const args = ['webhook', '--tls-cert', join(TLS, 'cert.pem'), '--tls-key', join(TLS, 'key.pem'), '--policies', policies, '--listen', '127.0.0.1:0', '--workers', String(s.workers)];
  // Sources: node with `--import tsx`, not the tsx command (which starts the server in a child
  // process), so the pid whose CPU is counted is the server's.
  return useDist ? spawn(process.execPath, [join(ROOT, 'bin', 'skiff.js'), ...args], io) : spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts'), ...args], io);
}

/** startServer starts a server child on a free loopback port and waits for its ready line. */
async function startServer(s: Server, policies: string): Promise<Webhook> {
  const child = spawnServer(s, policies);
  const port = await new Promise<number>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /ready https:\/\/[^ ]*:(\d+) /.exec(buf);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`the ${s.kind} server exited ${code} before it was ready`)));
  });
  return { child, port };
}

async function stopWebhook(w: Webhook): Promise<void> {
  const exited = new Promise((r) => w.child.once('exit', r));
  w.child.kill('SIGTERM');
  const timer = setTimeout(() => w.child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

/** cpuMs reads a process's user+system CPU time from /proc (Linux; NaN elsewhere). */
function cpuMs(pid: number | undefined): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return NaN;
  }
}

/**
 * cpuPressureUs is the machine's running total of time (µs) during which some task was ready to
 * run but waited for a CPU (Linux pressure stall information; NaN elsewhere). Over a run it tells
 * how much the processes measured had to share the cores. (/proc/stat's busy and idle counters are
 * sampled on timer ticks and undercount badly on this kind of virtual machine.)
 */
function cpuPressureUs(): number {
  try {
    const m = /^some .*total=(\d+)/m.exec(readFileSync('/proc/pressure/cpu', 'utf8'));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

/** runnable counts the tasks running or ready to run right now, this reader excluded (Linux; NaN elsewhere). */
function runnable(): number {
  try {
    return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[3]!.split('/')[0]) - 1;
  } catch {
    return NaN;
  }
}

/**
 * quietMachine waits (up to `maxMs`) for a second in which, on average, fewer than half a task
 * was running or waiting to run, so that other work on a shared machine (tests, builds) does not
 * land in a latency run. It says so when it gives up. Linux only (elsewhere it returns at once).
 */
async function quietMachine(maxMs: number): Promise<void> {
  const deadline = Date.now() + maxMs;
  let load = NaN;
  while (Date.now() < deadline) {
    let sum = 0;
    for (let i = 0; i < 10; i++) {
      sum += runnable();
      await new Promise((r) => setTimeout(r, 100));
    }
    load = sum / 10;
    if (!(load >= 0.5)) return;
  }
  process.stdout.write(`note: other work kept ${load.toFixed(1)} tasks running for ${maxMs / 1000} s; measuring anyway (see webhook_cpu_wait_pct)\n`);
}

/**
 * A ticker thread wakes at each scheduled send time (Atomics.wait sleeps with sub-millisecond
 * precision; the event loop's timers only have whole milliseconds) and tells the driver to send. A
 * request is never sent before its time, and a driver that falls behind counts the delay: latency
 * runs from the scheduled time to the parsed response.
 */
const TICKER = `
const { workerData, parentPort } = require('node:worker_threads');
const { start, interval, total } = workerData;
const cell = new Int32Array(new SharedArrayBuffer(4));
for (let i = 0; i < total; i++) {
  const wait = start + i * interval - (performance.timeOrigin + performance.now());
  if (wait > 0) Atomics.wait(cell, 0, 0, wait);
  parentPort.postMessage(i);
}`;

/** OpenLoop is a server's measured traffic: latency per request (µs, sorted), how late sends left, and CPU use. */
interface OpenLoop {
  latencyUs: Float64Array;
  sendLagUs: Float64Array;
  serverCpuUsPerReview: number;
  clientCpuPct: number;
  /** share of the run during which some task on the machine waited for a CPU */
  cpuWaitPct: number;
}

/** Slice is one open-loop stretch against one server, with the raw counters that several slices add up. */
interface Slice {
  latencyUs: Float64Array;
  sendLagUs: Float64Array;
  serverMs: number;
  clientUs: number;
  pressureUs: number;
  elapsedMs: number;
}

/** openLoop sends `rps` reviews a second for `seconds` over the agent's keep-alive connections. */
async function openLoop(w: Webhook, agent: Agent, rps: number, seconds: number, body: (i: number) => string): Promise<Slice> {
  const total = Math.round(rps * seconds);
  const interval = 1000 / rps;
  const latency = new Float64Array(total);
  const lag = new Float64Array(total);
  const now = () => performance.timeOrigin + performance.now();
  const server0 = cpuMs(w.child.pid);
  const client0 = process.cpuUsage();
  const pressure0 = cpuPressureUs();
  const t0 = now();
  // time for the ticker thread to boot, so the first sends are not late for that reason
  const start = t0 + 200;
  let failure: Error | undefined;
  await new Promise<void>((resolve, reject) => {
    let done = 0;
    const ticker = new Worker(TICKER, { eval: true, workerData: { start, interval, total } });
    ticker.on('error', reject);
    ticker.on('message', (i: number) => {
      const due = start + i * interval;
      lag[i] = (now() - due) * 1000;
      sendReview(w.port, agent, body(i), `u${i}`).then(
        () => void (latency[i] = (now() - due) * 1000),
        (e: Error) => void (failure ??= e),
      ).finally(() => {
        if (++done === total) resolve();
      });
    });
  });
  if (failure) throw failure;
  // CPU shares are over the whole window the counters covered, ticker start-up included
  const client = process.cpuUsage(client0);
  return { latencyUs: latency, sendLagUs: lag, serverMs: cpuMs(w.child.pid) - server0, clientUs: client.user + client.system, pressureUs: cpuPressureUs() - pressure0, elapsedMs: now() - t0 };
}

/** summarise adds up a server's slices. */
function summarise(slices: Slice[]): OpenLoop {
  const joined = (key: 'latencyUs' | 'sendLagUs') => {
    const out = new Float64Array(slices.reduce((n, s) => n + s[key].length, 0));
    let at = 0;
    for (const s of slices) out.set(s[key], (at += s[key].length) - s[key].length);
    return out.sort();
  };
  const sum = (f: (s: Slice) => number) => slices.reduce((n, s) => n + f(s), 0);
  const elapsed = sum((s) => s.elapsedMs);
  const latencyUs = joined('latencyUs');
  return {
    latencyUs,
    sendLagUs: joined('sendLagUs'),
    serverCpuUsPerReview: (sum((s) => s.serverMs) * 1000) / latencyUs.length,
    clientCpuPct: (sum((s) => s.clientUs) / 1000 / elapsed) * 100,
    cpuWaitPct: (sum((s) => s.pressureUs) / 1000 / elapsed) * 100,
  };
}

async function sendReview(port: number, agent: Agent, body: string, uid: string): Promise<void> {
  const r = await request(`https://localhost:${port}/validate`, { method: 'POST', dispatcher: agent, headers: { 'content-type': 'application/json' }, body });
  const answer = (await r.body.json()) as { response?: { uid?: string; allowed?: boolean } };
  if (r.statusCode !== 200 || answer.response?.allowed !== true || answer.response.uid !== uid) throw new Error(`webhook answered ${r.statusCode} ${JSON.stringify(answer)}`);
}

/** Target is one running server, the keep-alive pool that drives it, and its policies directory. */
interface Target {
  w: Webhook;
  agent: Agent;
}

/**
 * compareLatency starts every server, warms each (JIT, and the client's pool of keep-alive
 * connections opened at the rate measured, so no TLS handshake falls in the measured window), then
 * measures them in turns: one second each, round robin, until each has had `seconds`. Whatever
 * else a shared machine does then falls on all of them alike, so the ratios between them (the
 * webhook against the floor) hold even when the absolute figures do not.
 */
async function compareLatency(rps: number, seconds: number, servers: Server[]): Promise<OpenLoop[]> {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-bench-policies-'));
  [...TEMPLATES, ...CONSTRAINTS].forEach((o, i) => writeFileSync(join(dir, `${String(i).padStart(2, '0')}.json`), JSON.stringify(o)));
  const targets: Target[] = [];
  try {
    for (const s of servers) targets.push({ w: await startServer(s, dir), agent: new Agent({ connect: { ca: readFileSync(join(TLS, 'cert.pem')) }, keepAliveTimeout: 30_000, connections: 16, pipelining: 1 }) });
    // kube-apiserver serialises each review anew; a template with the uid spliced in keeps that cheap for the driver.
    const [head, tail] = JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: '@UID@', kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' }, name: 'bench', namespace: 'apps', operation: 'CREATE', userInfo: { username: 'bench' }, object: POD, dryRun: false } }).split('@UID@') as [string, string];
    const body = (i: number) => `${head}u${i}${tail}`;
    for (const t of targets) for (let i = 0; i < 500; i++) await sendReview(t.w.port, t.agent, body(i), `u${i}`);
    // On a shared machine other work comes and goes: a run during which tasks waited for a CPU more
    // than 10% of the time is measured again (up to three times), and the figures say how contended
    // the run reported was. (Without pressure counters, NaN, the first run stands.)
    let runs: OpenLoop[] | undefined;
    for (let attempt = 1; attempt <= 3 && !(runs && !runs.some((r) => r.cpuWaitPct > 10)); attempt++) {
      await quietMachine(30_000);
      for (const t of targets) await openLoop(t.w, t.agent, rps, 2, body);
      const slices: Slice[][] = targets.map(() => []);
      for (let turn = 0; turn < seconds; turn++) for (let j = 0; j < targets.length; j++) slices[j]!.push(await openLoop(targets[j]!.w, targets[j]!.agent, rps, 1, body));
      runs = slices.map(summarise);
    }
    return runs!;
  } finally {
    for (const t of targets) {
      await stopWebhook(t.w);
      await t.agent.close();
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

function gcNow(): void {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  // Several rounds: V8 ages and flushes unused bytecode over successive full collections.
  for (let i = 0; i < 12; i++) gc();
}

/** inventoryPod is the i-th of the 10,000 Pods the memory figure keeps in the inventory. */
function inventoryPod(i: number): K8sObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: `pod-${i}`, namespace: `ns-${i % 100}`, labels: { app: `app-${i % 50}`, team: `team-${i % 7}` }, uid: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}` },
    spec: { runtimeClassName: 'wasm', containers: [0, 1].map((c) => ({ name: `c${c}`, image: `registry.example.com/app-${i % 50}:${c}.0`, resources: { limits: { cpu: '100m', memory: '64Mi' } }, ports: [{ containerPort: 8080 + c }] })) },
  } as K8sObject;
}

/**
 * inventoryMemory (run in its own process) adds 10,000 Pods, about 0.5 KB of JSON each, to the
 * inventory one at a time (as a webhook's sync would, each parsed from its own document), and prints
 * what RSS and heap grew by over a baseline taken after the client was set up, both after full
 * collections. Objects are made one at a time, not parsed from one large document: a 5 MB parse
 * leaves the allocator holding pages that would be charged to the inventory (or, compared with a
 * process that drops them, make the difference swing by megabytes either way).
 */
function inventoryMemory(): void {
  const gk = clientWith([constraint('BenchUniqueHost', 'unique-host')]);
  const probe = reviewFromObject({ apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name: 'i', namespace: 'x' }, spec: { rules: [{ host: 'h' }] } });
  gk.review(probe);
  // The same work once without keeping anything first: V8 grows its young generation under an
  // allocation burst, and that growth is the heap's, not the inventory's.
  for (let i = 0; i < 10_000; i++) JSON.parse(JSON.stringify(inventoryPod(i)));
  gcNow();
  const before = process.memoryUsage();
  let jsonBytes = 0;
  for (let i = 0; i < 10_000; i++) {
    // Each Pod arrives as its own JSON document, as objects reach a webhook.
    const json = JSON.stringify(inventoryPod(i));
    jsonBytes += Buffer.byteLength(json);
    gk.addData(JSON.parse(json) as K8sObject);
  }
  gk.review(probe);
  gcNow();
  const after = process.memoryUsage();
  if (gk.inventory.size !== 10_000) throw new Error('inventory incomplete');
  const mb = (n: number) => n / 1024 / 1024;
  process.stdout.write(JSON.stringify({ rssMb: mb(after.rss - before.rss), heapMb: mb(after.heapUsed - before.heapUsed), jsonMb: mb(jsonBytes) }) + '\n');
}

/** childJson runs this script in a child with a mode flag and parses the one JSON line it prints. */
function childJson<T>(flag: string): Promise<T> {
  const child = spawn(TSX, [join(ROOT, 'bench', 'admission.ts'), flag, ...(useDist ? [] : ['--src'])], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as T) : reject(new Error(`${flag} child exited ${code}`)))));
}

async function main(): Promise<void> {
  if (rest.includes('--inventory')) return inventoryMemory();
  process.stdout.write(`code: ${useDist ? 'dist (compiled), webhook: node bin/skiff.js webhook' : `src via tsx${distFresh ? '' : ' (dist/ is missing or older than src/: run npm run build)'}`}\n`);
  const review = reviewFromObject(POD, { operation: 'CREATE' });
  const one = clientWith([CONSTRAINTS[0]!]);
  const all = clientWith(CONSTRAINTS);
  if (CONSTRAINTS.length !== 20 || all.review(review).violations.length !== 0 || all.review(review).errors.length) throw new Error('benchmark constraints should all pass the pod');
  const oneUs = sampleUs(() => one.review(review), 20_000, 2_000);
  const allUs = sampleUs(() => all.review(review), 5_000, 500);
  type Mem = { rssMb: number; heapMb: number; jsonMb: number };
  // RSS still moves by a megabyte or so from run to run: the median of three processes.
  const runs: Mem[] = [];
  for (let i = 0; i < 3; i++) runs.push(await childJson<Mem>('--inventory'));
  const mid = <K extends keyof Mem>(k: K) => runs.map((p) => p[k]).sort((a, b) => a - b)[1]!;
  const mem = { rssMb: mid('rssMb'), heapMb: mid('heapMb'), jsonMb: runs[0]!.jsonMb };
  const [hook, pooled, floor] = (await compareLatency(1000, 10, [{ kind: 'skiff', workers: 0 }, { kind: 'skiff', workers: 2 }, { kind: 'floor' }])) as [OpenLoop, OpenLoop, OpenLoop];
  const contended = Math.max(hook.cpuWaitPct, pooled.cpuWaitPct, floor.cpuWaitPct);
  if (contended > 10) process.stdout.write(`note: tasks waited for a CPU up to ${contended.toFixed(0)}% of the time during the webhook runs: the latencies include that contention\n`);
  // The webhook against the floor, measured in alternating seconds of the same run: on a shared
  // machine the ratios (and the CPU the webhook spends beyond the floor) move far less than the
  // absolute latencies.
  const ratio = (run: OpenLoop, p: number) => percentile(run.latencyUs, p) / percentile(floor.latencyUs, p);
  emit(
    {
      name: 'admission',
      figures: {
        constraint_p50_us: percentile(oneUs, 50),
        constraint_p99_us: percentile(oneUs, 99),
        all_constraints_p50_us: percentile(allUs, 50),
        all_constraints_p99_us: percentile(allUs, 99),
        webhook_p50_ms: percentile(hook.latencyUs, 50) / 1000,
        webhook_p90_ms: percentile(hook.latencyUs, 90) / 1000,
        webhook_p99_ms: percentile(hook.latencyUs, 99) / 1000,
        webhook_p999_ms: percentile(hook.latencyUs, 99.9) / 1000,
        webhook_send_lag_p99_ms: percentile(hook.sendLagUs, 99) / 1000,
        webhook_server_cpu_us: hook.serverCpuUsPerReview,
        webhook_driver_cpu_pct: hook.clientCpuPct,
        webhook_cpu_wait_pct: hook.cpuWaitPct,
        webhook_2workers_p50_ms: percentile(pooled.latencyUs, 50) / 1000,
        webhook_2workers_p99_ms: percentile(pooled.latencyUs, 99) / 1000,
        webhook_2workers_server_cpu_us: pooled.serverCpuUsPerReview,
        webhook_2workers_cpu_wait_pct: pooled.cpuWaitPct,
        webhook_p50_to_floor: ratio(hook, 50),
        webhook_p99_to_floor: ratio(hook, 99),
        webhook_2workers_p99_to_floor: ratio(pooled, 99),
        webhook_server_cpu_to_floor: hook.serverCpuUsPerReview / floor.serverCpuUsPerReview,
        webhook_server_cpu_over_floor_us: hook.serverCpuUsPerReview - floor.serverCpuUsPerReview,
        inventory_10k_rss_mb: mem.rssMb,
        inventory_10k_heap_mb: mem.heapMb,
        inventory_10k_json_mb: mem.jsonMb,
        inventory_rss_to_json_ratio: mem.rssMb / mem.jsonMb,
        inventory_heap_to_json_ratio: mem.heapMb / mem.jsonMb,
      },
      peers: {
        // the same driver against a server that only parses and allows (no policy): this machine's floor
        node_https: {
          webhook_p50_ms: percentile(floor.latencyUs, 50) / 1000,
          webhook_p99_ms: percentile(floor.latencyUs, 99) / 1000,
          webhook_server_cpu_us: floor.serverCpuUsPerReview,
          webhook_cpu_wait_pct: floor.cpuWaitPct,
        },
      },
    },
    json,
  );
}

await main();

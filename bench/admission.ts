// Admission benchmark: one constraint and twenty constraints evaluated in process against a Pod with
// 20 containers; the HTTPS webhook at a steady 1,000 requests/s over loopback with keep-alive (the
// server in its own process, evaluating on its main thread, then on two worker threads); and the
// memory 10,000 inventory objects take.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Agent, request } from 'undici';
import { emit, parseBenchArgs, percentile, sampleUs } from './lib/report.js';
import { EvalPool, GatekeeperClient, reviewFromObject, WebhookServer, type K8sObject } from '../src/admission/index.js';

const ROOT = join(import.meta.dirname, '..');
const TLS = join(ROOT, 'test', 'admission', 'fixtures', 'tls');

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

function clientWith(constraints: K8sObject[]): GatekeeperClient {
  const gk = new GatekeeperClient();
  for (const t of TEMPLATES) gk.addTemplate(t);
  for (const c of constraints) gk.addConstraint(c);
  return gk;
}

/** serve runs the webhook in this process (the child side of the webhook figures), evaluating on `workers` threads when > 0. */
async function serve(workers: number): Promise<void> {
  const tls = { cert: readFileSync(join(TLS, 'cert.pem')), key: readFileSync(join(TLS, 'key.pem')) };
  let pool: EvalPool | undefined;
  let server: WebhookServer;
  if (workers > 0) {
    const dir = mkdtempSync(join(tmpdir(), 'skiff-bench-policies-'));
    [...TEMPLATES, ...CONSTRAINTS].forEach((o, i) => writeFileSync(join(dir, `${String(i).padStart(2, '0')}.json`), JSON.stringify(o)));
    pool = (await EvalPool.start({ policies: [dir] }, workers)).pool;
    rmSync(dir, { recursive: true, force: true });
    server = new WebhookServer({ ...tls, evaluate: (b) => pool!.evaluate(b) });
  } else server = new WebhookServer({ ...tls, client: clientWith(CONSTRAINTS) });
  const addr = await server.listen('127.0.0.1', 0);
  process.stdout.write(`port=${addr.port}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => void server.close().then(() => pool?.close()).then(() => process.exit(0)));
}

/** webhookLatency drives the child's webhook open-loop at `rps` for `seconds`, measuring from each scheduled send. */
async function webhookLatency(rps: number, seconds: number, workers = 0): Promise<Float64Array> {
  const child = spawn(join(ROOT, 'node_modules', '.bin', 'tsx'), [join(ROOT, 'bench', 'admission.ts'), '--serve', String(workers)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /port=(\d+)/.exec(buf);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`webhook child exited ${code}`)));
  });
  const agent = new Agent({ connect: { ca: readFileSync(join(TLS, 'cert.pem')) }, keepAliveTimeout: 30_000, connections: 16, pipelining: 1 });
  const review = (i: number) =>
    JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: `u${i}`, kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' }, name: 'bench', namespace: 'apps', operation: 'CREATE', userInfo: { username: 'bench' }, object: POD, dryRun: false } });
  const send = async (i: number) => {
    const r = await request(`https://localhost:${port}/validate`, { method: 'POST', dispatcher: agent, headers: { 'content-type': 'application/json' }, body: review(i) });
    const body = (await r.body.json()) as { response?: { allowed?: boolean } };
    if (r.statusCode !== 200 || body.response?.allowed === undefined) throw new Error(`webhook answered ${r.statusCode}`);
  };
  for (let i = 0; i < 500; i++) await send(i);
  const total = rps * seconds;
  const samples = new Float64Array(total);
  const start = performance.now();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / rps;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    pending.push(send(i).then(() => void (samples[i] = (performance.now() - due) * 1000)));
  }
  await Promise.all(pending);
  child.stdin.end();
  await new Promise((r) => child.once('exit', r));
  await agent.close();
  return samples.sort();
}

function gcNow(): void {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  // Several rounds: V8 ages and flushes unused bytecode over successive full collections.
  for (let i = 0; i < 12; i++) gc();
}

/** inventoryJson renders 10,000 Pods as one JSON array. */
function inventoryJson(): Buffer {
  return Buffer.from(
    JSON.stringify(
      Array.from({ length: 10_000 }, (_, i) => ({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: `pod-${i}`, namespace: `ns-${i % 100}`, labels: { app: `app-${i % 50}`, team: `team-${i % 7}` }, uid: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}` },
        spec: { runtimeClassName: 'wasm', containers: [0, 1].map((c) => ({ name: `c${c}`, image: `registry.example.com/app-${i % 50}:${c}.0`, resources: { limits: { cpu: '100m', memory: '64Mi' } }, ports: [{ containerPort: 8080 + c }] })) },
      })),
    ),
  );
}

/**
 * inventoryMemory (run in its own process) parses 10,000 Pods, about 0.5 KB of JSON each, and either
 * keeps them in the inventory or drops them; it prints RSS and heap after full collections. The
 * difference between a keeping and a dropping process is what the inventory costs, free of the
 * allocator's habit of holding on to pages a process has used once.
 */
function inventoryMemory(keep: boolean): void {
  const gk = clientWith([constraint('BenchUniqueHost', 'unique-host')]);
  const probe = reviewFromObject({ apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name: 'i', namespace: 'x' }, spec: { rules: [{ host: 'h' }] } });
  gk.review(probe);
  // Built in its own frame so no interpreter register keeps the temporary objects alive.
  let buf: Buffer | undefined = inventoryJson();
  const jsonMb = buf.length / 1024 / 1024;
  const objs = JSON.parse(buf.toString('utf8')) as K8sObject[];
  buf = undefined;
  if (keep) for (const o of objs) gk.addData(o);
  objs.length = 0;
  gk.review(probe);
  gcNow();
  const m = process.memoryUsage();
  if (keep && gk.inventory.size !== 10_000) throw new Error('inventory incomplete');
  process.stdout.write(JSON.stringify({ rssMb: m.rss / 1024 / 1024, heapMb: m.heapUsed / 1024 / 1024, jsonMb }) + '\n');
}

/** childJson runs this script in a child with a mode flag and parses the one JSON line it prints. */
function childJson<T>(flag: string): Promise<T> {
  const child = spawn(join(ROOT, 'node_modules', '.bin', 'tsx'), [join(ROOT, 'bench', 'admission.ts'), flag], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as T) : reject(new Error(`${flag} child exited ${code}`)))));
}

async function main(): Promise<void> {
  const { json, rest } = parseBenchArgs();
  if (rest.includes('--serve')) return serve(Number(rest[rest.indexOf('--serve') + 1] ?? 0));
  if (rest.includes('--inventory-keep')) return inventoryMemory(true);
  if (rest.includes('--inventory-drop')) return inventoryMemory(false);
  const review = reviewFromObject(POD, { operation: 'CREATE' });
  const one = clientWith([CONSTRAINTS[0]!]);
  const all = clientWith(CONSTRAINTS);
  if (CONSTRAINTS.length !== 20 || all.review(review).violations.length !== 0 || all.review(review).errors.length) throw new Error('benchmark constraints should all pass the pod');
  const oneUs = sampleUs(() => one.review(review), 20_000, 2_000);
  const allUs = sampleUs(() => all.review(review), 5_000, 500);
  type Mem = { rssMb: number; heapMb: number; jsonMb: number };
  // RSS moves by a few MB from run to run: the median of three keep/drop pairs.
  const pairs: Array<{ rssMb: number; heapMb: number; jsonMb: number }> = [];
  for (let i = 0; i < 3; i++) {
    const kept = await childJson<Mem>('--inventory-keep');
    const dropped = await childJson<Mem>('--inventory-drop');
    pairs.push({ rssMb: kept.rssMb - dropped.rssMb, heapMb: kept.heapMb - dropped.heapMb, jsonMb: kept.jsonMb });
  }
  const mid = <K extends keyof Mem>(k: K) => pairs.map((p) => p[k]).sort((a, b) => a - b)[1]!;
  const mem = { rssMb: mid('rssMb'), heapMb: mid('heapMb'), jsonMb: pairs[0]!.jsonMb };
  const hook = await webhookLatency(1000, 5);
  const pooled = await webhookLatency(1000, 5, 2);
  emit(
    {
      name: 'admission',
      figures: {
        constraint_p50_us: percentile(oneUs, 50),
        constraint_p99_us: percentile(oneUs, 99),
        all_constraints_p50_us: percentile(allUs, 50),
        all_constraints_p99_us: percentile(allUs, 99),
        webhook_p50_ms: percentile(hook, 50) / 1000,
        webhook_p90_ms: percentile(hook, 90) / 1000,
        webhook_p99_ms: percentile(hook, 99) / 1000,
        webhook_2workers_p50_ms: percentile(pooled, 50) / 1000,
        webhook_2workers_p99_ms: percentile(pooled, 99) / 1000,
        inventory_10k_rss_mb: mem.rssMb,
        inventory_10k_heap_mb: mem.heapMb,
        inventory_10k_json_mb: mem.jsonMb,
        inventory_rss_to_json_ratio: mem.rssMb / mem.jsonMb,
        inventory_heap_to_json_ratio: mem.heapMb / mem.jsonMb,
      },
      peers: {},
    },
    json,
  );
}

await main();

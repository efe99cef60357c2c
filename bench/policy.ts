// Policy engine benchmark: prepared-query latency for an admission policy (Pod with 20 containers)
// and an RBAC policy (500 role bindings in data), each next to the same decision hand-written in
// TypeScript (the floor), plus RSS after loading 10 MB of JSON data.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { emit, parseBenchArgs, percentile, sampleUs } from './lib/report.js';

const { json, rest } = parseBenchArgs();

// Measure what ships: the compiled engine in dist/ when `npm run build` has produced it (the
// development loader wraps every closure and adds overhead the product does not have).
// `--src` forces the TypeScript sources.
const distEntry = fileURLToPath(new URL('../dist/policy/index.js', import.meta.url));
function newestMtime(dir: string): number {
  let m = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = `${dir}/${e.name}`;
    m = Math.max(m, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return m;
}
const srcDir = fileURLToPath(new URL('../src/policy', import.meta.url));
const distFresh = existsSync(distEntry) && newestMtime(fileURLToPath(new URL('../dist/policy', import.meta.url))) >= newestMtime(srcDir);
const useDist = distFresh && !rest.includes('--src');
const { PolicyEngine } = (useDist ? await import(distEntry) : await import('../src/policy/index.js')) as typeof import('../src/policy/index.js');
process.stdout.write(`engine: ${useDist ? 'dist (compiled)' : `src via tsx${existsSync(distEntry) && !distFresh ? ' (dist/ is older than src/: run npm run build)' : ''}`}\n`);

const ADMISSION = `package k8s.admission

allowed_registries := ["registry.example.com/", "ghcr.io/skiff/"]

deny contains msg if {
	some c in input.spec.containers
	c.securityContext.privileged
	msg := sprintf("container %s is privileged", [c.name])
}

deny contains msg if {
	some c in input.spec.containers
	not c.securityContext.runAsNonRoot
	msg := sprintf("container %s must set runAsNonRoot", [c.name])
}

deny contains msg if {
	some c in input.spec.containers
	not registry_allowed(c.image)
	msg := sprintf("container %s uses a registry that is not allowed: %s", [c.name, c.image])
}

registry_allowed(image) if {
	some prefix in allowed_registries
	startswith(image, prefix)
}

allow if count(deny) == 0
`;

const RBAC = `package rbac

default allow := false

allow if {
	some b in data.bindings
	b.user == input.user
	some p in data.roles[b.role]
	p.action == input.action
	glob_ok(p.resource, input.resource)
}

glob_ok(pattern, _) if pattern == "*"
glob_ok(pattern, resource) if pattern == resource
`;

function pod(n: number) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'web', namespace: 'default', labels: { app: 'web' } },
    spec: {
      containers: Array.from({ length: n }, (_, i) => ({
        name: `c${i}`,
        image: i % 2 ? `registry.example.com/app:${i}` : `ghcr.io/skiff/side:${i}`,
        securityContext: { privileged: false, runAsNonRoot: true },
        resources: { limits: { cpu: '100m', memory: '64Mi' } },
      })),
    },
  };
}

// The floor: the same admission decision written directly in TypeScript.
const REGISTRIES = ['registry.example.com/', 'ghcr.io/skiff/'];
function admissionByHand(input: ReturnType<typeof pod>): boolean {
  const deny: string[] = [];
  for (const c of input.spec.containers) {
    if (c.securityContext?.privileged) deny.push(`container ${c.name} is privileged`);
    if (!c.securityContext?.runAsNonRoot) deny.push(`container ${c.name} must set runAsNonRoot`);
    if (!REGISTRIES.some((p) => c.image.startsWith(p))) deny.push(`container ${c.name} uses a registry that is not allowed: ${c.image}`);
  }
  return deny.length === 0;
}

function rbacData(n: number) {
  const roles: Record<string, Array<{ action: string; resource: string }>> = {};
  for (let r = 0; r < 20; r++) roles[`role${r}`] = [{ action: 'read', resource: `res${r}` }, { action: 'write', resource: r === 0 ? '*' : `res${r}` }];
  const bindings = Array.from({ length: n }, (_, i) => ({ user: `user${i}`, role: `role${i % 20}` }));
  return { roles, bindings };
}

function rbacByHand(data: ReturnType<typeof rbacData>, input: { user: string; action: string; resource: string }): boolean {
  for (const b of data.bindings) {
    if (b.user !== input.user) continue;
    for (const p of data.roles[b.role] ?? []) if (p.action === input.action && (p.resource === '*' || p.resource === input.resource)) return true;
  }
  return false;
}

const N = 20_000;
/**
 * Warm-up runs before sampling, the same for the engine and the hand-written floor: a prepared query
 * is evaluated for as long as the process serves, so the figures are its steady state, after V8 has
 * optimised the code (which takes a few thousand evaluations here, more under load).
 */
const WARMUP = 20_000;

const admission = new PolicyEngine();
admission.addModule('admission.rego', ADMISSION);
const admissionQ = admission.prepare('data.k8s.admission.allow');
const podInput = pod(20);
if (admissionQ.eval({ input: podInput })[0]?.expressions[0]?.value !== true || !admissionByHand(podInput)) throw new Error('admission policy disagrees with the hand-written decision');
const admSamples = sampleUs(() => admissionQ.eval({ input: podInput }), N, WARMUP);
const admHand = sampleUs(() => admissionByHand(podInput), N, WARMUP);

const rbac = new PolicyEngine();
const rdata = rbacData(500);
rbac.addModule('rbac.rego', RBAC);
rbac.setData(rdata);
const rbacQ = rbac.prepare('data.rbac.allow');
const rInput = { user: 'user437', action: 'read', resource: 'res17' };
if (rbacQ.eval({ input: rInput })[0]?.expressions[0]?.value !== true || !rbacByHand(rdata, rInput)) throw new Error('rbac policy disagrees with the hand-written decision');
const rbacSamples = sampleUs(() => rbacQ.eval({ input: rInput }), N, WARMUP);
const rbacHand = sampleUs(() => rbacByHand(rdata, rInput), N, WARMUP);

// 10 MB of JSON data: parse and load it into an engine, then measure the process RSS.
function bigData(): string {
  const items: Record<string, unknown> = {};
  let i = 0;
  let text = '';
  while (text.length < 10 * 1024 * 1024) {
    for (let j = 0; j < 5000; j++, i++) items[`item${i}`] = { id: i, name: `name-${i}`, tags: ['a', 'b', 'c'], owner: { team: `t${i % 50}`, active: i % 3 === 0 } };
    text = JSON.stringify({ inventory: items });
  }
  return text;
}
const text = bigData();
globalThis.gc?.();
const rssBefore = process.memoryUsage().rss;
const big = new PolicyEngine();
big.addModule('inv.rego', 'package inv\ncount_items := count(data.inventory)');
big.setData(JSON.parse(text));
const counted = big.prepare('data.inv.count_items').eval({})[0]?.expressions[0]?.value;
globalThis.gc?.();
const rssAfter = process.memoryUsage().rss;
if (typeof counted !== 'number') throw new Error('data load failed');

const p = (s: Float64Array, q: number) => percentile(s, q);
const mean = (s: Float64Array) => s.reduce((a, b) => a + b, 0) / s.length;
emit(
  {
    name: 'policy',
    figures: {
      admission_p50_us: p(admSamples, 50),
      admission_p99_us: p(admSamples, 99),
      admission_evals_per_s: 1e6 / mean(admSamples),
      rbac_p50_us: p(rbacSamples, 50),
      rbac_p99_us: p(rbacSamples, 99),
      rbac_evals_per_s: 1e6 / mean(rbacSamples),
      data_10mb_rss_mb: rssAfter / 1048576,
      data_10mb_rss_delta_mb: (rssAfter - rssBefore) / 1048576,
      data_json_mb: text.length / 1048576,
    },
    peers: {
      handwritten: {
        admission_p50_us: p(admHand, 50),
        admission_p99_us: p(admHand, 99),
        rbac_p50_us: p(rbacHand, 50),
        rbac_p99_us: p(rbacHand, 99),
      },
    },
  },
  json,
);

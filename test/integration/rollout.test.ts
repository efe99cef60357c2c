import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { apiFetch, cli, type RunningSkiff, startSkiff, waitFor } from '../helpers/skiff-process.js';
import { wagiWat, wat } from '../helpers/wat.js';

let s: RunningSkiff;
let dir: string;

const NS = '/apis/skiff.dev/v1/namespaces/default';

async function getObj(plural: string, name: string): Promise<any> {
  const r = await apiFetch(s, `${NS}/${plural}/${name}`);
  return r.status === 200 ? r.json() : undefined;
}

async function apply(name: string, yaml: string): Promise<void> {
  writeFileSync(join(dir, `${name}.yaml`), yaml);
  const r = await cli(['apply', '-f', join(dir, `${name}.yaml`)], { skiff: s });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
}

/** module writes a WAGI module answering `body` (with `Status: 500` when failing) and returns its path. */
async function module(file: string, body: string, status?: number): Promise<string> {
  const path = join(dir, file);
  writeFileSync(path, await wat(wagiWat(`${status ? `Status: ${status}\n` : ''}Content-Type: text/plain\n\n${body}\n`)));
  return path;
}

function functionAndRoute(name: string, modulePath: string, routeName = name, prefix = routeName): string {
  return `apiVersion: skiff.dev/v1
kind: Function
metadata: { name: ${name} }
spec: { module: ${modulePath} }
---
apiVersion: skiff.dev/v1
kind: Route
metadata: { name: ${routeName} }
spec:
  http:
    - match: [{ uri: { prefix: /${prefix} } }]
      route: [{ destination: { function: ${name} } }]
`;
}

function rollout(name: string, canaryPath: string, strategy: string): string {
  return `apiVersion: skiff.dev/v1
kind: Rollout
metadata: { name: ${name} }
spec:
  functionRef: { name: ${name} }
  routeRef: { name: ${name} }
  canary: { module: ${canaryPath} }
  strategy:
${strategy}`;
}

async function phase(name: string, want: string, timeoutMs = 15_000): Promise<any> {
  return waitFor(async () => {
    const ro = await getObj('rollouts', name);
    return ro?.status?.phase === want && ro.status.observedGeneration === ro.metadata.generation && !ro.status.finishing ? ro : undefined;
  }, `rollout ${name} ${want}`, timeoutMs);
}

async function ready(name: string): Promise<void> {
  await waitFor(async () => (await getObj('functions', name))?.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True'), `${name} ready`);
}

/**
 * Load sends requests to a path, `concurrency` at a time, until stopped (or a bound), and keeps every
 * answer with the time it came.
 */
class Load {
  readonly answers: Array<{ at: number; status: number; body: string }> = [];
  private stopped = false;
  private readonly done: Promise<void[]>;

  constructor(url: string, concurrency = 4, maxMs = 40_000) {
    const end = Date.now() + maxMs;
    const worker = async () => {
      while (!this.stopped && Date.now() < end) {
        try {
          const r = await fetch(url);
          this.answers.push({ at: Date.now(), status: r.status, body: await r.text() });
        } catch (err) {
          this.answers.push({ at: Date.now(), status: -1, body: String(err) });
        }
      }
    };
    this.done = Promise.all(Array.from({ length: concurrency }, worker));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'skiff-rollout-'));
  s = await startSkiff({ args: ['--allow-host-dir', dir] });
});

afterAll(async () => {
  expect(await s.stop()).toBe(0);
  rmSync(dir, { recursive: true, force: true });
});

describe('rollouts through a started Skiff', () => {
  it('aborts a canary answering 500 within the analysis interval while no request to stable fails', async () => {
    await apply('bad', functionAndRoute('bad', await module('bad-v1.wasm', 'stable')));
    await ready('bad');
    const load = new Load(`${s.gateway}/bad`);
    try {
      await waitFor(() => load.answers.length > 20, 'load running');
      await apply(
        'bad-ro',
        rollout('bad', await module('bad-v2.wasm', 'canary broken', 500), `    canary:
      steps: [{ setWeight: 40 }, { pause: {} }]
      analysis: { interval: 1s, failureLimit: 0, minRequests: 3, metrics: [{ name: success-rate, successRate: { min: 0.95 } }] }
`),
      );
      const ro = await phase('bad', 'Degraded');
      expect(ro.status.message).toMatch(/aborted: analysis failed 1 time \(limit 0\): success-rate 0(\.\d+)? below 0.95/);
      expect(ro.status.analysis.metrics['success-rate'].ok).toBe(false);
      const degradedAt = Date.now();
      // Traffic is back on stable: the Route is as it was and the canary is gone.
      const route = await getObj('routes', 'bad');
      expect(route.spec.http[0].route).toEqual([{ destination: { function: 'bad' } }]);
      expect(route.metadata.annotations['rollout.skiff.dev/name']).toBe('bad');
      await waitFor(async () => !(await getObj('functions', 'bad-canary')), 'canary deleted');
      await waitFor(() => load.answers.filter((a) => a.at > degradedAt + 300).length > 30, 'requests after the abort');
      await load.stop();
      const canaryAnswers = load.answers.filter((a) => a.body === 'canary broken\n');
      expect(canaryAnswers.length).toBeGreaterThan(0);
      expect(canaryAnswers.every((a) => a.status === 500)).toBe(true);
      // The abort came within the analysis interval of the first failures (plus the turn that measures them).
      expect(canaryAnswers.at(-1)!.at - canaryAnswers[0]!.at).toBeLessThan(3_000);
      expect(load.answers.filter((a) => a.at > degradedAt + 300).every((a) => a.body === 'stable\n')).toBe(true);
      // No request meant for the stable version failed: every answer is stable's 200 or the canary's own 500.
      const unexpected = load.answers.filter((a) => !(a.status === 200 && a.body === 'stable\n') && a.body !== 'canary broken\n');
      expect(unexpected).toEqual([]);
      const events: any = await (await apiFetch(s, `${NS}/events?fieldSelector=involvedObject.name=bad`)).json();
      expect(events.items.map((e: any) => e.reason)).toEqual(expect.arrayContaining(['AnalysisFailed', 'Aborted']));
      const status = await cli(['rollout', 'status', 'bad'], { skiff: s });
      expect(status.code).toBe(1);
      expect(status.stdout).toMatch(/Phase:\s+Degraded/);
      expect(status.stdout).toMatch(/success-rate\s+\S+\s+>= 0.95\s+FAILED/);
    } finally {
      await load.stop();
    }
  }, 60_000);

  it('promotes a healthy canary through every step, the weights showing in the Route, then serves 100%', async () => {
    await apply('good', functionAndRoute('good', await module('good-v1.wasm', 'v1')));
    await ready('good');
    const load = new Load(`${s.gateway}/good`);
    const weights = new Set<string>();
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const r = await getObj('routes', 'good');
        weights.add(JSON.stringify((r?.spec?.http?.[0]?.route ?? []).map((d: any) => [d.destination.function, d.weight ?? null])));
        await new Promise((res) => setTimeout(res, 50));
      }
    })();
    try {
      await waitFor(() => load.answers.length > 20, 'load running');
      const v2 = await module('good-v2.wasm', 'v2');
      await apply(
        'good-ro',
        rollout('good', v2, `    canary:
      steps: [{ setWeight: 25 }, { analysis: {} }, { setWeight: 60 }, { analysis: {} }, { setWeight: 100 }]
      analysis: { interval: 1s, failureLimit: 0, minRequests: 3, metrics: [{ name: success-rate, successRate: { min: 0.95 } }, { name: p99, latencyP99: { maxMs: 2000 } }, { name: budget, rego: { policy: "package canary\\nallow if input.metrics[\\"success-rate\\"] >= 0.99", query: data.canary.allow } }] }
`),
      );
      const watched = await cli(['rollout', 'status', 'good', '--watch', '--timeout', '40s'], { skiff: s });
      expect(watched.stdout).toMatch(/Phase:\s+Healthy/);
      expect(watched.code).toBe(0);
      const ro = await phase('good', 'Healthy');
      // skiff apply sent the canary's module file, as it does a Function's.
      expect(ro.spec.canary.module).toMatch(/^blob:sha256:[0-9a-f]{64}$/);
      expect(ro.status).toMatchObject({ stableModule: ro.spec.canary.module, currentStepIndex: 5, canaryWeight: 0 });
      const fn = await getObj('functions', 'good');
      expect(fn.spec.module).toBe(ro.spec.canary.module);
      expect(fn.metadata.annotations['rollout.skiff.dev/name']).toBe('good');
      expect(fn.metadata.managedFields.some((m: any) => m.manager === 'skiff-rollout' && m.fieldsV1['f:spec']['f:module'])).toBe(true);
      await waitFor(async () => !(await getObj('functions', 'good-canary')), 'canary deleted');
      const after = Date.now();
      await waitFor(() => load.answers.filter((a) => a.at > after + 200).length > 20, 'requests after promotion');
      await load.stop();
      watching = false;
      await watcher;
      expect([...weights]).toEqual(
        expect.arrayContaining([
          JSON.stringify([['good', null]]),
          JSON.stringify([['good', 75], ['good-canary', 25]]),
          JSON.stringify([['good', 40], ['good-canary', 60]]),
        ]),
      );
      expect(load.answers.every((a) => a.status === 200)).toBe(true);
      expect(load.answers.filter((a) => a.at > after + 200).every((a) => a.body === 'v2\n')).toBe(true);
      const events: any = await (await apiFetch(s, `${NS}/events?fieldSelector=involvedObject.name=good`)).json();
      expect(events.items.map((e: any) => e.reason)).toEqual(expect.arrayContaining(['StepCompleted', 'Promoted']));
    } finally {
      watching = false;
      await load.stop();
      await watcher;
    }
  }, 60_000);

  it('waits at a pause until skiff rollout promote, and skiff get rollouts shows the columns', async () => {
    await apply('paused', functionAndRoute('paused', await module('paused-v1.wasm', 'p1')));
    await ready('paused');
    await module('paused-v2.wasm', 'p2');
    // A path relative to the manifest, as a Function's module may be.
    await apply('paused-ro', rollout('paused', './paused-v2.wasm', `    canary:\n      steps: [{ setWeight: 50 }, { pause: {} }, { setWeight: 100 }]\n`));
    const watched = await cli(['rollout', 'status', 'paused', '-w', '--timeout', '20s'], { skiff: s });
    expect(watched.code).toBe(0);
    expect(watched.stdout).toMatch(/Phase:\s+Paused/);
    expect(watched.stdout).toMatch(/Weights:\s+stable 50%, canary 50%/);
    const bodies = new Set<string>();
    for (let i = 0; i < 40; i++) bodies.add(await (await fetch(`${s.gateway}/paused`)).text());
    expect(bodies).toEqual(new Set(['p1\n', 'p2\n']));
    const get = await cli(['get', 'rollouts'], { skiff: s });
    expect(get.stdout).toMatch(/^NAME\s+PHASE\s+STEP\s+WEIGHT\s+AGE\n/);
    expect(get.stdout).toMatch(/\npaused\s+Paused\s+1\/3\s+50\s+\d+s\n/);
    const promote = await cli(['rollout', 'promote', 'paused'], { skiff: s });
    expect(promote.stdout).toBe('rollout.skiff.dev/paused promoted\n');
    await phase('paused', 'Healthy');
    await waitFor(async () => (await (await fetch(`${s.gateway}/paused`)).text()) === 'p2\n', 'p2 serves');
    expect((await getObj('functions', 'paused')).spec.module).toBe((await getObj('rollouts', 'paused')).status.stableModule);
    expect((await getObj('rollouts', 'paused')).status.stableModule).toMatch(/^blob:sha256:/);
  }, 60_000);

  it('skiff rollout abort returns all traffic to stable', async () => {
    await apply('stop', functionAndRoute('stop', await module('stop-v1.wasm', 's1')));
    await ready('stop');
    await apply('stop-ro', rollout('stop', await module('stop-v2.wasm', 's2'), `    canary:\n      steps: [{ setWeight: 50 }, { pause: {} }]\n`));
    await phase('stop', 'Paused');
    expect((await getObj('routes', 'stop')).spec.http[0].route).toHaveLength(2);
    const abort = await cli(['rollout', 'abort', 'stop'], { skiff: s });
    expect(abort.stdout).toBe('rollout.skiff.dev/stop aborted\n');
    const ro = await phase('stop', 'Degraded');
    expect(ro.status.message).toMatch(/aborted by skiff rollout abort/);
    expect((await getObj('routes', 'stop')).spec.http[0].route).toEqual([{ destination: { function: 'stop' } }]);
    await waitFor(async () => !(await getObj('functions', 'stop-canary')), 'canary deleted');
    for (let i = 0; i < 10; i++) expect(await (await fetch(`${s.gateway}/stop`)).text()).toBe('s1\n');
    expect((await cli(['rollout', 'status', 'stop', '--watch'], { skiff: s })).code).toBe(1);
  }, 60_000);

  it('deleting a Rollout mid-way restores the Route and removes the canary', async () => {
    await apply('gone', functionAndRoute('gone', await module('gone-v1.wasm', 'g1')));
    await ready('gone');
    await apply('gone-ro', rollout('gone', await module('gone-v2.wasm', 'g2'), `    canary:\n      steps: [{ setWeight: 30 }, { pause: {} }]\n`));
    await phase('gone', 'Paused');
    expect((await getObj('routes', 'gone')).spec.http[0].route).toEqual([{ destination: { function: 'gone' }, weight: 70 }, { destination: { function: 'gone-canary' }, weight: 30 }]);
    expect((await cli(['delete', 'rollout', 'gone'], { skiff: s })).code).toBe(0);
    await waitFor(async () => !(await getObj('functions', 'gone-canary')), 'canary deleted');
    const route = await waitFor(async () => {
      const r = await getObj('routes', 'gone');
      return r.metadata.annotations?.['rollout.skiff.dev/name'] === undefined ? r : undefined;
    }, 'route annotation removed');
    expect(route.spec.http[0].route).toEqual([{ destination: { function: 'gone' } }]);
    for (let i = 0; i < 10; i++) expect(await (await fetch(`${s.gateway}/gone`)).text()).toBe('g1\n');
  }, 60_000);

  it('blue-green: the preview Route serves the new version, then promotion switches the active one', async () => {
    await apply('bg', functionAndRoute('bg', await module('bg-v1.wasm', 'blue')));
    await apply('bg-preview', functionAndRoute('bg', await module('bg-v1.wasm', 'blue'), 'bg-preview', 'preview-bg').split('---\n')[1]!);
    await ready('bg');
    const green = await module('bg-v2.wasm', 'green');
    await apply('bg-ro', rollout('bg', green, `    blueGreen: { previewRouteRef: { name: bg-preview } }\n`));
    await phase('bg', 'Paused');
    await waitFor(async () => (await (await fetch(`${s.gateway}/preview-bg`)).text()) === 'green\n', 'preview serves green');
    for (let i = 0; i < 10; i++) expect(await (await fetch(`${s.gateway}/bg`)).text()).toBe('blue\n');
    expect((await cli(['rollout', 'promote', 'bg'], { skiff: s })).code).toBe(0);
    await phase('bg', 'Healthy');
    for (let i = 0; i < 10; i++) expect(await (await fetch(`${s.gateway}/bg`)).text()).toBe('green\n');
    expect((await getObj('routes', 'bg-preview')).spec.http[0].route).toEqual([{ destination: { function: 'bg' } }]);
    expect(await (await fetch(`${s.gateway}/preview-bg`)).text()).toBe('green\n');
    await waitFor(async () => !(await getObj('functions', 'bg-canary')), 'canary deleted');
  }, 60_000);
});

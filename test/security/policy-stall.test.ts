import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type RunningSkiff,startSkiff } from '../helpers/skiff-process.js';

// Probes of issue 11 point 5: a policy must not stall the gateway. Each hostile policy sits behind a
// Route's authz filter of a real `skiff up --demo`; requests to it must fail closed within the deadline
// while GET /hello on the same gateway keeps its latency.

let skiff: RunningSkiff;
let token = '';

async function api(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const r = await fetch(skiff.api + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(10_000),
  });
  const text = await r.text();
  return { status: r.status, json: text ? JSON.parse(text) : undefined };
}

const NS = '/apis/skiff.dev/v1/namespaces/default';

async function policy(name: string, rego: string): Promise<void> {
  const r = await api('POST', `${NS}/policies`, { apiVersion: 'skiff.dev/v1', kind: 'Policy', metadata: { name }, spec: { rego } });
  expect(r.status, JSON.stringify(r.json)).toBe(201);
}

async function route(name: string, prefix: string, query: string): Promise<void> {
  const r = await api('POST', `${NS}/routes`, {
    apiVersion: 'skiff.dev/v1',
    kind: 'Route',
    metadata: { name },
    spec: { hosts: ['*'], filters: [{ authz: { policy: query } }], http: [{ match: [{ uri: { prefix } }], route: [{ destination: { function: 'hello' } }] }] },
  });
  expect(r.status, JSON.stringify(r.json)).toBe(201);
}

/** until polls f until it returns a value (bounded). */
async function until<T>(f: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function get(path: string): Promise<{ status: number; ms: number; body: string }> {
  const t0 = performance.now();
  const r = await fetch(skiff.gateway + path, { signal: AbortSignal.timeout(10_000) });
  const body = await r.text();
  return { status: r.status, ms: performance.now() - t0, body };
}

const p99 = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.ceil(xs.length * 0.99) - 1]!;

// 30 stars: as a backtracking regular expression this took minutes on a 150-character path
const HOSTILE_GLOB = '/glob/*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b';
const LONG_A = 'a'.repeat(150);

beforeAll(async () => {
  skiff = await startSkiff({ demo: true });
  token = readFileSync(join(skiff.dataDir, 'token'), 'utf8').trim();
  await until(async () => ((await get('/hello')).status === 200 ? true : undefined));
  const apiPort = new URL(skiff.api).port;
  await policy('stall-range', 'package stall.range\nallow if count(numbers.range(1, 7200000)) > 0\n');
  await policy('stall-glob', `package stall.glob\nallow if glob.match("${HOSTILE_GLOB}", ["/"], input.attributes.request.http.path)\n`);
  await policy('stall-regex', 'package stall.regex\nallow if regex.match("^/regex/(a+)+$", input.attributes.request.http.path)\n');
  // Runs until its deadline on every request: the back-off must take it off the gateway's thread.
  await policy('stall-spin', 'package stall.spin\nallow if count([x | some x in numbers.range(1, 999999); some y in numbers.range(1, 999999); x == y + 1]) < 0\n');
  await policy('stall-ssrf', [
    'package stall.ssrf',
    'default allow := {"allowed": false, "http_status": 403, "body": "refused\\n"}',
    `allow := {"allowed": true} if http.send({"method": "GET", "url": "http://127.0.0.1:${apiPort}/apis"}).status_code > 0`,
  ].join('\n'));
  await route('stall-range', '/range', 'data.stall.range.allow');
  await route('stall-glob', '/glob', 'data.stall.glob.allow');
  await route('stall-regex', '/regex', 'data.stall.regex.allow');
  await route('stall-spin', '/spin', 'data.stall.spin.allow');
  await route('stall-ssrf', '/ssrf', 'data.stall.ssrf.allow');
  for (const name of ['stall-range', 'stall-glob', 'stall-regex', 'stall-spin', 'stall-ssrf']) {
    await until(async () => ((await api('GET', `${NS}/policies/${name}`)).json?.status?.conditions?.[0]?.status === 'True' ? true : undefined));
  }
  // the routes are live once the gateway stops answering 404 for them
  for (const p of ['/range', '/glob/x', '/regex/x', '/spin', '/ssrf']) await until(async () => ((await get(p)).status === 404 ? undefined : true));
}, 60_000);

afterAll(async () => {
  await skiff?.stop();
});

describe('a policy cannot stall the gateway', () => {
  it('a Policy calling test.sleep is refused with the compile error and never sleeps', async () => {
    await policy('sleepy', 'package stall.sleepy\nallow if {\n\ttest.sleep("2s")\n}\n');
    await route('sleepy', '/sleepy', 'data.stall.sleepy.allow');
    const cond = await until(async () => {
      const c = (await api('GET', `${NS}/policies/sleepy`)).json?.status?.conditions?.[0];
      return c?.status === 'False' ? c : undefined;
    });
    expect(cond.reason).toBe('CompileError');
    expect(cond.message).toMatch(/default\/sleepy\.rego:3: rego_type_error: undefined function test\.sleep/);
    const r = await until(async () => {
      const x = await get('/sleepy');
      return x.status === 404 ? undefined : x;
    });
    expect(r.status).toBe(403);
    expect(r.ms).toBeLessThan(1000);
  });

  it('numbers.range(1, 7200000), a hostile glob on a 150-character path and a catastrophic regex each fail closed within the deadline', async () => {
    for (const path of ['/range', `/glob/${LONG_A}`, `/regex/${'a'.repeat(40)}!`, '/regex/aaaa!']) {
      const r = await get(path);
      expect(r.status, path).toBe(403);
      // the deadline is 20ms; the rest is the HTTP round trip on a loaded machine
      expect(r.ms, path).toBeLessThan(500);
    }
    // the glob and regex policies still decide correctly when they should allow
    expect((await get(`/glob/${'a'.repeat(30)}b`)).status).toBe(200);
    expect((await get('/regex/aaaa')).status).toBe(200);
  });

  it('while hostile policies are evaluated, GET /hello keeps p99 under 50 ms', async () => {
    const hostile = ['/range', `/glob/${LONG_A}`, `/regex/${'a'.repeat(40)}!`, '/spin'];
    // One round: the /hello loop alone, then again while a bounded loop sends the hostile requests. The
    // machine is shared with other heavy work, so the bound is 50 ms or, when the loop alone is already
    // slower than that, its own p99 plus one deadline's worth; a noisy round is measured again (at most
    // three). A stall (the bug) fails every round: one hostile request held the process for minutes.
    const round = async () => {
      const baseline: number[] = [];
      for (let i = 0; i < 200; i++) baseline.push((await get('/hello')).ms);
      const statuses: number[] = [];
      const hostileMs: number[] = [];
      let done = false;
      const attack = (async () => {
        try {
          for (let i = 0; i < 60; i++) {
            const r = await get(hostile[i % hostile.length]!);
            statuses.push(r.status);
            hostileMs.push(r.ms);
          }
        } finally {
          done = true;
        }
      })();
      const latencies: number[] = [];
      const started = Date.now();
      while ((!done || latencies.length < 200) && latencies.length < 3000 && Date.now() - started < 60_000) {
        const r = await get('/hello');
        expect(r.status).toBe(200);
        latencies.push(r.ms);
      }
      await attack;
      expect(statuses).toHaveLength(60);
      expect(statuses.every((x) => x === 403)).toBe(true);
      // nothing came near a stall, hostile or not
      expect(Math.max(...hostileMs, ...latencies)).toBeLessThan(2000);
      return { p99: p99(latencies), baseline: p99(baseline), n: latencies.length };
    };
    const rounds: Array<{ p99: number; baseline: number; n: number }> = [];
    for (let i = 0; i < 3; i++) {
      const r = await round();
      rounds.push(r);
      if (r.p99 < Math.max(50, r.baseline + 30)) break;
    }
    const last = rounds[rounds.length - 1]!;
    const text = rounds.map((r) => `p99 ${r.p99.toFixed(1)}ms of ${r.n} (alone ${r.baseline.toFixed(1)}ms)`).join('; ');
    expect(last.p99, text).toBeLessThan(Math.max(50, last.baseline + 30));

    // Every deadline failure was logged within reach of the 20ms deadline. The spin policy always runs
    // to it; on a loaded machine another of these policies may too (descheduled mid-evaluation, or on a cold start).
    const log = skiff.stderr();
    const misses = log.split('\n').filter((l) => l.includes('authz deadline exceeded')).map((l) => JSON.parse(l) as { policy: string; elapsedMs: number; deadlineMs: number; route: string });
    expect(misses.some((m) => m.policy === 'data.stall.spin.allow' && m.route.includes('default/stall-spin'))).toBe(true);
    for (const m of misses) {
      expect(m.policy).toMatch(/^data\.stall\.\w+\.allow$/);
      expect(m.deadlineMs).toBe(20);
      expect(m.elapsedMs).toBeLessThan(250);
    }
    // three misses start a policy's first back-off, after which each miss starts the next: a few lines
    // per policy, never one per request
    expect(misses.filter((m) => m.policy === 'data.stall.spin.allow').length).toBeLessThan(8);
    expect(log.match(/policy data\.stall\.spin\.allow keeps missing its 20ms deadline: its decisions are denied without evaluation for 5s/g)?.length).toBe(1);
  }, 180_000);

  it("http.send to Skiff's own API port is refused", async () => {
    const r = await get('/ssrf');
    expect(r.status).toBe(403);
    expect(r.body).toBe('refused\n');
  });
});

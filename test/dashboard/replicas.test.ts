import pino from 'pino';
import { describe, expect, it } from 'vitest';

import { builtinKinds } from '../../src/api/kinds/index.js';
import { ResourceService } from '../../src/api/resources.js';
import { ApiServer } from '../../src/api/server.js';
import { Dashboard, DecisionRing, type ReplicaStat, SampleRing, type Tick } from '../../src/dashboard/index.js';
import type { GatewayMetrics, TrafficSnapshot } from '../../src/gateway/index.js';
import { MemoryStore } from '../../src/store/index.js';

const BUCKETS = [100, 1_000];

function snapshot(requests: number): TrafficSnapshot {
  return { requests, responses: { '2xx': requests }, retries: 0, hedges: 0, ejections: 0, overflows: 0, latencyUs: { buckets: BUCKETS, counts: [requests, 0, 0], count: requests, sumUs: 0 } };
}

/** A fake autoscaler and gateway the test moves by hand, read by a ring on a fake clock. */
function setup(opts: { fineSlots?: number; coarseEvery?: number; coarseSlots?: number } = {}) {
  const upstreams: Record<string, TrafficSnapshot> = {};
  const stats = new Map<string, ReplicaStat>();
  let now = 5_000_000;
  let reads = 0;
  let broken = false;
  const r = new SampleRing({
    now: () => now,
    read: (): GatewayMetrics => ({ inFlight: 0, shed: 0, notFound: 0, badPath: 0, badPathByStatus: {}, routes: {}, upstreams: structuredClone(upstreams) }),
    replicas: () => {
      reads++;
      if (broken) throw new Error('autoscaler not ready');
      return [...stats.values()].map((s) => ({ ...s }));
    },
    ...opts,
  });
  const set = (name: string, v: Partial<ReplicaStat>) => {
    const before = stats.get(name) ?? { namespace: 'default', name, desired: 0, replicas: 0, ready: 0, panic: false, reason: 'initial', coldStarts: 0 };
    stats.set(name, { ...before, ...v });
  };
  const advance = () => {
    now += 1000;
    r.sample();
  };
  return { r, upstreams, stats, set, advance, reads: () => reads, breakSource: (b: boolean) => (broken = b) };
}

describe('SampleRing with a replicas source', () => {
  it('records desired, ready, panic, cold starts per interval and the forecast, next to the traffic', () => {
    const { r, upstreams, set, advance } = setup();
    const ticks: Tick[] = [];
    r.onTick((t) => ticks.push(t));
    set('hello', { desired: 1, replicas: 1, ready: 1, coldStarts: 2, reason: 'initial' });
    upstreams['fn:default/hello'] = snapshot(0);
    r.sample();
    set('hello', { desired: 3, replicas: 3, ready: 1, panic: true, coldStarts: 4, reason: 'panic', forecastRate: 12.5 });
    upstreams['fn:default/hello'] = snapshot(30);
    advance();
    set('hello', { desired: 3, replicas: 3, ready: 3, panic: false, coldStarts: 4, reason: 'reactive', forecastRate: undefined });
    upstreams['fn:default/hello'] = snapshot(40);
    advance();
    const h = r.history(['function:default/hello'])[0]!;
    expect(h.rps).toEqual([30, 10]);
    expect(h.desired).toEqual([3, 3]);
    expect(h.ready).toEqual([1, 3]);
    expect(h.panic).toEqual([1, 0]);
    // The counter is cumulative: the first interval saw two cold starts, the second none.
    expect(h.coldStarts).toEqual([2, 0]);
    expect(h.forecastRate).toEqual([12.5, null]);
    expect(ticks.map((t) => t.replicas)).toEqual([[['function:default/hello', 3, 1, 1, 2, 12.5]], [['function:default/hello', 3, 3, 0, 0, null]]]);
    expect(ticks[0]!.points).toEqual([['function:default/hello', 30, 0, 0.1, 0.1]]);
    const top = r.summary().find((s) => s.name === 'default/hello')!;
    expect(top).toMatchObject({ kind: 'function', rps: 20, requests: 40, replicas: 3, ready: 3, desired: 3, panic: false, reason: 'reactive' });
  });

  it('gives a Function with replicas but no traffic a series, at zero once scaled to zero, and drops it when it is gone', () => {
    const { r, stats, set, advance } = setup();
    set('idle', { desired: 1, replicas: 1, ready: 1, coldStarts: 1 });
    r.sample();
    advance();
    set('idle', { desired: 0, replicas: 0, ready: 0, reason: 'minScale' });
    advance();
    const h = r.history()[0]!;
    expect(h.key).toBe('function:default/idle');
    expect(h.rps).toEqual([0, 0]);
    expect(h.p99Ms).toEqual([null, null]);
    expect(h.desired).toEqual([1, 0]);
    expect(h.ready).toEqual([1, 0]);
    expect(h.coldStarts).toEqual([0, 0]);
    expect(r.summary()).toEqual([{ kind: 'function', name: 'default/idle', rps: 0, requests: 0, errors: 0, errorRate: 0, p99Ms: null, replicas: 0, ready: 0, desired: 0, panic: false, reason: 'minScale' }]);
    stats.clear();
    advance();
    expect(r.keys()).toEqual([]);
  });

  it('folds into coarse points: the most desired and ready, panic if any reading panicked, cold starts summed, forecast averaged', () => {
    const { r, set, advance } = setup({ fineSlots: 2, coarseEvery: 4, coarseSlots: 5 });
    set('f', { desired: 1, ready: 1, coldStarts: 0 });
    r.sample();
    const script: Partial<ReplicaStat>[] = [
      { desired: 2, ready: 1, coldStarts: 1, forecastRate: 10 },
      { desired: 6, ready: 2, coldStarts: 2, panic: true, forecastRate: 20 },
      { desired: 4, ready: 5, coldStarts: 5, panic: false, forecastRate: undefined },
      { desired: 1, ready: 4, coldStarts: 5 },
      // The second coarse interval: quiet, scaled down to one.
      { desired: 1, ready: 1, coldStarts: 5 },
      { desired: 1, ready: 1, coldStarts: 5 },
      { desired: 1, ready: 1, coldStarts: 5 },
      { desired: 1, ready: 1, coldStarts: 5 },
      // Fine points only (kept: the last two).
      { desired: 2, ready: 1, coldStarts: 6 },
      { desired: 2, ready: 2, coldStarts: 6 },
    ];
    for (const v of script) {
      set('f', v);
      advance();
    }
    const h = r.history()[0]!;
    expect(h.t.length).toBe(4);
    expect(h.desired).toEqual([6, 1, 2, 2]);
    expect(h.ready).toEqual([5, 1, 1, 2]);
    expect(h.panic).toEqual([1, 0, 0, 0]);
    expect(h.coldStarts).toEqual([5, 0, 1, 0]);
    expect(h.forecastRate).toEqual([15, null, null, null]);
  });

  it('counts cold starts from zero when the counter goes back (the autoscaler restarted)', () => {
    const { r, set, advance } = setup();
    set('f', { coldStarts: 40 });
    r.sample();
    set('f', { coldStarts: 3 });
    advance();
    expect(r.history()[0]!.coldStarts).toEqual([3]);
  });

  it('reads a source that throws as its last answer, so idle Functions keep their series', () => {
    const { r, set, advance, breakSource } = setup();
    set('f', { desired: 2, ready: 2, coldStarts: 2 });
    r.sample();
    advance();
    breakSource(true);
    set('f', { coldStarts: 3 });
    expect(() => advance()).not.toThrow();
    breakSource(false);
    advance();
    expect(r.history()[0]!.desired).toEqual([2, 2, 2]);
    // The cold start that happened while the source failed is counted once, when it answers again.
    expect(r.history()[0]!.coldStarts).toEqual([0, 0, 1]);
  });

  it('passes the source to a ring at another interval', () => {
    const { r, set } = setup();
    set('f', { desired: 1, ready: 1 });
    const live = r.live(100);
    const ticks: Tick[] = [];
    live.onTick((t) => ticks.push(t));
    live.sample();
    live.sample();
    expect(ticks[0]!.replicas).toEqual([['function:default/f', 1, 1, 0, 0, null]]);
  });

  it('leaves a ring without a source as it was: no replicas in ticks, history or summary', () => {
    let now = 0;
    const plain = new SampleRing({ now: () => (now += 1000), read: (): GatewayMetrics => ({ inFlight: 0, shed: 0, notFound: 0, badPath: 0, badPathByStatus: {}, routes: { 'default/r#0': snapshot(now) }, upstreams: { 'fn:default/g': snapshot(now) } }) });
    const ticks: Tick[] = [];
    plain.onTick((t) => ticks.push(t));
    plain.sample();
    plain.sample();
    expect(ticks[0]).not.toHaveProperty('replicas');
    expect(ticks[0]!.points.length).toBe(2);
    for (const h of plain.history()) expect(h).not.toHaveProperty('desired');
    expect(plain.summary().length).toBe(2);
    for (const s of plain.summary()) expect(Object.keys(s).sort()).toEqual(['errorRate', 'errors', 'kind', 'name', 'p99Ms', 'requests', 'rps']);
  });
});

describe('the dashboard API with a replicas source', () => {
  it('serves replicas in the history, in top and in the stream\'s ticks', async () => {
    const { r, set, upstreams, advance } = setup();
    set('idle', { desired: 0, ready: 0, reason: 'minScale' });
    set('busy', { desired: 2, replicas: 2, ready: 1, panic: true, reason: 'panic', coldStarts: 1 });
    upstreams['fn:default/busy'] = snapshot(0);
    r.sample();
    const dashboard = new Dashboard({ samples: r, decisions: new DecisionRing(1), assetDir: '/nonexistent' });
    const server = new ApiServer({ resources: new ResourceService(new MemoryStore(), builtinKinds()), logger: pino({ level: 'silent' }), version: 't', token: 'tk', mounts: [dashboard.mount] });
    const { port } = await server.listen('127.0.0.1', 0);
    const base = `http://127.0.0.1:${port}`;
    const headers = { authorization: 'Bearer tk' };
    const abort = new AbortController();
    try {
      const res = await fetch(`${base}/ui/api/stream`, { headers, signal: abort.signal });
      const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
      await expect.poll(() => dashboard.streams, { timeout: 5000 }).toBe(1);
      // start() forwards ticks (and takes a reading of its own on the fake clock); then one second of traffic.
      dashboard.start();
      upstreams['fn:default/busy'] = snapshot(7);
      advance();
      let text = '';
      const deadline = Date.now() + 5000;
      while (!text.includes('"function:default/busy",7') && Date.now() < deadline) text += (await reader.read()).value ?? '';
      const ticks = [...text.matchAll(/event: tick\ndata: (.*)\n/g)].map((m) => JSON.parse(m[1]!) as Tick);
      const tick = ticks.find((t) => t.points.length)!;
      expect(tick.points.map((p) => p[0])).toEqual(['function:default/busy']);
      expect(tick.replicas).toEqual(expect.arrayContaining([['function:default/busy', 2, 1, 1, 0, null], ['function:default/idle', 0, 0, 0, 0, null]]));

      const hist = (await (await fetch(`${base}/ui/api/samples?key=function:default/idle&key=function:default/busy`, { headers })).json()) as { series: { key: string; rps: number[]; desired: number[]; panic: number[] }[] };
      expect(hist.series.map((h) => [h.key, h.desired.at(-1), h.panic.at(-1)])).toEqual([
        ['function:default/idle', 0, 0],
        ['function:default/busy', 2, 1],
      ]);
      const top = (await (await fetch(`${base}/ui/api/top`, { headers })).json()) as { series: { name: string; ready?: number; desired?: number; reason?: string }[] };
      expect(top.series.map((x) => [x.name, x.ready, x.desired, x.reason])).toEqual([
        ['default/busy', 1, 2, 'panic'],
        ['default/idle', 0, 0, 'minScale'],
      ]);
    } finally {
      abort.abort();
      dashboard.stop();
      await server.close();
    }
  });
});

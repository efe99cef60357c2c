import { describe, expect, it } from 'vitest';

import { ActivationError, ActivationFullError, ScaleGate, ScaleGates } from '../../src/gateway/activator.js';

function owner(onActivate: (g: () => ScaleGate) => string | undefined = () => undefined) {
  const calls: string[] = [];
  let gate!: ScaleGate;
  return {
    calls,
    set: (g: ScaleGate) => (gate = g),
    owner: {
      activate: (key: string) => {
        calls.push(key);
        return onActivate(() => gate);
      },
    },
  };
}

describe('ScaleGate (the activator)', () => {
  it('lets requests through without a promise while a replica is ready', () => {
    const o = owner();
    const g = new ScaleGate('ns/f', o.owner);
    g.open();
    g.enter();
    expect(g.admit(new AbortController().signal)).toBeUndefined();
    g.leave();
    expect(o.calls).toEqual([]);
    expect(g.sample()).toMatchObject({ requests: 1, coldStarts: 0, waiting: 0 });
  });

  it('activates a Function at zero and passes the request at once when the owner readies it synchronously', () => {
    const o = owner((g) => {
      g().open();
      return undefined;
    });
    const g = new ScaleGate('ns/f', o.owner);
    o.set(g);
    g.enter();
    expect(g.admit(new AbortController().signal)).toBeUndefined();
    expect(o.calls).toEqual(['ns/f']);
    expect(g.totalColdStarts).toBe(1);
  });

  it('holds requests until a replica is ready, then releases every one', async () => {
    const o = owner();
    const g = new ScaleGate('ns/f', o.owner);
    const waits = [1, 2, 3].map(() => {
      g.enter();
      return g.admit(new AbortController().signal)!;
    });
    expect(g.waiting).toBe(3);
    g.open();
    await Promise.all(waits);
    expect(g.waiting).toBe(0);
  });

  it('answers 503 ActivationFullError once the queue is full, and never queues past it', async () => {
    const g = new ScaleGate('ns/f', owner().owner, { maxQueue: 2, timeoutMs: 10_000 });
    const a = g.admit(new AbortController().signal)!;
    const b = g.admit(new AbortController().signal)!;
    await expect(g.admit(new AbortController().signal)).rejects.toBeInstanceOf(ActivationFullError);
    expect(g.waiting).toBe(2);
    g.open();
    await Promise.all([a, b]);
  });

  it('times a waiting request out with a message naming the Function', async () => {
    const g = new ScaleGate('ns/slow', owner().owner, { maxQueue: 4, timeoutMs: 30 });
    const err = await g.admit(new AbortController().signal)!.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ActivationError);
    expect((err as ActivationError).status).toBe(503);
    expect((err as Error).message).toMatch(/ns\/slow .*no replica became ready within/);
    expect(g.waiting).toBe(0);
  });

  it('lets a request that ends while waiting go, and fails waiting requests with the owner\'s reason', async () => {
    const g = new ScaleGate('ns/f', owner().owner, { maxQueue: 4, timeoutMs: 10_000 });
    const ac = new AbortController();
    const gone = g.admit(ac.signal)!;
    const other = g.admit(new AbortController().signal)!;
    ac.abort();
    await expect(gone).rejects.toMatchObject({ code: 'client_closed' });
    g.fail('CrashLoopBackOff: exit 1');
    await expect(other).rejects.toThrow(/CrashLoopBackOff: exit 1/);
  });

  it('refuses at once when the owner says no replica can come', async () => {
    const g = new ScaleGate('ns/f', owner(() => 'spec.replicas is 0').owner);
    await expect(g.admit(new AbortController().signal)).rejects.toThrow(/spec.replicas is 0/);
    expect(g.waiting).toBe(0);
  });

  it('averages in-flight requests over time for the autoscaler', async () => {
    const g = new ScaleGate('ns/f', owner().owner);
    g.sample();
    g.enter();
    g.enter();
    await new Promise((r) => setTimeout(r, 40));
    g.leave();
    g.leave();
    await new Promise((r) => setTimeout(r, 40));
    const s = g.sample();
    expect(s.requests).toBe(2);
    // Two in flight for about half the period.
    expect(s.concurrency).toBeGreaterThan(0.6);
    expect(s.concurrency).toBeLessThan(1.6);
  });
});

describe('ScaleGates', () => {
  it('sends waiting requests away when a Function is removed', async () => {
    const gates = new ScaleGates();
    gates.useOwner({ activate: () => undefined });
    const g = gates.ensure('ns/gone');
    const w = g.admit(new AbortController().signal)!;
    gates.remove('ns/gone', 'the Function was deleted while the request waited for a replica');
    await expect(w).rejects.toMatchObject({ code: 'function_removed', status: 503 });
    expect(gates.get('ns/gone')).toBeUndefined();
  });
});

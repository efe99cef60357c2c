import { formatValue, type Value } from '../value.js';

import type { Builtin } from './types.js';

/** Misc: print, trace, opa.runtime. `print` takes any number of operands (arity -1). */
export const register: Record<string, Builtin> = {
  print: {
    arity: -1,
    sideEffect: true,
    fn: (a, ctx) => {
      ctx.print(a.map((v) => (typeof v === 'string' ? v : formatValue(v))).join(' '));
      return true;
    },
  },
  trace: {
    arity: 1,
    sideEffect: true,
    fn: (a, ctx) => {
      if (typeof a[0] !== 'string') return undefined;
      ctx.print(`trace: ${a[0]}`);
      return true;
    },
  },
  'rego.metadata.rule': { arity: 0, fn: (_a, ctx) => ctx.metadata?.().rule ?? (Object.create(null) as Value) },
  'rego.metadata.chain': { arity: 0, fn: (_a, ctx) => ctx.metadata?.().chain ?? [] },
  'opa.runtime': {
    arity: 0,
    // Runtime facts are only reported when configured; an unconfigured engine answers {} (as OPA's tests expect).
    fn: () => Object.create(null) as Value,
  },
};

/**
 * test.sleep blocks for a Go duration (used by tests of per-query time caching). It is registered only
 * for `skiff policy test` and the conformance runner (see builtinTable), and even there it wakes every
 * few milliseconds to honour the evaluation's deadline.
 */
register['test.sleep'] = {
  arity: 1,
  sideEffect: true,
  fn: (a, ctx) => {
    const m = typeof a[0] === 'string' ? /^(\d+)(ms|s)$/.exec(a[0]) : null;
    if (!m) return null;
    const until = Date.now() + Number(m[1]) * (m[2] === 's' ? 1000 : 1);
    const cell = new Int32Array(new SharedArrayBuffer(4));
    for (let left = until - Date.now(); left > 0; left = until - Date.now()) {
      ctx.check();
      Atomics.wait(cell, 0, 0, Math.min(left, 10));
    }
    ctx.check();
    return null;
  },
};

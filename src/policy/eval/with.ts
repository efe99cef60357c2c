import type { Expr, With } from '../ast/types.js';
import { isObject, ObjectBuilder, objEntries, objGet, type PlainObject, type Value } from '../value.js';

import type { Ctx, EvalEngine, Frame, K, Mock } from './types.js';

// `with` modifiers: each one replaces input, part of data, or a function for one expression, in a
// fresh context (its own rule cache), restored before the rest of the body continues.

/** evalWith evaluates an expression under its `with` modifiers. */
export function evalWith(ev: EvalEngine, e: Expr, frame: Frame, k: K): boolean {
  const saved = ev.ctx;
  const next: Ctx = { input: saved.input, overrides: saved.overrides && new Map(saved.overrides), mocks: saved.mocks && new Map(saved.mocks), cache: new Map() };
  const apply = (i: number): boolean => {
    if (i === e.with.length) {
      const inner: Expr = { ...e, with: [] };
      ev.ctx = next;
      try {
        return ev.evalExpr(inner, frame, () => {
          ev.ctx = saved;
          try {
            return k();
          } finally {
            ev.ctx = next;
          }
        });
      } finally {
        ev.ctx = saved;
      }
    }
    const w = e.with[i]!;
    return withValue(ev, w, frame, (val) => {
      applyWith(ev, next, w, val, frame);
      return apply(i + 1);
    });
  };
  return apply(0);
}

/** withValue evaluates a `with` replacement: a value, or a function/built-in named as a replacement. */
export function withValue(ev: EvalEngine, w: With, frame: Frame, k: (v: Mock) => boolean): boolean {
  const v = w.value;
  if (v.type === 'call' && v.args.length === 0 && v.target && (v.target.kind === 'func' || ev.builtins((v.target as { name: string }).name)?.arity !== 0)) {
    return k(v.target.kind === 'builtin' ? { kind: 'builtin', name: v.target.name } : { kind: 'func', path: (v.target as { path: string[] }).path });
  }
  return ev.evalTerm(v, frame, (x) => k({ kind: 'value', value: x }));
}

/** applyWith records one replacement in the context of a `with` scope. */
export function applyWith(ev: EvalEngine, ctx: Ctx, w: With, mock: Mock, frame: Frame): void {
  const t = w.target;
  if (t.type === 'call') {
    const key = t.target!.kind === 'builtin' ? (t.target as { name: string }).name : 'data.' + (t.target as { path: string[] }).path.join('.');
    (ctx.mocks ??= new Map()).set(key, mock);
    return;
  }
  if (t.type !== 'ref' || t.head.type !== 'var') return;
  const path: Value[] = [];
  for (const p of t.path) {
    let got: Value | undefined;
    ev.evalTerm(p, frame, (x) => ((got = x), true));
    path.push(got!);
  }
  if (t.head.name === 'data') {
    const node = ev.root.lookup(path.map(String));
    if (node?.isFunction) {
      (ctx.mocks ??= new Map()).set('data.' + path.join('.'), mock);
      return;
    }
    if (mock.kind !== 'value') return;
    (ctx.overrides ??= new Map()).set(path.map(String).join('\u0000'), mock.value);
    return;
  }
  if (mock.kind !== 'value') return;
  ctx.input = path.length ? setPath(ctx.input ?? (Object.create(null) as PlainObject), path, mock.value) : mock.value;
}

/** setPath returns a copy of doc with path set to value (objects are created as needed). */
export function setPath(doc: Value, path: Value[], value: Value): Value {
  if (!path.length) return value;
  const [head, ...rest] = path;
  const b = new ObjectBuilder();
  if (isObject(doc)) for (const [k, v] of objEntries(doc)) b.set(k, v);
  const cur = isObject(doc) ? objGet(doc, head!) : undefined;
  b.set(head!, setPath(cur ?? (Object.create(null) as PlainObject), rest, value));
  return b.build();
}

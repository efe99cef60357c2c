import { isObject, objEntries, objGet, RSet, type Value } from '../value.js';

import { Meter } from './limits.js';
import { type Builtin, type BuiltinContext,typeErr } from './types.js';

function neighbours(g: Value, n: Value): Value[] {
  if (!isObject(g)) return [];
  const e = objGet(g, n);
  if (Array.isArray(e)) return e;
  if (e instanceof RSet) return e.values();
  return [];
}

function initial(name: string, v: Value): Value[] {
  if (Array.isArray(v)) return v;
  if (v instanceof RSet) return v.values();
  throw typeErr(name, 2, 'one of {array, set}', v);
}

/**
 * walkValue lists [path, value] pairs depth-first, children before their parent. Every result holds its
 * own copy of its path, so a deep document costs depth² elements: the count covers the path elements.
 */
export function walkValue(v: Value, ctx?: BuiltinContext): Value[] {
  const m = ctx ? new Meter('walk', ctx, 8) : undefined;
  const out: Value[] = [];
  // explicit stack: documents may be nested deeper than the JS call stack allows
  const stack: Array<{ path: Value[]; v: Value; done: boolean }> = [{ path: [], v, done: false }];
  while (stack.length) {
    const top = stack.pop()!;
    if (top.done) {
      out.push([top.path, top.v]);
      continue;
    }
    if (top.v instanceof RSet) {
      // sets come before their elements (as OPA emits them); arrays and objects after
      out.push([top.path, top.v]);
    } else {
      top.done = true;
      stack.push(top);
    }
    const kids: Array<[Value, Value]> = Array.isArray(top.v) ? top.v.map((x, i) => [i, x]) : top.v instanceof RSet ? top.v.values().map((x) => [x, x]) : isObject(top.v) ? objEntries(top.v) : [];
    for (let i = kids.length - 1; i >= 0; i--) {
      // every result holds its own copy of its path
      m?.grow(2 + top.path.length);
      stack.push({ path: [...top.path, kids[i]![0]], v: kids[i]![1], done: false });
    }
  }
  return out;
}

/** Graphs: reachability over adjacency objects, and `walk` (a relation: one result per node). */
export const register: Record<string, Builtin> = {
  'graph.reachable': {
    arity: 2,
    fn: (a, ctx) => {
      if (!isObject(a[0]!)) throw typeErr('graph.reachable', 1, 'object', a[0]!);
      const seen = new RSet();
      const queue = [...initial('graph.reachable', a[1]!)];
      const m = new Meter('graph.reachable', ctx, 8);
      for (let head = 0; head < queue.length; head++) {
        m.step();
        const n = queue[head]!;
        if (seen.has(n) || objGet(a[0] as never, n) === undefined) continue;
        seen.add(n);
        const next = neighbours(a[0]!, n);
        m.grow(next.length);
        for (const x of next) queue.push(x);
      }
      return seen;
    },
  },
  'graph.reachable_paths': {
    arity: 2,
    fn: (a, ctx) => {
      if (!isObject(a[0]!)) throw typeErr('graph.reachable_paths', 1, 'object', a[0]!);
      const out = new RSet();
      const g = a[0]!;
      const m = new Meter('graph.reachable_paths', ctx, 8);
      // depth first with one visited set: reaching a visited node ends the path where it stands
      const visited = new RSet();
      const visit = (n: Value, path: Value[]): void => {
        m.grow(1 + path.length);
        if (objGet(g as never, n) === undefined) {
          if (path.length) out.add(path);
          return;
        }
        visited.add(n);
        const p = [...path, n];
        const next = neighbours(g, n);
        if (!next.length) {
          out.add(p);
          return;
        }
        for (const x of next) {
          // a visited node that leads further ends the path here; leaves are always reached
          if (visited.has(x) && neighbours(g, x).some((y) => objGet(g as never, y) !== undefined)) out.add(p);
          else visit(x, p);
        }
      };
      for (const n of initial('graph.reachable_paths', a[1]!)) visit(n, []);
      return out;
    },
  },
  walk: { arity: 1, relation: true, fn: (a, ctx) => walkValue(a[0]!, ctx) },
};

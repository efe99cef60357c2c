import { RSet, isObject, objEntries, objGet, type Value } from '../value.js';
import { typeErr, type Builtin } from './types.js';

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

/** walkValue lists [path, value] pairs depth-first, children before their parent. */
export function walkValue(v: Value): Value[] {
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
    for (let i = kids.length - 1; i >= 0; i--) stack.push({ path: [...top.path, kids[i]![0]], v: kids[i]![1], done: false });
  }
  return out;
}

/** Graphs: reachability over adjacency objects, and `walk` (a relation: one result per node). */
export const register: Record<string, Builtin> = {
  'graph.reachable': {
    arity: 2,
    fn: (a) => {
      if (!isObject(a[0]!)) throw typeErr('graph.reachable', 1, 'object', a[0]!);
      const seen = new RSet();
      const queue = [...initial('graph.reachable', a[1]!)];
      while (queue.length) {
        const n = queue.shift()!;
        if (seen.has(n) || objGet(a[0] as never, n) === undefined) continue;
        seen.add(n);
        queue.push(...neighbours(a[0]!, n));
      }
      return seen;
    },
  },
  'graph.reachable_paths': {
    arity: 2,
    fn: (a) => {
      if (!isObject(a[0]!)) throw typeErr('graph.reachable_paths', 1, 'object', a[0]!);
      const out = new RSet();
      const g = a[0]!;
      // depth first with one visited set: reaching a visited node ends the path where it stands
      const visited = new RSet();
      const visit = (n: Value, path: Value[]): void => {
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
  walk: { arity: 1, relation: true, fn: (a) => walkValue(a[0]!) },
};

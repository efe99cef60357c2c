import { equal, isObject, ObjectBuilder, objEntries, objGet, type PlainObject, type RObject, RSet, type Value } from '../value.js';

import { Meter } from './limits.js';
import { type Builtin, type BuiltinContext,BuiltinError, typeErr } from './types.js';

type Path = Value[];

function paths(name: string, v: Value): Path[] {
  const bad = (): never => {
    throw new BuiltinError('eval_type_error', `${name}: operand 2 must be one of {set, array} but got ${isObject(v) ? 'object' : typeof v === 'number' ? 'number' : typeof v}`);
  };
  const xs = Array.isArray(v) ? v : v instanceof RSet ? v.values() : bad();
  return xs.map((p) => {
    if (typeof p === 'string') return p.replace(/^\//, '').split('/').filter((s) => s !== '').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
    if (Array.isArray(p)) return p;
    throw new BuiltinError('eval_type_error', `${name}: operand 2 must be one of {set, array} containing string paths or array of path segments but got ${typeof p}`);
  });
}

interface Trie {
  end: boolean;
  kids: Map<string, [Value, Trie]>;
}

function trie(ps: Path[]): Trie {
  const root: Trie = { end: false, kids: new Map() };
  for (const p of ps) {
    let n = root;
    for (const seg of p) {
      const k = JSON.stringify(seg) ?? String(seg);
      let c = n.kids.get(k);
      if (!c) n.kids.set(k, (c = [seg, { end: false, kids: new Map() }]));
      n = c[1];
    }
    n.end = true;
  }
  return root;
}

const segMatches = (seg: Value, key: Value): boolean => equal(seg, key) || (typeof key === 'number' && seg === String(key));

function childNode(t: Trie, key: Value): Trie | undefined {
  for (const [seg, n] of t.kids.values()) if (segMatches(seg, key)) return n;
  return undefined;
}

function filterDoc(v: Value, t: Trie, m: Meter): Value | undefined {
  m.step();
  if (t.end) return v;
  if (isObject(v)) {
    const b = new ObjectBuilder();
    for (const [k, x] of objEntries(v)) {
      const c = childNode(t, k);
      m.step();
      if (!c) continue;
      const r = filterDoc(x, c, m);
      if (r !== undefined) b.set(k, r);
    }
    return b.build();
  }
  if (Array.isArray(v)) {
    const out: Value[] = [];
    v.forEach((x, i) => {
      const c = childNode(t, i);
      m.step();
      if (!c) return;
      const r = filterDoc(x, c, m);
      if (r !== undefined) out.push(r);
    });
    return out;
  }
  if (v instanceof RSet) return new RSet(v.values().filter((x) => childNode(t, x)));
  return undefined;
}

function removeDoc(v: Value, t: Trie, m: Meter): Value | undefined {
  m.step();
  if (t.end) return undefined;
  if (isObject(v)) {
    const b = new ObjectBuilder();
    for (const [k, x] of objEntries(v)) {
      const c = childNode(t, k);
      m.step();
      if (!c) {
        b.set(k, x);
        continue;
      }
      const r = removeDoc(x, c, m);
      if (r !== undefined) b.set(k, r);
    }
    return b.build();
  }
  if (Array.isArray(v)) {
    const out: Value[] = [];
    v.forEach((x, i) => {
      const c = childNode(t, i);
      m.step();
      if (!c) return void out.push(x);
      const r = removeDoc(x, c, m);
      if (r !== undefined) out.push(r);
    });
    return out;
  }
  if (v instanceof RSet) return new RSet(v.values().filter((x) => !childNode(t, x)?.end));
  return v;
}

function pointer(p: Value): Path | undefined {
  if (Array.isArray(p)) return p;
  if (typeof p !== 'string') return undefined;
  if (p === '') return [];
  return p.replace(/^\//, '').split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function getAt(doc: Value, path: Path): Value | undefined {
  let cur: Value | undefined = doc;
  for (const seg of path) {
    if (cur === undefined) return undefined;
    if (Array.isArray(cur)) {
      const i = typeof seg === 'number' ? seg : /^(0|[1-9]\d*)$/.test(String(seg)) ? Number(seg) : -1;
      cur = i >= 0 && i < cur.length ? cur[i] : undefined;
    } else if (isObject(cur)) cur = objGet(cur, seg);
    else if (cur instanceof RSet) cur = cur.has(seg) ? seg : undefined;
    else return undefined;
  }
  return cur;
}

/** applyAt rebuilds doc with f applied to the parent container of path's last segment. */
function applyAt(doc: Value, path: Path, f: (parent: Value, key: Value) => Value | undefined, m: Meter): Value | undefined {
  m.step();
  if (!path.length) return undefined;
  const [seg, ...rest] = path;
  if (!rest.length) return f(doc, seg!);
  if (Array.isArray(doc)) {
    const i = typeof seg === 'number' ? seg : /^(0|[1-9]\d*)$/.test(String(seg)) ? Number(seg) : -1;
    if (i < 0 || i >= doc.length) return undefined;
    const r = applyAt(doc[i]!, rest, f, m);
    if (r === undefined) return undefined;
    const out = [...doc];
    out[i] = r;
    return out;
  }
  if (doc instanceof RSet) {
    if (!doc.has(seg!)) return undefined;
    const r = applyAt(seg!, rest, f, m);
    if (r === undefined) return undefined;
    return new RSet([...doc.values().filter((x) => !equal(x, seg!)), r]);
  }
  if (isObject(doc)) {
    const c = objGet(doc, seg!);
    if (c === undefined) return undefined;
    const r = applyAt(c, rest, f, m);
    if (r === undefined) return undefined;
    const b = new ObjectBuilder();
    for (const [k, v] of objEntries(doc)) {
      m.step();
      b.set(k, v);
    }
    b.set(seg!, r);
    return b.build();
  }
  return undefined;
}

function addOp(doc: Value, path: Path, value: Value, m: Meter): Value | undefined {
  if (!path.length) return value;
  return applyAt(doc, path, (parent, key) => {
    if (Array.isArray(parent)) {
      const i = key === '-' ? parent.length : typeof key === 'number' ? key : /^(0|[1-9]\d*)$/.test(String(key)) ? Number(key) : -1;
      if (i < 0 || i > parent.length) return undefined;
      return [...parent.slice(0, i), value, ...parent.slice(i)];
    }
    if (isObject(parent)) {
      const b = new ObjectBuilder();
      for (const [k, v] of objEntries(parent)) {
        m.step();
        b.set(k, v);
      }
      b.set(key, value);
      return b.build();
    }
    // adding to a set names the element itself as the last path segment
    if (parent instanceof RSet) return equal(key, value) ? new RSet([...parent.values(), value]) : undefined;
    return undefined;
  }, m);
}

function removeOp(doc: Value, path: Path, m: Meter): Value | undefined {
  return applyAt(doc, path, (parent, key) => {
    if (Array.isArray(parent)) {
      const i = typeof key === 'number' ? key : /^(0|[1-9]\d*)$/.test(String(key)) ? Number(key) : -1;
      if (i < 0 || i >= parent.length) return undefined;
      return [...parent.slice(0, i), ...parent.slice(i + 1)];
    }
    if (isObject(parent)) {
      if (objGet(parent, key) === undefined) return undefined;
      const b = new ObjectBuilder();
      for (const [k, v] of objEntries(parent)) if ((m.step(), !equal(k, key))) b.set(k, v);
      return b.build();
    }
    if (parent instanceof RSet) return parent.has(key) ? new RSet(parent.values().filter((x) => !equal(x, key))) : undefined;
    return undefined;
  }, m);
}

/**
 * patch applies JSON Patch operations. Each operation copies the containers along its path, so the
 * work is paced per operation and per copied entry (objects are rebuilt, arrays spliced natively).
 */
function patch(doc: Value, ops: Value[], ctx: BuiltinContext): Value | undefined {
  let cur: Value | undefined = doc;
  const m = new Meter('json.patch', ctx);
  for (const op of ops) {
    m.step();
    if (!isObject(op) || cur === undefined) return undefined;
    const kind = objGet(op, 'op');
    const path = pointer(objGet(op, 'path') ?? null);
    if (!path) return undefined;
    if ((kind === 'add' || kind === 'replace' || kind === 'test') && objGet(op, 'value') === undefined) return undefined;
    switch (kind) {
      case 'add':
        cur = addOp(cur, path, objGet(op, 'value') ?? null, m);
        break;
      case 'remove':
        cur = removeOp(cur, path, m);
        break;
      case 'replace': {
        if (getAt(cur, path) === undefined) return undefined;
        const r = path.length ? removeOp(cur, path, m) : cur;
        cur = r === undefined ? undefined : addOp(r, path, objGet(op, 'value') ?? null, m);
        break;
      }
      case 'move':
      case 'copy': {
        const from = pointer(objGet(op, 'from') ?? null);
        if (!from) return undefined;
        const v = getAt(cur, from);
        if (v === undefined) return undefined;
        const r = kind === 'move' ? removeOp(cur, from, m) : cur;
        cur = r === undefined ? undefined : addOp(r, path, v, m);
        break;
      }
      case 'test': {
        const v = getAt(cur, path);
        if (v === undefined || !equal(v, objGet(op, 'value') ?? null)) return undefined;
        break;
      }
      default:
        return undefined;
    }
  }
  return cur;
}

/** JSON documents: filter/remove by path, JSON Patch, JSON Schema checks. */
export const register: Record<string, Builtin> = {
  'json.filter': {
    arity: 2,
    fn: (a, ctx) => {
      if (!isObject(a[0]!)) throw typeErr('json.filter', 1, 'object', a[0]!);
      return filterDoc(a[0]!, trie(paths('json.filter', a[1]!)), new Meter('json.filter', ctx)) ?? (Object.create(null) as PlainObject);
    },
  },
  'json.remove': {
    arity: 2,
    fn: (a, ctx) => {
      if (!isObject(a[0]!)) throw typeErr('json.remove', 1, 'object', a[0]!);
      return removeDoc(a[0]!, trie(paths('json.remove', a[1]!)), new Meter('json.remove', ctx)) ?? (Object.create(null) as PlainObject);
    },
  },
  'json.patch': {
    arity: 2,
    fn: (a, ctx) => {
      const ops = a[1]!;
      if (!Array.isArray(ops)) throw typeErr('json.patch', 2, 'array', ops);
      return patch(a[0]!, ops, ctx);
    },
  },
};
export type { RObject };

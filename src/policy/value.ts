/**
 * Rego values as plain JavaScript values, so that JSON input and data need no conversion:
 * null, boolean, string, number (or bigint for integers beyond 2^53), arrays, plain objects
 * (string keys only), and two classes for what JSON cannot hold: RSet and RObject (any keys).
 */
export type Value = null | boolean | number | bigint | RDecimal | string | Value[] | RSet | RObject | PlainObject;

/**
 * RDecimal is an exact decimal c × 10^e for the numbers a float64 cannot hold as written (more than 17
 * significant digits, beyond ±1.7976931348623157e308, or nonzero values that would underflow to 0), as
 * OPA keeps them. It is made only by number literals, to_number and arithmetic whose result needs it
 * (see decFrom); every other number stays a number (or bigint for integers beyond 2^53). c has no
 * trailing zeros; text is what is printed (the literal as written, or Go's 'g' form for results).
 */
export class RDecimal {
  readonly c: bigint;
  readonly e: number;
  readonly text: string;
  private k: string | undefined;
  constructor(c: bigint, e: number, text?: string) {
    if (c === 0n) e = 0;
    else while (c % 10n === 0n) { c /= 10n; e++; }
    this.c = c;
    this.e = e;
    this.text = text ?? goDecText(c, e);
  }
  /** valueOf is the nearest float (±Infinity or 0 beyond float range), for built-ins that work on floats. */
  valueOf(): number {
    return decToFloat(this);
  }
  toString(): string {
    return this.text;
  }
  /** key is the canonical hash key: integral values share their bigint's key. */
  get key(): string {
    if (this.k === undefined) {
      const digits = (this.c < 0n ? -this.c : this.c).toString().length;
      this.k = this.e >= 0 && digits + this.e <= DEC_INT_DIGITS ? (this.c * 10n ** BigInt(this.e)).toString() : `${this.c}e${this.e}`;
    }
    return this.k;
  }
}

const MIN_NORMAL = 2.2250738585072014e-308;

/** Integral decimals with at most this many digits become (or hash as) bigints. */
const DEC_INT_DIGITS = 1000;

/** Dec is an exact decimal c × 10^e. */
export interface Dec {
  c: bigint;
  e: number;
}

/** decOf reads a finite float as the decimal of its shortest round-trip text. */
export function decOf(n: number): Dec {
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:e([+-]?\d+))?$/.exec(String(n))!;
  const frac = m[3] ?? '';
  const c = BigInt(m[1]! + m[2]! + frac);
  return { c, e: Number(m[4] ?? 0) - frac.length };
}

/** decOfNum reads any number (float, bigint, RDecimal) as an exact decimal. */
export function decOfNum(n: number | bigint | RDecimal): Dec {
  if (typeof n === 'number') return decOf(n);
  if (typeof n === 'bigint') return { c: n, e: 0 };
  return n;
}

/** goDecText prints c × 10^e as Go's big.Float Text('g', -1) does (4e+308, 1.5e-400, 123.456). */
function goDecText(c: bigint, e: number): string {
  if (c === 0n) return '0';
  const neg = c < 0n;
  const ds = (neg ? -c : c).toString();
  const exp = ds.length + e - 1;
  let out: string;
  if (exp < -4 || exp >= 6) {
    const x = Math.abs(exp);
    out = ds[0]! + (ds.length > 1 ? '.' + ds.slice(1) : '') + 'e' + (exp < 0 ? '-' : '+') + (x < 10 ? '0' + x : String(x));
  } else if (e >= 0) out = ds + '0'.repeat(e);
  else if (ds.length + e > 0) out = ds.slice(0, ds.length + e) + '.' + ds.slice(ds.length + e);
  else out = '0.' + '0'.repeat(-(ds.length + e)) + ds;
  return neg ? '-' + out : out;
}

/**
 * decFrom turns an exact decimal into the value that holds it: a float when its text has at most 17
 * significant digits and is within float range, an integer (number or bigint) when integral, else an
 * RDecimal (text: how to print it when it stays a decimal).
 */
export function decFrom(c: bigint, e: number, text?: string): number | bigint | RDecimal {
  if (c === 0n) return 0;
  while (c % 10n === 0n) { c /= 10n; e++; }
  const digits = (c < 0n ? -c : c).toString().length;
  if (e >= 0 && digits + e <= 15) return Number(c * 10n ** BigInt(e));
  if (digits <= 17 && digits + e <= 309 && digits + e >= -306) {
    const f = Number(`${c}e${e}`);
    // normal floats only: a subnormal keeps fewer digits than were computed
    if (Number.isFinite(f) && Math.abs(f) >= MIN_NORMAL) return f;
  }
  // an integer with more digits than a float holds is exact as a bigint, as integer arithmetic gives
  if (e >= 0 && digits > 17 && digits + e <= DEC_INT_DIGITS) return normNum(c * 10n ** BigInt(e));
  return new RDecimal(c, e, text);
}

/** cmpDec compares exact decimals. */
export function cmpDec(x: Dec, y: Dec): number {
  const sx = x.c < 0n ? -1 : x.c > 0n ? 1 : 0;
  const sy = y.c < 0n ? -1 : y.c > 0n ? 1 : 0;
  if (sx !== sy || sx === 0) return sx - sy;
  const ax = (sx < 0 ? -x.c : x.c).toString().length + x.e;
  const ay = (sy < 0 ? -y.c : y.c).toString().length + y.e;
  if (ax !== ay) return ax > ay ? sx : -sx;
  const e = Math.min(x.e, y.e);
  const X = x.c * 10n ** BigInt(x.e - e);
  const Y = y.c * 10n ** BigInt(y.e - e);
  return X < Y ? -1 : X > Y ? 1 : 0;
}

/** decToFloat converts a decimal to the nearest float (±Infinity or 0 beyond float range), as OPA's float conversions do. */
export function decToFloat(d: RDecimal): number {
  const f = Number(`${d.c}e${d.e}`);
  return Object.is(f, -0) ? 0 : f;
}

/** PlainObject is a Rego object whose keys are all strings, stored as a JS object. */
export interface PlainObject {
  [key: string]: Value;
}

const hasOwn = Object.prototype.hasOwnProperty;

/**
 * RSet is a Rego set; elements are deduplicated by their canonical key. Strings, the most common
 * elements (`deny` messages), are kept apart under themselves: no key to build, and a string's own
 * hash is computed once and kept.
 */
export class RSet {
  /** elements other than strings, by canonical key (made on first use, as the next) */
  private other: Map<string, Value> | undefined;
  /** string elements */
  private strs: Set<string> | undefined;
  private sorted: Value[] | undefined;
  constructor(items?: Iterable<Value>) {
    if (items) for (const v of items) this.add(v);
  }
  add(v: Value): void {
    if (typeof v === 'string') {
      const s = (this.strs ??= new Set());
      if (s.has(v)) return;
      s.add(v);
    } else {
      const k = keyOf(v);
      const m = (this.other ??= new Map());
      if (m.has(k)) return;
      m.set(k, v);
    }
    this.sorted = undefined;
  }
  has(v: Value): boolean {
    if (typeof v === 'string') return this.strs !== undefined && this.strs.has(v);
    return this.other !== undefined && this.other.has(keyOf(v));
  }
  get size(): number {
    return (this.other?.size ?? 0) + (this.strs?.size ?? 0);
  }
  /** keys returns the canonical keys of the elements (unordered). */
  keys(): string[] {
    const out = this.other ? [...this.other.keys()] : [];
    if (this.strs) for (const x of this.strs) out.push(keyOf(x));
    return out;
  }
  /** values returns the elements in Rego's canonical order. */
  values(): Value[] {
    if (!this.sorted) {
      const out: Value[] = this.other ? [...this.other.values()] : [];
      if (this.strs) for (const x of this.strs) out.push(x);
      this.sorted = sortInPlace(out, compare);
    }
    return this.sorted;
  }
}

/** RObject is a Rego object with at least one non-string key. */
export class RObject {
  readonly m = new Map<string, [Value, Value]>();
  private sorted: Array<[Value, Value]> | undefined;
  set(k: Value, v: Value): void {
    this.m.set(keyOf(k), [k, v]);
    this.sorted = undefined;
  }
  get(k: Value): Value | undefined {
    return this.m.get(keyOf(k))?.[1];
  }
  get size(): number {
    return this.m.size;
  }
  entries(): Array<[Value, Value]> {
    if (!this.sorted) this.sorted = [...this.m.values()].sort((a, b) => compare(a[0], b[0]));
    return this.sorted;
  }
}

/**
 * VALUE_CLASS names a property that every RSet, RObject and RDecimal has (on its prototype) and
 * JSON data practically never has: generated code tells a plain object from them with one property
 * read, which V8 answers from the object's shape. An object that does carry the key only takes the
 * general (still correct) path.
 */
export const VALUE_CLASS = '\u0000rego-value';
for (const C of [RSet, RObject, RDecimal]) Object.defineProperty(C.prototype, VALUE_CLASS, { value: true });

/** isObject tells whether v is a Rego object (plain or RObject). */
export function isObject(v: Value | undefined): v is PlainObject | RObject {
  return v instanceof RObject || (typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof RSet) && !(v instanceof RDecimal));
}

/** isPlain tells whether v is a string-keyed plain object. */
export function isPlain(v: Value | undefined): v is PlainObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof RSet) && !(v instanceof RObject) && !(v instanceof RDecimal);
}

export function isNumber(v: Value | undefined): v is number | bigint | RDecimal {
  return typeof v === 'number' || typeof v === 'bigint' || v instanceof RDecimal;
}

/** objGet looks a key up in either object representation. */
export function objGet(o: PlainObject | RObject, k: Value): Value | undefined {
  if (typeof k !== 'string') return o instanceof RObject ? o.get(k) : undefined;
  if (o instanceof RObject) return o.get(k);
  // Values are never functions, so inherited members (constructor, toString) read as absent.
  if (k === '__proto__') return hasOwn.call(o, k) ? o[k] : undefined;
  const v = o[k];
  return typeof v === 'function' ? undefined : v;
}

/** objSize counts an object's keys. */
export function objSize(o: PlainObject | RObject): number {
  return o instanceof RObject ? o.size : Object.keys(o).length;
}

/** objEntries lists key/value pairs in canonical key order. */
export function objEntries(o: PlainObject | RObject): Array<[Value, Value]> {
  if (o instanceof RObject) return o.entries();
  const keys = sortInPlace(Object.keys(o), cmpStr);
  return keys.map((k) => [k, o[k]!]);
}

export function objKeys(o: PlainObject | RObject): Value[] {
  if (o instanceof RObject) return o.entries().map((e) => e[0]);
  return sortInPlace(Object.keys(o), cmpStr);
}

/** ObjectBuilder collects entries and yields the cheapest representation. */
export class ObjectBuilder {
  private plain: PlainObject | null = Object.create(null) as PlainObject;
  private robj: RObject | null = null;
  set(k: Value, v: Value): void {
    if (this.plain && typeof k === 'string') {
      this.plain[k] = v;
      return;
    }
    if (!this.robj) {
      this.robj = new RObject();
      if (this.plain) for (const key of Object.keys(this.plain)) this.robj.set(key, this.plain[key]!);
      this.plain = null;
    }
    this.robj.set(k, v);
  }
  get(k: Value): Value | undefined {
    if (this.plain) return typeof k === 'string' && hasOwn.call(this.plain, k) ? this.plain[k] : undefined;
    return this.robj!.get(k);
  }
  build(): PlainObject | RObject {
    return this.plain ?? this.robj!;
  }
}

/** makeObject builds an object from entries. */
export function makeObject(entries: Iterable<[Value, Value]>): PlainObject | RObject {
  const b = new ObjectBuilder();
  for (const [k, v] of entries) b.set(k, v);
  return b.build();
}

function cmpStr(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * sortInPlace sorts a few distinct elements by insertion (Array.prototype.sort allocates work
 * space on every call, and an evaluation sorts an object's keys each time it iterates them);
 * longer arrays with the built-in sort. The same order either way: the elements never compare equal.
 */
function sortInPlace<T>(a: T[], cmp: (x: T, y: T) => number): T[] {
  if (a.length > 16) return a.sort(cmp);
  for (let i = 1; i < a.length; i++) {
    const x = a[i]!;
    let j = i - 1;
    for (; j >= 0 && cmp(a[j]!, x) > 0; j--) a[j + 1] = a[j]!;
    a[j + 1] = x;
  }
  return a;
}

/** normNum keeps the invariant that bigint is only used beyond the safe integer range. */
export function normNum(n: number | bigint): number | bigint {
  if (typeof n === 'bigint') {
    if (n <= BigInt(Number.MAX_SAFE_INTEGER) && n >= BigInt(Number.MIN_SAFE_INTEGER)) return Number(n);
    return n;
  }
  return n;
}

/** keyOf returns a canonical string so equal values (1 and 1.0 alike) share a key. */
export function keyOf(v: Value): string {
  switch (typeof v) {
    case 'string':
      // length-prefixed, so keys of composites stay unambiguous without escaping (JSON text costs
      // a pass over every character, a copy does not)
      return '"' + v.length + ':' + v;
    case 'number':
      return Object.is(v, -0) ? '0' : String(v);
    case 'bigint':
      return v.toString();
    case 'boolean':
      return v ? 'true' : 'false';
    default:
      if (v === null) return 'null';
      if (v instanceof RDecimal) return v.key;
      if (Array.isArray(v)) {
        let s = '[';
        for (let i = 0; i < v.length; i++) s += (i ? ',' : '') + keyOf(v[i]!);
        return s + ']';
      }
      if (v instanceof RSet) return '<' + v.keys().sort().join(',') + '>';
      if (v instanceof RObject) return '{' + objEntries(v).map(([k, x]) => keyOf(k) + ':' + keyOf(x)).join(',') + '}';
      {
        // a plain object (`{"msg": ...}` in a violation set): the same text, without entry pairs
        const keys = Object.keys(v).sort(cmpStr);
        let s = '{';
        for (let i = 0; i < keys.length; i++) s += (i ? ',' : '') + keyOf(keys[i]!) + ':' + keyOf(v[keys[i]!]!);
        return s + '}';
      }
  }
}

/** typeRank orders Rego types as OPA does: null < boolean < number < string < array < object < set. */
export function typeRank(v: Value): number {
  switch (typeof v) {
    case 'boolean':
      return 1;
    case 'number':
    case 'bigint':
      return 2;
    case 'string':
      return 3;
    default:
      if (v === null) return 0;
      if (Array.isArray(v)) return 4;
      if (v instanceof RDecimal) return 2;
      if (v instanceof RSet) return 6;
      return 5;
  }
}

/** typeName is Rego's name for the type of v, as `type_name` returns it. */
export function typeName(v: Value): string {
  return ['null', 'boolean', 'number', 'string', 'array', 'object', 'set'][typeRank(v)]!;
}

export function cmpNum(a: number | bigint | RDecimal, b: number | bigint | RDecimal): number {
  if (typeof a === 'number' && typeof b === 'number') return a < b ? -1 : a > b ? 1 : 0;
  if (a instanceof RDecimal || b instanceof RDecimal) return cmpDec(decOfNum(a), decOfNum(b));
  if (typeof a === 'bigint' && typeof b === 'bigint') return a < b ? -1 : a > b ? 1 : 0;
  // Mixed: compare via bigint when the float is integral, else via float.
  const fa = typeof a === 'number' ? a : b as number;
  if (Number.isInteger(fa)) {
    const A = typeof a === 'bigint' ? a : BigInt(a);
    const B = typeof b === 'bigint' ? b : BigInt(b);
    return A < B ? -1 : A > B ? 1 : 0;
  }
  const x = Number(a);
  const y = Number(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** compare is Rego's total order over values. */
export function compare(a: Value, b: Value): number {
  const ra = typeRank(a);
  const rb = typeRank(b);
  if (ra !== rb) return ra - rb;
  switch (ra) {
    case 0:
      return 0;
    case 1:
      return a === b ? 0 : a ? 1 : -1;
    case 2:
      return cmpNum(a as number, b as number);
    case 3:
      return cmpStr(a as string, b as string);
    case 4: {
      const x = a as Value[];
      const y = b as Value[];
      const n = Math.min(x.length, y.length);
      for (let i = 0; i < n; i++) {
        const c = compare(x[i]!, y[i]!);
        if (c) return c;
      }
      return x.length - y.length;
    }
    case 5: {
      const x = objEntries(a as PlainObject);
      const y = objEntries(b as PlainObject);
      const n = Math.min(x.length, y.length);
      for (let i = 0; i < n; i++) {
        let c = compare(x[i]![0], y[i]![0]);
        if (c) return c;
        c = compare(x[i]![1], y[i]![1]);
        if (c) return c;
      }
      return x.length - y.length;
    }
    default: {
      const x = (a as RSet).values();
      const y = (b as RSet).values();
      const n = Math.min(x.length, y.length);
      for (let i = 0; i < n; i++) {
        const c = compare(x[i]!, y[i]!);
        if (c) return c;
      }
      return x.length - y.length;
    }
  }
}

/** equal is value equality (numbers by value). */
export function equal(a: Value, b: Value): boolean {
  if (a === b) return true;
  const ta = typeof a;
  if (ta === 'string' || ta === 'boolean' || typeof b === 'string' || typeof b === 'boolean') return false;
  if (ta === 'number' && typeof b === 'number') return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!equal(a[i]!, b[i]!)) return false;
    return true;
  }
  if (isPlain(a) && isPlain(b)) {
    const ka = Object.keys(a);
    if (ka.length !== Object.keys(b).length) return false;
    for (const k of ka) if (!hasOwn.call(b, k) || !equal(a[k]!, b[k]!)) return false;
    return true;
  }
  return compare(a, b) === 0;
}

/** toJSON converts a value to JSON-compatible data (sets become sorted arrays). */
export function toJSON(v: Value): unknown {
  if (v === null || typeof v !== 'object') return typeof v === 'bigint' ? v : v;
  if (v instanceof RDecimal) return v;
  if (Array.isArray(v)) return v.map(toJSON);
  if (v instanceof RSet) return v.values().map(toJSON);
  const out: Record<string, unknown> = {};
  for (const [k, x] of objEntries(v)) out[typeof k === 'string' ? k : stringifyJSON(toJSON(k))] = toJSON(x);
  return out;
}

/** fromJSON normalises parsed JSON/YAML (bigints, nested objects) into values. */
export function fromJSON(x: unknown): Value {
  if (x === null || x === undefined) return null;
  switch (typeof x) {
    case 'bigint':
      return normNum(x);
    case 'number':
    case 'string':
    case 'boolean':
      return x;
    case 'object':
      if (Array.isArray(x)) return x.map(fromJSON);
      if (x instanceof RSet || x instanceof RObject || x instanceof RDecimal) return x;
      {
        const o = Object.create(null) as PlainObject;
        for (const k of Object.keys(x)) o[k] = fromJSON((x as Record<string, unknown>)[k]);
        return o;
      }
    default:
      return null;
  }
}

/** stringifyJSON writes JSON text, keeping big integers exact. */
export function stringifyJSON(v: unknown, indent?: number): string {
  const marks: string[] = [];
  const text = JSON.stringify(
    v,
    (_k, x) => {
      if (typeof x === 'bigint' || x instanceof RDecimal) {
        marks.push(typeof x === 'bigint' ? x.toString() : jsonDecText(x.text));
        return `\u0000BIG${marks.length - 1}\u0000`;
      }
      return x;
    },
    indent,
  );
  if (!marks.length) return text;
  return text.replace(/"\\u0000BIG(\d+)\\u0000"/g, (_m, i: string) => marks[Number(i)]!);
}

/** jsonDecText makes a decimal's text valid JSON (Go's 1.e5 / .5 forms cannot appear; a leading + can). */
function jsonDecText(t: string): string {
  return t.replace(/^\+/, '');
}

/** formatNumber prints a number as Rego/JSON does. */
export function formatNumber(n: number | bigint | RDecimal): string {
  if (typeof n === 'bigint') return n.toString();
  if (n instanceof RDecimal) return n.text;
  if (Number.isInteger(n) && Math.abs(n) < 1e21) return n.toFixed(0);
  return String(n);
}

/** formatValue prints a value in Rego term syntax (as OPA's String()). */
export function formatValue(v: Value): string {
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v);
    case 'number':
    case 'bigint':
      return formatNumber(v);
    case 'boolean':
      return String(v);
    default:
      if (v === null) return 'null';
      if (v instanceof RDecimal) return v.text;
      if (Array.isArray(v)) return '[' + v.map(formatValue).join(', ') + ']';
      if (v instanceof RSet) return v.size ? '{' + v.values().map(formatValue).join(', ') + '}' : 'set()';
      return '{' + objEntries(v).map(([k, x]) => formatValue(k) + ': ' + formatValue(x)).join(', ') + '}';
  }
}

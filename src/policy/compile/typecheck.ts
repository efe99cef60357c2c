import type { Expr, Term } from '../ast/types.js';
import { RegoError } from '../errors.js';
import { RDecimal, RObject, RSet, type Value } from '../value.js';

/**
 * Compile-time type checking of built-in calls, for the cases OPA's checker catches without
 * schemas: an operand whose type is known statically (a literal, a composite literal, a
 * comprehension, another built-in's result, or a variable bound from one of those) that cannot
 * match the declared operand type, a built-in result that cannot fit its output operand, and a
 * unification (`=`, `:=`) of two terms of known, disjoint types. Input, data, rule values and
 * function results are of unknown type and never an error.
 */

// Kinds as bits of a mask; a type is a mask plus, for arrays and sets, an element type.
const NULL = 1;
const BOOLEAN = 2;
const NUMBER = 4;
const STRING = 8;
const ARRAY = 16;
const SET = 32;
const OBJECT = 64;
const ANY = 127;
const KINDS: Array<[number, string]> = [
  [NULL, 'null'],
  [BOOLEAN, 'boolean'],
  [NUMBER, 'number'],
  [STRING, 'string'],
  [ARRAY, 'array'],
  [SET, 'set'],
  [OBJECT, 'object'],
];

/** RType is a static type: the kinds a value may have, and the element type of arrays and sets. */
export interface RType {
  m: number;
  e?: RType;
}

export interface Signature {
  args: RType[];
  result: RType;
}

const TANY: RType = { m: ANY };

/** parseSignature reads `string, array<string>|set<string> -> string`. */
export function parseSignature(src: string): Signature {
  const arrow = src.indexOf('->');
  if (arrow < 0) throw new Error(`bad signature ${src}`);
  const args = splitTop(src.slice(0, arrow), ',');
  // " -> t" has no arguments, and a trailing comma adds none.
  if (!args[args.length - 1]!.trim()) args.pop();
  return { args: args.map(parseType), result: parseType(src.slice(arrow + 2)) };
}

/** splitTop splits `s` at every `sep` outside angle brackets, keeping empty parts. */
function splitTop(s: string, sep: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const c of s) {
    if (c === '<') depth++;
    if (c === '>') depth--;
    if (c === sep && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}

function parseType(src: string): RType {
  const alts = splitTop(src.trim(), '|');
  let t: RType = { m: 0 };
  for (const a of alts) {
    const m = /^\s*(\w+)\s*(?:<(.*)>)?\s*$/.exec(a);
    if (!m) throw new Error(`bad type ${src}`);
    const name = m[1]!;
    const bit = name === 'any' ? ANY : KINDS.find(([, n]) => n === name)?.[0];
    if (bit === undefined) throw new Error(`bad type ${src}`);
    t = union(t, m[2] ? { m: bit, e: parseType(m[2]) } : { m: bit });
  }
  return t;
}

function union(a: RType, b: RType): RType {
  if (a.m === 0) return b;
  if (b.m === 0) return a;
  const m = a.m | b.m;
  const e = a.e && b.e ? union(a.e, b.e) : undefined;
  return e ? { m, e } : { m };
}

/** compatible: can a value of type have also be of type want? */
function compatible(have: RType, want: RType): boolean {
  const common = have.m & want.m;
  if (!common) return false;
  // element types matter only when every shared kind is a collection
  if (have.e && want.e && (common & (ARRAY | SET)) === common) return compatible(have.e, want.e);
  return true;
}

/** typeString prints a type the way OPA's messages do (`string`, `array[number]`, `any<number, string>`). */
export function typeString(t: RType): string {
  if (t.m === ANY) return 'any';
  const parts = KINDS.filter(([b]) => t.m & b).map(([b, n]) => ((b === ARRAY || b === SET) && t.e ? `${n}[${typeString(t.e)}]` : b === ARRAY || b === SET ? `${n}[any]` : b === OBJECT ? 'object[any: any]' : n));
  return parts.length === 1 ? parts[0]! : `any<${parts.join(', ')}>`;
}

function valueType(v: Value): RType {
  if (v === null) return { m: NULL };
  switch (typeof v) {
    case 'boolean':
      return { m: BOOLEAN };
    case 'number':
    case 'bigint':
      return { m: NUMBER };
    case 'string':
      return { m: STRING };
    default:
      break;
  }
  if (Array.isArray(v)) return { m: ARRAY };
  if (v instanceof RSet) return { m: SET };
  if (v instanceof RDecimal) return { m: NUMBER };
  if (v instanceof RObject) return { m: OBJECT };
  return { m: OBJECT };
}

/** TypeChecker checks one rule (or query) body; variable types live in slots, unique per rule. */
export class TypeChecker {
  private vars = new Map<number, RType>();

  constructor(
    private signature: (name: string) => Signature | undefined,
    private errors: RegoError[],
  ) {}

  body(body: Expr[]): void {
    for (const e of body) this.expr(e);
  }

  /** term checks every call inside t (for head values and other terms outside a body). */
  term(t: Term): void {
    this.infer(t);
  }

  private expr(e: Expr): void {
    for (const w of e.with) this.infer(w.value);
    switch (e.kind) {
      case 'term': {
        const t = e.term;
        if (t.type === 'call' && t.target?.kind === 'builtin' && (t.target.name === 'eq' || t.target.name === 'assign') && t.args.length === 2) {
          const l = this.infer(t.args[0]!);
          const r = this.infer(t.args[1]!);
          if (l && r && !compatible(l, r) && !compatible(r, l)) {
            this.errors.push(new RegoError('rego_type_error', `match error\n\tleft  : ${typeString(l)}\n\tright : ${typeString(r)}`, t.loc));
          } else if (!e.negated) {
            this.bind(t.args[0]!, r ?? TANY);
            this.bind(t.args[1]!, l ?? TANY);
          }
          return;
        }
        this.infer(t, e.negated);
        return;
      }
      case 'some':
        return;
      case 'somein': {
        const d = this.infer(e.domain);
        if (e.key) this.infer(e.key);
        this.infer(e.value);
        if (!e.negated) this.bind(e.value, d?.e && !(d.m & ~(ARRAY | SET)) ? d.e : TANY);
        return;
      }
      case 'every':
        this.infer(e.domain);
        this.body(e.body);
        return;
    }
  }

  /**
   * bind records the type of a variable at its first binding (any when unknown); a later
   * unification does not narrow it, so a variable bound from input stays unknown.
   */
  private bind(t: Term, type: RType): void {
    if (t.type === 'var' && t.slot !== undefined && !this.vars.has(t.slot)) this.vars.set(t.slot, type);
  }

  /** infer returns the static type of t (undefined: unknown) and reports bad built-in calls inside it. */
  private infer(t: Term, negated = false): RType | undefined {
    switch (t.type) {
      case 'scalar':
        return valueType(t.value);
      case 'var': {
        const v = t.slot !== undefined ? this.vars.get(t.slot) : undefined;
        return v && v.m !== ANY ? v : undefined;
      }
      case 'ref':
        this.infer(t.head);
        for (const p of t.path) {
          this.infer(p);
          if (!negated) this.bind(p, TANY);
        }
        return undefined;
      case 'array':
      case 'set': {
        let e: RType | undefined = t.items.length ? { m: 0 } : undefined;
        for (const x of t.items) {
          const xt = this.infer(x);
          e = e && xt ? union(e, xt) : undefined;
        }
        return e ? { m: t.type === 'array' ? ARRAY : SET, e } : { m: t.type === 'array' ? ARRAY : SET };
      }
      case 'object':
        for (const [k, v] of t.items) {
          this.infer(k);
          this.infer(v);
        }
        return { m: OBJECT };
      case 'arraycompr':
      case 'setcompr':
      case 'objectcompr':
        this.body(t.body);
        if (t.type === 'objectcompr') {
          this.infer(t.key);
          this.infer(t.value);
          return { m: OBJECT };
        }
        this.infer(t.head);
        return { m: t.type === 'arraycompr' ? ARRAY : SET };
      case 'template':
        for (const p of t.parts) {
          if (typeof p === 'string') continue;
          if ('kind' in p) this.expr(p);
          else this.infer(p);
        }
        return { m: STRING };
      case 'call': {
        const have = t.args.map((a) => this.infer(a));
        if (t.target?.kind !== 'builtin') return undefined;
        const name = t.target.name;
        const sig = this.signature(name);
        if (!sig) return undefined;
        const want = [...sig.args, sig.result];
        if (t.args.length > want.length) return sig.result;
        for (let i = 0; i < t.args.length; i++) {
          const h = have[i];
          if (h && !compatible(h, want[i]!)) {
            const shown = want.slice(0, Math.max(t.args.length, sig.args.length));
            this.errors.push(
              new RegoError(
                'rego_type_error',
                `${name}: invalid argument(s)\n\thave: (${have.map((x) => (x ? typeString(x) : 'any')).join(', ')})\n\twant: (${shown.map(typeString).join(', ')})`,
                t.loc,
              ),
            );
            return sig.result.m === ANY ? undefined : sig.result;
          }
        }
        if (t.args.length === sig.args.length + 1 && !negated) this.bind(t.args[sig.args.length]!, sig.result);
        return sig.result.m === ANY ? undefined : sig.result;
      }
    }
  }
}

/** signatureTable parses every declared signature once. */
export function signatureTable(decls: Record<string, string>): Map<string, Signature> {
  const m = new Map<string, Signature>();
  for (const [k, v] of Object.entries(decls)) m.set(k, parseSignature(v));
  return m;
}



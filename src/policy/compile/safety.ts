import type { CallTerm, Expr, Term } from '../ast/types.js';
import { RegoError } from '../errors.js';

/** Analyzer gives the safety check what it needs from the compiler. */
export interface Analyzer {
  arity(t: CallTerm): number | undefined;
  needs(t: Term): number[];
  name(slot: number): string;
  /** rewrites a negated expression once its place is known (`bound`: slots bound before it) */
  negation?(e: Expr, bound: ReadonlySet<number>): Expr[] | undefined;
}

interface Verdict {
  missing: number[];
  outs: number[];
}

/** refOuts lists variables in ref keys: evaluating the term binds them by iteration. */
function refOuts(t: Term, out: number[] = []): number[] {
  switch (t.type) {
    case 'ref':
      refOuts(t.head, out);
      for (const p of t.path) {
        if (p.type === 'var' && p.slot !== undefined) out.push(p.slot);
        else {
          patternVars(p, out);
          refOuts(p, out);
        }
      }
      break;
    case 'array':
    case 'set':
      for (const x of t.items) refOuts(x, out);
      break;
    case 'object':
      for (const [k, v] of t.items) {
        refOuts(k, out);
        refOuts(v, out);
      }
      break;
    case 'call':
      for (const a of t.args) refOuts(a, out);
      break;
    case 'template':
      for (const p of t.parts) if (typeof p !== 'string' && !('kind' in p)) refOuts(p, out);
      break;
    default:
      break;
  }
  return out;
}

function patternVars(t: Term, out: number[]): void {
  if (t.type === 'var' && t.slot !== undefined) out.push(t.slot);
  else if (t.type === 'array') for (const x of t.items) patternVars(x, out);
  else if (t.type === 'object') for (const [, v] of t.items) patternVars(v, out);
}

/** allVars lists every variable slot in a term or expression, at any depth. */
function allVars(x: unknown, out: number[] = []): number[] {
  if (!x || typeof x !== 'object') return out;
  if (Array.isArray(x)) {
    for (const y of x) allVars(y, out);
    return out;
  }
  const o = x as Record<string, unknown>;
  if (o.type === 'var' && typeof o.slot === 'number') out.push(o.slot);
  for (const k of Object.keys(o)) if (k !== 'loc' && k !== 'target' && k !== 'free') allVars(o[k], out);
  if (Array.isArray(o.free)) for (const s of o.free as number[]) out.push(s);
  return out;
}

class Checker {
  constructor(private an: Analyzer) {}

  /** pattern: unification target; plain variables become outputs, nested refs/calls are inputs. */
  pattern(t: Term, B: Set<number>): Verdict {
    if (t.type === 'var') return { missing: [], outs: t.slot !== undefined && !B.has(t.slot) ? [t.slot] : [] };
    if (t.type === 'array') return this.merge(t.items.map((x) => this.pattern(x, B)));
    if (t.type === 'object') {
      const parts = t.items.map(([k, v]) => this.merge([this.value(k, B), this.pattern(v, B)]));
      return this.merge(parts);
    }
    return this.value(t, B);
  }

  value(t: Term, B: Set<number>): Verdict {
    const outs = refOuts(t);
    const ob = new Set([...B, ...outs]);
    return { missing: this.an.needs(t).filter((s) => !ob.has(s)), outs };
  }

  merge(vs: Verdict[]): Verdict {
    return { missing: vs.flatMap((v) => v.missing), outs: vs.flatMap((v) => v.outs) };
  }

  unify(a: Term, b: Term, B: Set<number>): Verdict {
    const va = this.value(a, B);
    if (!va.missing.length) {
      const pb = this.pattern(b, new Set([...B, ...va.outs]));
      if (!pb.missing.length) return { missing: [], outs: [...va.outs, ...pb.outs] };
    }
    const vb = this.value(b, B);
    if (!vb.missing.length) {
      const pa = this.pattern(a, new Set([...B, ...vb.outs]));
      if (!pa.missing.length) return { missing: [], outs: [...vb.outs, ...pa.outs] };
    }
    if ((a.type === 'array' && b.type === 'array' && a.items.length === b.items.length) || (a.type === 'object' && b.type === 'object')) {
      const pairs: Array<[Term, Term]> = a.type === 'array' && b.type === 'array' ? a.items.map((x, i) => [x, b.items[i]!]) : [];
      if (a.type === 'object' && b.type === 'object') {
        for (const [k, v] of a.items) {
          const m = b.items.find(([k2]) => k2.type === 'scalar' && k.type === 'scalar' && k2.value === k.value);
          if (m) pairs.push([v, m[1]]);
        }
      }
      const bound = new Set(B);
      const outs: number[] = [];
      let rest = pairs;
      while (rest.length) {
        const next: Array<[Term, Term]> = [];
        for (const [x, y] of rest) {
          const v = this.unify(x, y, bound);
          if (v.missing.length) next.push([x, y]);
          else for (const o of v.outs) {
            bound.add(o);
            outs.push(o);
          }
        }
        if (next.length === rest.length) return { missing: this.unify(next[0]![0], next[0]![1], bound).missing, outs };
        rest = next;
      }
      return { missing: [], outs };
    }
    const missA = va.missing.length ? va.missing : this.pattern(b, new Set([...B, ...va.outs])).missing;
    return { missing: missA.length ? missA : vb.missing, outs: [] };
  }

  term(t: Term, B: Set<number>): Verdict {
    if (t.type === 'call') {
      const op = t.fn.length === 1 ? t.fn[0] : undefined;
      if ((op === 'eq' || op === 'assign') && t.target?.kind === 'builtin') {
        if (op === 'assign') {
          const v = this.value(t.args[1]!, B);
          if (v.missing.length) return v;
          const p = this.pattern(t.args[0]!, new Set([...B, ...v.outs]));
          return { missing: p.missing, outs: [...v.outs, ...p.outs] };
        }
        return this.unify(t.args[0]!, t.args[1]!, B);
      }
      const arity = this.an.arity(t);
      if (arity !== undefined && t.args.length === arity + 1) {
        const inputs = this.merge(t.args.slice(0, arity).map((a) => this.value(a, B)));
        if (inputs.missing.length) return inputs;
        const p = this.pattern(t.args[arity]!, new Set([...B, ...inputs.outs]));
        return { missing: p.missing, outs: [...inputs.outs, ...p.outs] };
      }
    }
    return this.value(t, B);
  }

  expr(e: Expr, B: Set<number>, localOnly: (slot: number) => boolean): Verdict {
    const withMissing = e.with.flatMap((w) => this.value(w.value, B).missing);
    let v: Verdict;
    switch (e.kind) {
      case 'some':
        v = { missing: [], outs: [] };
        break;
      case 'term':
        v = this.term(e.term, B);
        break;
      case 'somein': {
        const d = this.value(e.domain, B);
        if (d.missing.length) {
          v = d;
          break;
        }
        const ob = new Set([...B, ...d.outs]);
        const pk = e.key ? this.pattern(e.key, ob) : { missing: [], outs: [] };
        const pv = this.pattern(e.value, ob);
        v = { missing: [...pk.missing, ...pv.missing], outs: [...d.outs, ...pk.outs, ...pv.outs] };
        break;
      }
      case 'every': {
        const d = this.value(e.domain, B);
        v = { missing: d.missing, outs: [] };
        break;
      }
    }
    if (e.negated && !v.missing.length) {
      // Variables shared with the rest of the body must be bound before a negation runs.
      const miss = allVars(e).filter((s) => !B.has(s) && !localOnly(s));
      v = { missing: miss, outs: [] };
    }
    return { missing: [...v.missing, ...withMissing], outs: v.outs };
  }
}

/**
 * reorderBody orders a body's expressions so each runs after the ones binding its inputs, keeping
 * the written order where possible (as OPA does), and reports unsafe variables.
 */
export function reorderBody(body: Expr[], bound: Set<number>, an: Analyzer, _nested = false): { body: Expr[]; boundAfter: Set<number> } {
  const ck = new Checker(an);
  const B = new Set(bound);
  const occ = body.map((e) => new Set(allVars(e)));
  const out: Expr[] = [];
  const rest = body.map((e, i) => ({ e, i }));
  while (rest.length) {
    let picked = -1;
    let firstMissing: number[] = [];
    for (let j = 0; j < rest.length; j++) {
      const { e, i } = rest[j]!;
      const localOnly = (s: number): boolean => occ.every((set, k) => k === i || !set.has(s));
      const v = ck.expr(e, B, localOnly);
      if (!v.missing.length) {
        picked = j;
        // the evaluation tiers read what is bound before it: a ref key not bound yet iterates
        e.bound = new Set(B);
        for (const o of v.outs) B.add(o);
        break;
      }
      if (j === 0) firstMissing = v.missing;
    }
    if (picked < 0) {
      const e = rest[0]!.e;
      throw new RegoError('rego_unsafe_var_error', `var ${an.name(firstMissing[0]!)} is unsafe`, e.loc);
    }
    const [{ e }] = rest.splice(picked, 1);
    if (e!.kind === 'every') {
      const inner = new Set(B);
      const pv: number[] = [];
      if (e!.key) patternVars(e!.key, pv);
      patternVars(e!.value, pv);
      for (const s of pv) inner.add(s);
      const r = reorderBody(e!.body, inner, an, true);
      out.push({ ...e!, body: r.body });
    } else if (e!.negated && an.negation) {
      const parts = an.negation(e!, B);
      if (parts) {
        // the hoisted operands bind their own fresh variables, which the negation then reads
        // (B already holds what the negation binds: nothing, it binds no variable outside itself)
        for (const p of parts) {
          p.bound = new Set(B);
          for (const o of ck.expr(p, B, () => false).outs) B.add(o);
        }
        out.push(...parts);
      } else out.push(e!);
    } else out.push(e!);
  }
  return { body: out, boundAfter: B };
}

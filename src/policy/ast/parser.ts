import YAML from 'yaml';

import { RegoError, RegoErrors } from '../errors.js';
import { normNum,RDecimal } from '../value.js';

import { lex, type Tok } from './lexer.js';
import type { Expr, Import, Loc, Module, Rule, Term, VarTerm, With } from './types.js';

const INFIX: Record<string, string> = {
  '==': 'equal',
  '!=': 'neq',
  '<': 'lt',
  '<=': 'lte',
  '>': 'gt',
  '>=': 'gte',
  '+': 'plus',
  '-': 'minus',
  '*': 'mul',
  '/': 'div',
  '%': 'rem',
  '&': 'and',
  '|': 'or',
};

/** The keywords Rego v0 had only when imported (`import future.keywords.in`); v1 always has them. */
const FUTURE_KEYWORDS = ['contains', 'every', 'if', 'in'] as const;

/**
 * parseModule parses one Rego file, as OPA 1.x does with the given version: v1 (the default)
 * requires `if` before every rule body and `contains` for multi-value rules, and reports v0-only
 * syntax with OPA's errors (all of them, as one RegoErrors); v0 turns on `in`, `every`, `if` and
 * `contains` only where `import future.keywords...` or `import rego.v1` asks, and a v0 module with
 * `import rego.v1` is checked as v1 (its `regoVersion` becomes 1).
 */
export function parseModule(file: string, src: string, regoVersion: 0 | 1 = 1): Module {
  return new Parser(file, src, regoVersion).module();
}

/** parseQuery parses a query body such as `data.x.allow = x; y := 1`. */
export function parseQuery(src: string, file = 'query'): Expr[] {
  const p = new Parser(file, src, 1);
  const body = p.bodyUntil(null);
  p.expectEOF();
  return body;
}

/** parseTerm parses one term (used for `input_term`). */
export function parseTermText(src: string, file = 'term'): Term {
  const p = new Parser(file, src, 1);
  const t = p.term();
  p.expectEOF();
  return t;
}

/** numberValue converts numeric literal text to a value, exactly for big integers. */
export function numberValue(text: string): number | bigint | RDecimal {
  if (/^-?[0-9]+$/.test(text)) {
    const n = Number(text);
    return Number.isSafeInteger(n) ? n : normNum(BigInt(text));
  }
  const f = Number(text);
  if (Number.isFinite(f) && (f !== 0 || !/[1-9]/.test(text.replace(/[eE].*$/, ''))) && sigDigits(text) <= 17) return f;
  // more digits than a float holds, beyond its range, or underflowing to 0: keep the decimal as written
  const m = /^(-?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (!m) return f;
  const frac = m[3] ?? '';
  const c = BigInt(m[1]! + ((m[2] ?? '') + frac || '0'));
  // the literal's own text is printed, when it is valid JSON (Go's json.Number)
  return new RDecimal(c, Number(m[4] ?? 0) - frac.length, /^-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?$/.test(text) ? text : undefined);
}

/** sigDigits counts the significant digits of decimal literal text (leading and trailing zeros not counted). */
function sigDigits(text: string): number {
  const d = text.replace(/[eE].*$/, '').replace(/[^0-9]/g, '').replace(/^0+/, '').replace(/0+$/, '');
  return d.length;
}

/**
 * HeadSyntax records how one rule definition (or `else` branch, or extra `{ ... }` body) was
 * written, for the checks OPA applies to v1 modules after parsing (`checkRegoV1Rule`).
 */
interface HeadSyntax {
  loc: Loc;
  name: string;
  func: boolean;
  isDefault: boolean;
  multi: boolean;
  hasIf: boolean;
  hasContains: boolean;
  /** no body was written (`p := 1`, `p contains x`): the parser supplied `true` */
  generatedBody: boolean;
  /** no value was written (`p if {...}`): the parser supplied `true` */
  generatedValue: boolean;
}

/** Words that are keywords in Rego v1 and so cannot name a rule (OPA's `IsKeywordInRegoVersion`). */
const V1_KEYWORDS = new Set(['as', 'contains', 'default', 'else', 'every', 'false', 'if', 'import', 'in', 'not', 'null', 'package', 'some', 'true', 'with']);

/** Words that are keywords in Rego v0 without future imports. */
const V0_KEYWORDS = new Set([...V1_KEYWORDS].filter((k) => !(FUTURE_KEYWORDS as readonly string[]).includes(k)));

/** What OPA suggests importing when a future keyword is used without being turned on. */
const KEYWORD_HINT: Record<string, string> = {
  in: '`import future.keywords.in` for `x in xs` expressions',
  every: '`import future.keywords.every` for `every x in xs { ... }` expressions',
  if: '`import future.keywords.if` for `p if { ... }` rules',
  contains: '`import future.keywords.contains` for `p contains x` rules',
};

class Parser {
  private toks: Tok[];
  private i = 0;
  private mod!: Module;
  /** future keywords that are on: all of them in v1; in v0 those imported */
  private readonly kw: Set<string>;
  /** v1 modules, and v0 modules with `import rego.v1`, get OPA's v1 checks */
  private v1Checked: boolean;
  private readonly heads: HeadSyntax[] = [];
  constructor(
    private file: string,
    private src: string,
    private version: 0 | 1,
    kw?: Set<string>,
  ) {
    this.toks = lex(src, file);
    this.kw = kw ?? new Set(version === 1 ? FUTURE_KEYWORDS : []);
    this.v1Checked = version === 1;
  }

  private get t(): Tok {
    return this.toks[this.i]!;
  }
  private peek(n = 1): Tok {
    return this.toks[Math.min(this.i + n, this.toks.length - 1)]!;
  }
  private loc(t: Tok = this.t): Loc {
    return { file: this.file, row: t.row, col: t.col };
  }
  private err(msg: string, t: Tok = this.t): never {
    throw new RegoError('rego_parse_error', msg, this.loc(t));
  }
  private isOp(v: string, t: Tok = this.t): boolean {
    return t.k === 'op' && t.v === v;
  }
  private isKw(v: string, t: Tok = this.t): boolean {
    return t.k === 'ident' && t.v === v;
  }
  /** fk: t is the future keyword v and v is on in this module. */
  private fk(v: string, t: Tok = this.t): boolean {
    return this.kw.has(v) && this.isKw(v, t);
  }
  /** offKeyword: t is a future keyword that this (v0) module has not imported. */
  private offKeyword(t: Tok = this.t): string | undefined {
    return t.k === 'ident' && (FUTURE_KEYWORDS as readonly string[]).includes(t.v) && !this.kw.has(t.v) ? t.v : undefined;
  }
  private expectOp(v: string): Tok {
    if (!this.isOp(v)) this.err(`expected '${v}' but found ${this.describe()}`);
    return this.toks[this.i++]!;
  }
  private describe(t: Tok = this.t): string {
    return t.k === 'eof' ? 'end of input' : t.k === 'string' ? 'string' : `'${t.v}'`;
  }
  expectEOF(): void {
    if (this.t.k !== 'eof') this.err(`unexpected ${this.describe()}`);
  }

  module(): Module {
    const pkgTok = this.t;
    if (!this.isKw('package')) this.err('expected package declaration');
    this.i++;
    const pkg = ['data', ...this.refPath()];
    this.mod = { file: this.file, pkg, imports: [], rules: [], regoVersion: this.version, loc: this.loc(pkgTok) };
    while (this.isKw('import')) this.mod.imports.push(this.importDecl());
    while (this.t.k !== 'eof') this.rule();
    if (this.v1Checked) {
      this.mod.regoVersion = 1;
      const errs = this.heads.flatMap(v1Problems);
      if (errs.length === 1) throw errs[0]!;
      if (errs.length) throw new RegoErrors(errs);
    }
    const lines = this.src.split('\n');
    this.mod.annotations = annotationsAbove(lines, this.mod.loc.row, 'package');
    for (const r of this.mod.rules) r.annotations = annotationsAbove(lines, r.loc.row, 'rule');
    return this.mod;
  }

  /** refPath reads a dotted path (`a.b["c"]`); `at` receives the token of each segment. */
  private refPath(at: Tok[] = []): string[] {
    const out: string[] = [];
    if (this.t.k !== 'ident') this.err(`expected identifier but found ${this.describe()}`);
    at.push(this.t);
    out.push(this.toks[this.i++]!.v);
    for (;;) {
      if (this.isOp('.') && !this.t.nl) {
        this.i++;
        if (this.t.k !== 'ident') this.err(`unexpected ${this.t.k === 'eof' ? 'eof' : this.describe()} token: expected ident`);
        at.push(this.t);
        out.push(this.toks[this.i++]!.v);
      } else if (this.isOp('[') && !this.t.nl && this.peek().k === 'string' && this.isOp(']', this.peek(2))) {
        at.push(this.peek());
        out.push(this.peek().v);
        this.i += 3;
      } else break;
    }
    return out;
  }

  /**
   * importDecl reads one import. `future.keywords[.kw]` turns keywords on (a no-op in v1) and
   * `rego.v1` turns them all on and makes a v0 module v1-checked, with OPA's errors for malformed ones.
   */
  private importDecl(): Import {
    const loc = this.loc();
    this.i++;
    const start = this.t;
    const segments: Tok[] = [];
    const path = this.refPath(segments);
    const head = path[0]!;
    if (!['data', 'input', 'future', 'rego'].includes(head)) this.err(`unexpected import path, must begin with one of: {data, future, input, rego}, got: ${head}`, start);
    const term: Term = {
      type: 'ref',
      head: { type: 'var', name: head, loc: this.loc(start) },
      path: path.slice(1).map((s) => ({ type: 'scalar', value: s, loc: this.loc(start) })),
      loc: this.loc(start),
    };
    let alias: string | undefined;
    if (this.isKw('as') && !this.t.nl) {
      this.i++;
      if (this.t.k !== 'ident') this.err('expected alias name');
      alias = this.toks[this.i++]!.v;
    }
    // OPA refuses a keyword as the last name of an import without an alias: `import data.x.in`
    // would bind `in`; a future import names keywords on purpose
    const last = path[path.length - 1]!;
    if (alias === undefined && head !== 'future' && (this.version === 1 ? V1_KEYWORDS : V0_KEYWORDS).has(last)) {
      this.err(`unexpected import path, must not end with a keyword, got: ${last} (hint: import a different path or use an alias)`, segments[segments.length - 1]);
    }
    if (head === 'future') {
      if (path[1] !== 'keywords') this.err('invalid import, must be `future.keywords`', start);
      if (alias !== undefined) this.err('`future` imports cannot be aliased', start);
      if (path.length === 3 && !(FUTURE_KEYWORDS as readonly string[]).includes(path[2]!)) this.err(`unexpected keyword, must be one of [${FUTURE_KEYWORDS.join(' ')}]`, start);
      for (const k of path.length === 3 ? [path[2]!] : FUTURE_KEYWORDS) this.kw.add(k);
    } else if (head === 'rego') {
      if (path.length !== 2 || path[1] !== 'v1') this.err(`invalid import \`${path.join('.')}\`, must be \`rego.v1\``, start);
      if (this.version === 0) {
        if (alias !== undefined) this.err('`rego` imports cannot be aliased', start);
        for (const k of FUTURE_KEYWORDS) this.kw.add(k);
        this.v1Checked = true;
      }
    }
    return { path: term, alias, loc };
  }

  private rule(): void {
    const start = this.t;
    const loc = this.loc();
    let isDefault = false;
    if (this.isKw('default') && this.peek().k === 'ident' && !this.peek().nl) {
      isDefault = true;
      this.i++;
    }
    if (this.t.k !== 'ident') this.err(`unexpected ${this.describe()}`);
    const ref: Term[] = [{ type: 'scalar', value: this.toks[this.i++]!.v, loc: this.loc(start) }];
    for (;;) {
      if (this.isOp('.') && !this.t.nl) {
        this.i++;
        const t = this.t;
        if (t.k !== 'ident') this.err('expected identifier');
        this.i++;
        ref.push({ type: 'scalar', value: t.v, loc: this.loc(t) });
      } else if (this.isOp('[') && !this.t.nl) {
        this.i++;
        ref.push(this.term());
        this.expectOp(']');
      } else break;
    }
    // OPA names a head (and so checks the name against keywords) when it is one var, or a v0-style `p[x]`
    let name = ref.length === 1 ? String((ref[0] as { value: unknown }).value) : '';
    let kind: Rule['kind'] = 'complete';
    let args: Term[] | undefined;
    let key: Term | undefined;
    let value: Term | undefined;
    let assign = false;
    if (this.isOp('(') && !this.t.nl) {
      this.i++;
      args = [];
      while (!this.isOp(')')) {
        args.push(this.term());
        if (!this.isOp(')')) this.expectOp(',');
      }
      this.i++;
      // OPA keeps `f()` with no parameters a plain rule (`f := ...`): the library's tests read such
      // rules as values, without parentheses
      if (args.length) kind = 'func';
      else args = undefined;
    }
    let hasContains = false;
    if (this.fk('contains') && !this.t.nl) {
      this.i++;
      kind = 'multi';
      key = this.term();
      hasContains = true;
    } else if ((this.isOp('=') || this.isOp(':=')) && !this.t.nl) {
      assign = this.isOp(':=');
      this.i++;
      value = this.term();
    }
    if (isDefault && kind === 'complete' && !value) this.err('illegal default rule (must have a value)', start);
    const hasIf = this.startsIfBody();
    // OPA's back-compat reading of a two-term head with neither value nor `if` (`p[x] { ... }`,
    // `p.q { ... }`, a bare `p[x]`): a multi-value rule. In v1 the checks below then ask for `contains`.
    if (!hasIf && kind === 'complete' && !isDefault && ref.length === 2 && value === undefined) {
      kind = 'multi';
      key = ref.pop();
      name = String((ref[0] as { value: unknown }).value);
    }
    const rule: Rule = { ref, kind, args, key, value, body: [], elses: [], isDefault, loc, module: this.mod };
    if (assign) rule.assign = true;
    const hadBody = this.ruleBody(rule, (b) => (rule.body = b));
    if (!hadBody) {
      const off = this.offKeyword();
      if (off && !this.t.nl && (off === 'if' || off === 'contains')) this.err(`${ref.length === 1 && !args ? 'var cannot be used for rule name' : 'unexpected identifier token'} (hint: ${KEYWORD_HINT[off]})`, start);
      // a bare `p` is no rule (OPA: "var cannot be used for rule name"); a bare `f(x)` is `f(x) := true`
      if (kind === 'complete' && !isDefault && ref.length === 1 && value === undefined) this.err('var cannot be used for rule name', start);
      rule.body = [trueExpr(loc)];
    }
    this.mod.rules.push(rule);
    const syntax: HeadSyntax = {
      loc,
      name,
      func: !!args,
      isDefault,
      multi: kind === 'multi',
      hasIf,
      hasContains,
      generatedBody: !hadBody || isDefault,
      generatedValue: value === undefined && kind !== 'multi' && (hadBody || kind !== 'func'),
    };
    this.heads.push(syntax);
    // v0 allows several bodies for one head: `p { a } { b }`; each is checked like the first
    while (this.isOp('{')) {
      const extra: Rule = { ...rule, body: [], elses: [], loc: this.loc() };
      this.heads.push({ ...syntax, loc: extra.loc, generatedBody: false });
      this.i++;
      extra.body = this.bodyUntil('}');
      this.i++;
      this.mod.rules.push(extra);
    }
    while (this.isKw('else') && !this.isOp('.', this.peek()) && !this.isOp('[', this.peek())) {
      if (rule.ref.slice(1).some((t) => t.type !== 'scalar')) this.err('else keyword cannot be used on rules with variables in head');
      if (rule.kind === 'multi') this.err('else keyword cannot be used on multi-value rules');
      const eloc = this.loc();
      this.i++;
      let ev: Term | undefined;
      let eassign = false;
      if (this.isOp('=') || this.isOp(':=')) {
        eassign = this.isOp(':=');
        this.i++;
        ev = this.term();
      }
      const e: Rule['elses'][number] = { value: ev, body: [], loc: eloc };
      if (eassign) e.assign = true;
      const elseIf = this.startsIfBody();
      const hadElseBody = this.ruleBody(rule, (b) => (e.body = b));
      if (!hadElseBody) {
        if (!ev) this.err('expected else value term or rule body');
        e.body = [trueExpr(eloc)];
      }
      this.heads.push({ ...syntax, loc: eloc, isDefault: false, hasIf: elseIf, generatedBody: !hadElseBody, generatedValue: !ev });
      rule.elses.push(e);
    }
  }

  /** startsIfBody: the current token is an `if` that opens a rule body. */
  private startsIfBody(): boolean {
    return this.fk('if') && !this.isOp('.', this.peek()) && !this.isOp('[', this.peek());
  }

  /** ruleBody parses `if { ... }`, `if expr`, or `{ ... }`; returns false when absent. */
  private ruleBody(rule: Rule, set: (b: Expr[]) => void): boolean {
    void rule;
    if (this.startsIfBody()) {
      this.i++;
      if (this.isOp('{') && this.looksLikeBody()) {
        this.i++;
        set(this.bodyUntil('}'));
        this.i++;
      } else {
        set([this.expr()]);
      }
      return true;
    }
    if (this.isOp('{')) {
      this.i++;
      set(this.bodyUntil('}'));
      this.i++;
      return true;
    }
    return false;
  }

  /** looksLikeBody: after `if`, `{` opens a body unless it is an object/set literal expression. */
  private looksLikeBody(): boolean {
    const save = this.i;
    try {
      const t = this.term();
      return !(t.type === 'objectcompr' || t.type === 'setcompr' || (t.type === 'object' && t.items.length > 0));
    } catch {
      return true;
    } finally {
      this.i = save;
    }
  }

  /** bodyUntil parses expressions separated by `;` or newlines until the closing op (not consumed). */
  bodyUntil(close: string | null): Expr[] {
    const out: Expr[] = [];
    for (;;) {
      if (close ? this.isOp(close) : this.t.k === 'eof') break;
      out.push(this.expr());
      if (this.isOp(';')) {
        this.i++;
        continue;
      }
      if (close ? this.isOp(close) : this.t.k === 'eof') break;
      if (!this.t.nl) this.unexpectedAfter(out[out.length - 1]!, close);
    }
    if (!out.length) this.err('found empty body');
    return out;
  }

  /**
   * unexpectedAfter reports a token that cannot follow an expression. A future keyword this v0
   * module has not imported gets OPA's message and hint (`x in xs` without `import future.keywords.in`).
   */
  private unexpectedAfter(prev: Expr, close: string | null): never {
    const off = this.offKeyword();
    const everyVar = prev.kind === 'term' && prev.term.type === 'var' && prev.term.name === 'every' && !this.kw.has('every');
    if (this.t.k === 'ident' && (off === 'in' || everyVar)) {
      this.err(`unexpected identifier token: expected \\n or ; or ${close ?? ';'} (hint: ${KEYWORD_HINT[everyVar ? 'every' : 'in']})`);
    }
    this.err(`unexpected ${this.describe()}`);
  }

  expr(): Expr {
    const loc = this.loc();
    let negated = false;
    let e: Expr;
    // `not[x]` (no space) reads as a reference to a variable named not; `not [a, b] == c` negates an array expression.
    const next = this.peek();
    const glued = next.row === this.t.row && next.col === this.t.col + 3;
    if (this.isKw('not') && !this.isOp('.', next) && !(this.isOp('[', next) && glued)) {
      this.i++;
      negated = true;
    }
    if (this.isKw('some') && !this.peek().nl && !['.', '[', '(', '=', ':=', '==', '!=', ';', '}', ')', ']', ','].some((o) => this.isOp(o, this.peek())) && this.peek().k !== 'eof') {
      this.i++;
      const terms: Term[] = [this.termRel()];
      while (this.isOp(',')) {
        this.i++;
        terms.push(this.termRel());
      }
      if (this.offKeyword() === 'in') this.err(`unexpected identifier token: expected \\n or ; or } (hint: \`import future.keywords.in\` for \`some x in xs\` expressions)`);
      if (this.fk('in')) {
        this.i++;
        const domain = this.termRel();
        if (terms.length > 2) this.err('unexpected , in some declaration');
        e = terms.length === 2 ? { kind: 'somein', key: terms[0], value: terms[1]!, domain, negated, with: [], loc } : { kind: 'somein', value: terms[0]!, domain, negated, with: [], loc };
      } else {
        for (const t of terms) if (t.type !== 'var') this.err('expected var in some declaration');
        e = { kind: 'some', vars: terms as VarTerm[], negated, with: [], loc };
      }
    } else if (this.fk('every') && !this.isOp('.', this.peek()) && !this.isOp('[', this.peek())) {
      this.i++;
      const a = this.termRel();
      let key: Term | undefined;
      let value = a;
      if (this.isOp(',')) {
        this.i++;
        key = a;
        value = this.termRel();
      }
      if (!this.fk('in')) this.err('expected in in every expression');
      this.i++;
      const domain = this.termRel();
      this.expectOp('{');
      const body = this.bodyUntil('}');
      this.i++;
      e = { kind: 'every', key, value, domain, body, negated, with: [], loc };
    } else {
      let t = this.termInKey();
      if ((this.isOp('=') || this.isOp(':=')) && !this.t.nl) {
        const op = this.toks[this.i++]!.v;
        const rhs = this.termIn();
        t = { type: 'call', fn: [op === '=' ? 'eq' : 'assign'], args: [t, rhs], loc: t.loc };
      }
      e = { kind: 'term', term: t, negated, with: [], loc };
    }
    while (this.isKw('with') && !this.isOp('.', this.peek()) && !this.isOp('[', this.peek())) {
      const wloc = this.loc();
      this.i++;
      const target = this.term();
      if (!this.isKw('as')) this.err('expected as in with modifier');
      this.i++;
      const value = this.termIn();
      e.with.push({ target, value, loc: wloc } as With);
    }
    return e;
  }

  /** peekAfterTerm finds the token after `, term` to tell `k, v in xs` from other commas. */
  private peekAfterTerm(): Tok {
    const save = this.i;
    try {
      this.i++;
      this.termRel();
      return this.t;
    } catch {
      return this.t;
    } finally {
      this.i = save;
    }
  }

  term(): Term {
    return this.termIn();
  }

  /** termInKey parses `k, v in xs` (membership with key) where a comma cannot mean anything else. */
  private termInKey(): Term {
    let t = this.termIn();
    if (this.isOp(',') && this.fk('in', this.peekAfterTerm())) {
      this.i++;
      const v = this.termRel();
      this.i++; // in
      const coll = this.termRel();
      t = { type: 'call', fn: ['internal', 'member_3'], args: [t, v, coll], loc: t.loc };
      while (this.fk('in') && !this.t.nl) {
        this.i++;
        t = { type: 'call', fn: ['internal', 'member_2'], args: [t, this.termRel()], loc: t.loc };
      }
    }
    return t;
  }

  private termIn(noOr = false): Term {
    let t = this.termRel(noOr);
    while (this.fk('in') && !this.t.nl) {
      this.i++;
      const coll = this.termRel(noOr);
      t = { type: 'call', fn: ['internal', 'member_2'], args: [t, coll], loc: t.loc };
    }
    return t;
  }

  private termRel(noOr = false): Term {
    let t = this.termOr(noOr);
    while (this.t.k === 'op' && ['==', '!=', '<', '<=', '>', '>='].includes(this.t.v) && !this.t.nl) {
      const op = this.toks[this.i++]!.v;
      const r = this.termOr(noOr);
      t = { type: 'call', fn: [INFIX[op]!], args: [t, r], loc: t.loc };
    }
    return t;
  }

  private termOr(noOr: boolean): Term {
    let t = this.termAnd();
    while (!noOr && this.isOp('|') && !this.t.nl) {
      this.i++;
      const r = this.termAnd();
      t = { type: 'call', fn: ['or'], args: [t, r], loc: t.loc };
    }
    return t;
  }

  private termAnd(): Term {
    let t = this.termArith();
    while (this.isOp('&') && !this.t.nl) {
      this.i++;
      const r = this.termArith();
      t = { type: 'call', fn: ['and'], args: [t, r], loc: t.loc };
    }
    return t;
  }

  private termArith(): Term {
    let t = this.termFactor();
    while ((this.isOp('+') || this.isOp('-')) && !this.t.nl) {
      const op = this.toks[this.i++]!.v;
      const r = this.termFactor();
      t = { type: 'call', fn: [INFIX[op]!], args: [t, r], loc: t.loc };
    }
    return t;
  }

  private termFactor(): Term {
    let t = this.termUnary();
    while ((this.isOp('*') || this.isOp('/') || this.isOp('%')) && !this.t.nl) {
      const op = this.toks[this.i++]!.v;
      const r = this.termUnary();
      t = { type: 'call', fn: [INFIX[op]!], args: [t, r], loc: t.loc };
    }
    return t;
  }

  private termUnary(): Term {
    if (this.isOp('-')) {
      const loc = this.loc();
      this.i++;
      if (this.t.k === 'number' && this.t.col === loc.col + 1 && this.t.row === loc.row) {
        const n = this.toks[this.i++]!;
        return this.postfix({ type: 'scalar', value: numberValue('-' + n.v), loc });
      }
      const x = this.termUnary();
      return { type: 'call', fn: ['minus'], args: [{ type: 'scalar', value: 0, loc }, x], loc };
    }
    return this.postfix(this.primary());
  }

  private primary(): Term {
    const t = this.t;
    const loc = this.loc();
    switch (t.k) {
      case 'number':
        this.i++;
        return { type: 'scalar', value: numberValue(t.v), loc };
      case 'string':
        this.i++;
        return { type: 'scalar', value: t.v, loc };
      case 'template':
        this.i++;
        return {
          type: 'template',
          parts: t.parts!.map((p) => (typeof p === 'string' ? p : parseSub(p.src, this.file, this.version, this.kw))),
          loc,
        };
      case 'ident':
        this.i++;
        if ((t.v === 'true' || t.v === 'false' || t.v === 'null') && this.isOp('.') && !this.t.nl) return { type: 'var', name: t.v, loc };
        if (t.v === 'true' || t.v === 'false') return { type: 'scalar', value: t.v === 'true', loc };
        if (t.v === 'null') return { type: 'scalar', value: null, loc };
        if (t.v === 'set' && this.isOp('(') && this.isOp(')', this.peek()) && !this.t.nl) {
          this.i += 2;
          return { type: 'set', items: [], loc };
        }
        return { type: 'var', name: t.v, loc };
      case 'op':
        if (t.v === '(') {
          this.i++;
          const inner = this.termInKey();
          this.expectOp(')');
          return inner;
        }
        if (t.v === '[') return this.arrayLit();
        if (t.v === '{') return this.braceLit();
        break;
      default:
        break;
    }
    return this.err(`unexpected ${this.describe()}`);
  }

  private arrayLit(): Term {
    const loc = this.loc();
    this.i++;
    if (this.isOp(']')) {
      this.i++;
      return { type: 'array', items: [], loc };
    }
    const first = this.termIn(true);
    if (this.isOp('|')) {
      this.i++;
      const body = this.bodyUntil(']');
      this.i++;
      return { type: 'arraycompr', head: first, body, loc };
    }
    const items = [first];
    while (this.isOp(',')) {
      this.i++;
      if (this.isOp(']')) break;
      items.push(this.termIn());
    }
    this.expectOp(']');
    return { type: 'array', items, loc };
  }

  private braceLit(): Term {
    const loc = this.loc();
    this.i++;
    if (this.isOp('}')) {
      this.i++;
      return { type: 'object', items: [], loc };
    }
    const first = this.termIn(true);
    if (this.isOp(':')) {
      this.i++;
      const v = this.termIn(true);
      if (this.isOp('|')) {
        this.i++;
        const body = this.bodyUntil('}');
        this.i++;
        return { type: 'objectcompr', key: first, value: v, body, loc };
      }
      const items: Array<[Term, Term]> = [[first, v]];
      while (this.isOp(',')) {
        this.i++;
        if (this.isOp('}')) break;
        const k = this.termIn();
        this.expectOp(':');
        items.push([k, this.termIn()]);
      }
      this.expectOp('}');
      return { type: 'object', items, loc };
    }
    if (this.isOp('|')) {
      this.i++;
      const body = this.bodyUntil('}');
      this.i++;
      return { type: 'setcompr', head: first, body, loc };
    }
    const items = [first];
    while (this.isOp(',')) {
      this.i++;
      if (this.isOp('}')) break;
      items.push(this.termIn());
    }
    this.expectOp('}');
    return { type: 'set', items, loc };
  }

  /** postfix parses `.field`, `[key]` and `(args)` after a term, with no newline before them. */
  private postfix(t: Term): Term {
    for (;;) {
      if (this.isOp('.') && !this.t.nl && this.peek().k === 'ident') {
        this.i++;
        const f = this.toks[this.i++]!;
        const key: Term = { type: 'scalar', value: f.v, loc: this.loc(f) };
        t = t.type === 'ref' ? { ...t, path: [...t.path, key] } : { type: 'ref', head: t, path: [key], loc: t.loc };
      } else if (this.isOp('[') && !this.t.nl) {
        this.i++;
        const key = this.termIn();
        this.expectOp(']');
        t = t.type === 'ref' ? { ...t, path: [...t.path, key] } : { type: 'ref', head: t, path: [key], loc: t.loc };
      } else if (this.isOp('(') && !this.t.nl && (t.type === 'var' || (t.type === 'ref' && t.head.type === 'var' && t.path.every((p) => p.type === 'scalar' && typeof p.value === 'string')))) {
        const fn = t.type === 'var' ? [t.name] : [(t.head as VarTerm).name, ...t.path.map((p) => String((p as { value: unknown }).value))];
        this.i++;
        const args: Term[] = [];
        while (!this.isOp(')')) {
          args.push(this.termIn());
          if (!this.isOp(')')) this.expectOp(',');
        }
        this.i++;
        t = { type: 'call', fn, args, loc: t.loc };
      } else return t;
    }
  }
}

/**
 * annotationsAbove reads a `# METADATA` comment block ending on the line above row: the rest of
 * the block is YAML. Authors written as "Name <email>" become {name, email}.
 */
function annotationsAbove(lines: string[], row: number, defaultScope: string): Record<string, unknown> | undefined {
  let i = row - 2;
  const block: string[] = [];
  while (i >= 0 && /^\s*#/.test(lines[i]!)) block.unshift(lines[i--]!.replace(/^\s*#\s?/, ''));
  const start = block.findIndex((l) => l.trim() === 'METADATA');
  if (start < 0) return undefined;
  let doc: Record<string, unknown>;
  try {
    doc = (YAML.parse(block.slice(start + 1).join('\n')) as Record<string, unknown> | null) ?? {};
  } catch {
    return undefined;
  }
  if (Array.isArray(doc.authors)) {
    doc.authors = doc.authors.map((a: unknown) => {
      if (typeof a !== 'string') return a;
      const m = /^(.*?)\s*<([^>]+)>$/.exec(a);
      return m ? (m[1] ? { name: m[1], email: m[2] } : { email: m[2] }) : { name: a };
    });
  }
  return { scope: defaultScope, ...doc };
}

/** parseSub parses a template-string part: a term, or an expression with `with` modifiers. */
function parseSub(src: string, file: string, version: 0 | 1, kw: Set<string>): Term | Expr {
  const p = new Parser(file, src, version, kw);
  const e = p.expr();
  p.expectEOF();
  return e.kind === 'term' && !e.negated && !e.with.length ? e.term : e;
}

/** v1Problems is OPA's `checkRegoV1Rule` for one rule definition: v0-only syntax, with OPA's messages. */
function v1Problems(h: HeadSyntax): RegoError[] {
  const what = h.func ? 'function' : 'rule';
  const out: RegoError[] = [];
  const e = (msg: string) => out.push(new RegoError('rego_parse_error', msg, h.loc));
  if (V1_KEYWORDS.has(h.name)) e(`${h.name} keyword cannot be used for rule name`);
  if (h.generatedBody && h.generatedValue) e(`${what} must have value assignment and/or body declaration`);
  if (!h.generatedBody && !h.hasIf && !h.isDefault) e(`\`if\` keyword is required before ${what} body`);
  if (h.multi && !h.hasContains) e('`contains` keyword is required for partial set rules');
  return out;
}

function trueExpr(loc: Loc): Expr {
  return { kind: 'term', term: { type: 'scalar', value: true, loc }, negated: false, with: [], loc };
}

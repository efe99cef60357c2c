/**
 * A GraphQL lexer and parser whose AST and error messages follow the shape OPA's graphql.*
 * built-ins expose (the field names of the Go gqlparser structs, empty fields omitted), so
 * policies that compare ASTs or error text behave as they do under OPA.
 */

type Obj = Record<string, unknown>;

interface Tok {
  kind: 'Name' | 'Int' | 'Float' | 'String' | 'BlockString' | 'Punct' | 'EOF' | 'Invalid';
  value: string;
  line: number;
  col: number;
}

/** GraphQLSyntaxError carries gqlparser's message and position. */
export class GraphQLSyntaxError extends Error {
  constructor(
    msg: string,
    readonly line: number,
    readonly col: number,
  ) {
    super(msg);
  }
}

const PUNCT = ['...', '!', '$', '&', '(', ')', ':', '=', '@', '[', ']', '{', '|', '}'];

function lexAll(src: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  const push = (kind: Tok['kind'], value: string, start: number, l = line, ls = lineStart): void => {
    out.push({ kind, value, line: l, col: start - ls + 1 });
  };
  while (i < src.length) {
    const c = src[i]!;
    if (c === '\n' || (c === '\r' && src[i + 1] !== '\n')) {
      i++;
      line++;
      lineStart = i;
      continue;
    }
    if (c === '\r' || c === ' ' || c === '\t' || c === ',' || c === '\ufeff') {
      i++;
      continue;
    }
    if (c === '#') {
      while (i < src.length && src[i] !== '\n' && src[i] !== '\r') i++;
      continue;
    }
    const start = i;
    if (/[A-Za-z_]/.test(c)) {
      while (i < src.length && /[A-Za-z0-9_]/.test(src[i]!)) i++;
      push('Name', src.slice(start, i), start);
      continue;
    }
    if (/[-0-9]/.test(c)) {
      const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(src.slice(i));
      if (!m) {
        push('Invalid', c, start);
        return out;
      }
      i += m[0].length;
      push(m[2] || m[3] ? 'Float' : 'Int', m[0], start);
      continue;
    }
    if (src.startsWith('"""', i)) {
      const sl = line;
      const sls = lineStart;
      let j = i + 3;
      let raw = '';
      for (;;) {
        if (j >= src.length) {
          push('Invalid', '', j, line, lineStart);
          return out;
        }
        if (src.startsWith('"""', j)) break;
        if (src.startsWith('\\"""', j)) {
          raw += '"""';
          j += 4;
          continue;
        }
        const ch = src[j]!;
        if (ch === '\n' || (ch === '\r' && src[j + 1] !== '\n')) {
          line++;
          lineStart = j + 1;
        }
        raw += ch;
        j++;
      }
      i = j + 3;
      out.push({ kind: 'BlockString', value: blockValue(raw), line: sl, col: start - sls + 1 });
      continue;
    }
    if (c === '"') {
      let j = i + 1;
      let s = '';
      for (;;) {
        const ch = src[j];
        if (ch === undefined || ch === '\n' || ch === '\r') {
          push('Invalid', '', j);
          return out;
        }
        if (ch === '"') break;
        if (ch === '\\') {
          const e = src[j + 1];
          const map: Record<string, string> = { n: '\n', t: '\t', r: '\r', b: '\b', f: '\f', '"': '"', '\\': '\\', '/': '/' };
          if (e === 'u') {
            s += String.fromCharCode(parseInt(src.slice(j + 2, j + 6), 16));
            j += 6;
            continue;
          }
          s += map[e ?? ''] ?? '';
          j += 2;
          continue;
        }
        s += ch;
        j++;
      }
      i = j + 1;
      // gqlparser reports a string token at the column after its opening quote
      push('String', s, start + 1);
      continue;
    }
    const p = PUNCT.find((x) => src.startsWith(x, i));
    if (!p) {
      push('Invalid', c, start);
      return out;
    }
    i += p.length;
    push('Punct', p, start);
  }
  push('EOF', '', i);
  return out;
}

function blockValue(raw: string): string {
  const lines = raw.split(/\r\n|\n|\r/);
  let common: number | undefined;
  for (let k = 1; k < lines.length; k++) {
    const l = lines[k]!;
    const ind = l.length - l.replace(/^[ \t]*/, '').length;
    if (ind < l.length && (common === undefined || ind < common)) common = ind;
  }
  const out = lines.map((l, k) => (k && common ? l.slice(common) : l));
  while (out.length && !out[0]!.trim()) out.shift();
  while (out.length && !out[out.length - 1]!.trim()) out.pop();
  return out.join('\n');
}

const describe = (t: Tok): string => {
  switch (t.kind) {
    case 'EOF':
      return '<EOF>';
    case 'Invalid':
      return '<Invalid>';
    case 'Punct':
      return t.value;
    default:
      return `${t.kind} ${JSON.stringify(t.value)}`;
  }
};

const LOCATIONS = new Set(['QUERY', 'MUTATION', 'SUBSCRIPTION', 'FIELD', 'FRAGMENT_DEFINITION', 'FRAGMENT_SPREAD', 'INLINE_FRAGMENT', 'VARIABLE_DEFINITION', 'SCHEMA', 'SCALAR', 'OBJECT', 'FIELD_DEFINITION', 'ARGUMENT_DEFINITION', 'INTERFACE', 'UNION', 'ENUM', 'ENUM_VALUE', 'INPUT_OBJECT', 'INPUT_FIELD_DEFINITION']);

class P {
  private toks: Tok[];
  private i = 0;
  constructor(src: string) {
    this.toks = lexAll(src);
  }
  private get t(): Tok {
    return this.toks[Math.min(this.i, this.toks.length - 1)]!;
  }
  private err(msg: string, t = this.t): never {
    throw new GraphQLSyntaxError(msg, t.line, t.col);
  }
  private unexpected(t = this.t): never {
    return this.err(`Unexpected ${describe(t)}`, t);
  }
  private isP(v: string): boolean {
    return this.t.kind === 'Punct' && this.t.value === v;
  }
  private isKw(v: string): boolean {
    return this.t.kind === 'Name' && this.t.value === v;
  }
  private skip(v: string): boolean {
    if (this.isP(v)) {
      this.i++;
      return true;
    }
    return false;
  }
  private expect(v: string): void {
    if (this.t.kind === 'Invalid') this.unexpected();
    if (!this.skip(v)) this.err(`Expected ${v}, found ${describe(this.t)}`);
  }
  private expectKw(v: string): void {
    if (!this.isKw(v)) this.err(`Expected ${JSON.stringify(v)}, found ${describe(this.t)}`);
    this.i++;
  }
  private name(): string {
    if (this.t.kind === 'Invalid') this.unexpected();
    if (this.t.kind !== 'Name') this.err(`Expected Name, found ${describe(this.t)}`);
    return this.toks[this.i++]!.value;
  }
  private many<T>(open: string, close: string, f: () => T): T[] {
    const out: T[] = [];
    if (!this.isP(open)) return out;
    this.i++;
    while (!this.skip(close)) {
      if (this.t.kind === 'Invalid') this.unexpected();
      const before = this.i;
      out.push(f());
      if (this.i === before) this.unexpected();
    }
    return out;
  }
  private some<T>(open: string, close: string, f: () => T): T[] {
    this.expect(open);
    const out: T[] = [];
    if (this.isP(close)) this.err(`expected at least one definition, found ${describe(this.t)}`);
    while (!this.skip(close)) {
      if (this.t.kind === 'Invalid') this.unexpected();
      const before = this.i;
      out.push(f());
      if (this.i === before) this.unexpected();
    }
    return out;
  }

  queryDocument(): Obj {
    const ops: Obj[] = [];
    const frags: Obj[] = [];
    while (this.t.kind !== 'EOF') {
      if (this.isP('{')) ops.push(this.operation());
      else if (this.t.kind === 'Name' && ['query', 'mutation', 'subscription'].includes(this.t.value)) ops.push(this.operation());
      else if (this.isKw('fragment')) frags.push(this.fragmentDefinition());
      else this.unexpected();
    }
    const doc: Obj = {};
    if (ops.length) doc.Operations = ops;
    if (frags.length) doc.Fragments = frags;
    return doc;
  }

  private operation(): Obj {
    if (this.isP('{')) return { Name: '', Operation: 'query', SelectionSet: this.selectionSet() };
    const op = this.name();
    const o: Obj = { Name: '', Operation: op };
    if (this.t.kind === 'Name') o.Name = this.name();
    const vars = this.many('(', ')', () => this.variableDefinition());
    if (vars.length) o.VariableDefinitions = vars;
    const dirs = this.directives(false);
    if (dirs.length) o.Directives = dirs;
    o.SelectionSet = this.requiredSelectionSet();
    return o;
  }

  private variableDefinition(): Obj {
    this.expect('$');
    const v: Obj = { Variable: this.name() };
    this.expect(':');
    v.Type = this.typeRef();
    if (this.skip('=')) v.DefaultValue = this.value(true);
    const dirs = this.directives(true);
    if (dirs.length) v.Directives = dirs;
    v.Used = false;
    return v;
  }

  private requiredSelectionSet(): Obj[] {
    if (!this.isP('{')) this.err(`Expected {, found ${describe(this.t)}`);
    return this.selectionSet();
  }

  private selectionSet(): Obj[] {
    return this.some('{', '}', () => this.selection());
  }

  private selection(): Obj {
    if (this.isP('...')) return this.fragment();
    const at = this.t;
    const first = this.name();
    const f: Obj = { Alias: first, Name: first };
    if (this.skip(':')) f.Name = this.name();
    const args = this.many('(', ')', () => this.argument(false));
    if (args.length) f.Arguments = args;
    const dirs = this.directives(false);
    if (dirs.length) f.Directives = dirs;
    if (this.isP('{')) f.SelectionSet = this.selectionSet();
    // position for validation messages; not enumerable, so it never shows in the AST value
    Object.defineProperty(f, '__pos', { value: { line: at.line, col: at.col }, enumerable: false });
    return f;
  }

  private argument(isConst: boolean): Obj {
    const a: Obj = { Name: this.name() };
    this.expect(':');
    a.Value = this.value(isConst);
    return a;
  }

  private fragment(): Obj {
    this.expect('...');
    if (this.t.kind === 'Name' && this.t.value !== 'on') {
      const s: Obj = { Name: this.fragmentName() };
      const dirs = this.directives(false);
      if (dirs.length) s.Directives = dirs;
      return s;
    }
    const f: Obj = { TypeCondition: '' };
    if (this.isKw('on')) {
      this.i++;
      f.TypeCondition = this.name();
    }
    const dirs = this.directives(false);
    if (dirs.length) f.Directives = dirs;
    f.SelectionSet = this.requiredSelectionSet();
    return f;
  }

  private fragmentName(): string {
    if (this.isKw('on')) this.unexpected();
    return this.name();
  }

  private fragmentDefinition(): Obj {
    this.expectKw('fragment');
    const f: Obj = { Name: this.fragmentName() };
    const vars = this.many('(', ')', () => this.variableDefinition());
    if (vars.length) f.VariableDefinition = vars;
    this.expectKw('on');
    f.TypeCondition = this.name();
    const dirs = this.directives(false);
    if (dirs.length) f.Directives = dirs;
    f.SelectionSet = this.requiredSelectionSet();
    return f;
  }

  private value(isConst: boolean): Obj {
    const t = this.t;
    const v = (kind: number, raw: string): Obj => ({ ExpectedTypeHasDefault: false, Kind: kind, Raw: raw });
    if (this.isP('[')) {
      const children = this.many('[', ']', () => ({ Name: '', Value: this.value(isConst) }));
      const o = v(8, '');
      if (children.length) o.Children = children;
      return o;
    }
    if (this.isP('{')) {
      const children = this.many('{', '}', () => {
        const n = this.name();
        this.expect(':');
        return { Name: n, Value: this.value(isConst) };
      });
      const o = v(9, '');
      if (children.length) o.Children = children;
      return o;
    }
    if (this.isP('$')) {
      if (isConst) this.unexpected();
      this.i++;
      return v(0, this.name());
    }
    this.i++;
    switch (t.kind) {
      case 'Int':
        return v(1, t.value);
      case 'Float':
        return v(2, t.value);
      case 'String':
        return v(3, t.value);
      case 'BlockString':
        return v(4, t.value);
      case 'Name':
        if (t.value === 'true' || t.value === 'false') return v(5, t.value);
        if (t.value === 'null') return v(6, t.value);
        return v(7, t.value);
      default:
        this.i--;
        return this.unexpected();
    }
  }

  private directives(isConst: boolean): Obj[] {
    const out: Obj[] = [];
    while (this.isP('@')) {
      this.i++;
      const d: Obj = { Location: '', Name: this.name() };
      const args = this.many('(', ')', () => this.argument(isConst));
      if (args.length) d.Arguments = args;
      out.push(d);
    }
    return out;
  }

  private typeRef(): Obj {
    let t: Obj;
    if (this.skip('[')) {
      const elem = this.typeRef();
      this.expect(']');
      t = { Elem: elem, NamedType: '', NonNull: false };
    } else t = { NamedType: this.name(), NonNull: false };
    if (this.skip('!')) t.NonNull = true;
    return t;
  }

  schemaDocument(): Obj {
    const doc: Record<string, Obj[]> = {};
    const add = (k: string, v: Obj): void => {
      (doc[k] ??= []).push(v);
    };
    while (this.t.kind !== 'EOF') {
      let desc = '';
      const descTok = this.t;
      if (this.t.kind === 'String' || this.t.kind === 'BlockString') {
        desc = this.t.value;
        this.i++;
      }
      if (this.t.kind !== 'Name') this.unexpected();
      const kw = this.t.value;
      if (['scalar', 'type', 'interface', 'union', 'enum', 'input'].includes(kw)) add('Definitions', this.typeDefinition(desc, false));
      else if (kw === 'schema') {
        this.i++;
        const s: Obj = { Description: desc };
        const dirs = this.directives(true);
        if (dirs.length) s.Directives = dirs;
        s.OperationTypes = this.some('{', '}', () => this.operationType());
        add('Schema', s);
      } else if (kw === 'directive') add('Directives', this.directiveDefinition(desc));
      else if (kw === 'extend') {
        if (descTok !== this.t) this.unexpected(descTok);
        this.i++;
        if (this.isKw('schema')) {
          this.i++;
          const s: Obj = { Description: '' };
          const dirs = this.directives(true);
          if (dirs.length) s.Directives = dirs;
          if (this.isP('{')) s.OperationTypes = this.some('{', '}', () => this.operationType());
          if (!dirs.length && !s.OperationTypes) this.unexpected();
          add('SchemaExtension', s);
        } else if (this.t.kind === 'Name' && ['scalar', 'type', 'interface', 'union', 'enum', 'input'].includes(this.t.value)) add('Extensions', this.typeDefinition('', true));
        else this.unexpected();
      } else this.unexpected();
    }
    return doc;
  }

  private operationType(): Obj {
    const op = this.name();
    this.expect(':');
    return { Operation: op, Type: this.name() };
  }

  private description(): string {
    if (this.t.kind === 'String' || this.t.kind === 'BlockString') return this.toks[this.i++]!.value;
    return '';
  }

  private typeDefinition(desc: string, ext: boolean): Obj {
    const kw = this.name();
    const kinds: Record<string, string> = { scalar: 'SCALAR', type: 'OBJECT', interface: 'INTERFACE', union: 'UNION', enum: 'ENUM', input: 'INPUT_OBJECT' };
    const d: Obj = { BuiltIn: false, Description: desc, Kind: kinds[kw], Name: this.name() };
    let any = false;
    if (kw === 'type' || kw === 'interface') {
      if (this.isKw('implements')) {
        this.i++;
        this.skip('&');
        const ifs = [this.name()];
        while (this.skip('&')) ifs.push(this.name());
        d.Interfaces = ifs;
        any = true;
      }
    }
    const dirs = this.directives(true);
    if (dirs.length) {
      d.Directives = dirs;
      any = true;
    }
    if (kw === 'type' || kw === 'interface') {
      if (this.isP('{')) {
        d.Fields = this.some('{', '}', () => this.fieldDefinition());
        any = true;
      }
    } else if (kw === 'input') {
      if (this.isP('{')) {
        d.Fields = this.some('{', '}', () => this.inputValue());
        any = true;
      }
    } else if (kw === 'enum') {
      if (this.isP('{')) {
        d.EnumValues = this.some('{', '}', () => {
          const e: Obj = { Description: this.description(), Name: this.name() };
          const ds = this.directives(true);
          if (ds.length) e.Directives = ds;
          return e;
        });
        any = true;
      }
    } else if (kw === 'union') {
      if (this.skip('=')) {
        this.skip('|');
        const ts = [this.name()];
        while (this.skip('|')) ts.push(this.name());
        d.Types = ts;
        any = true;
      }
    }
    if (ext && !any) this.unexpected();
    return d;
  }

  private fieldDefinition(): Obj {
    const f: Obj = { Description: this.description(), Name: this.name() };
    const args = this.many('(', ')', () => this.inputValue());
    if (args.length) f.Arguments = args;
    this.expect(':');
    f.Type = this.typeRef();
    const dirs = this.directives(true);
    if (dirs.length) f.Directives = dirs;
    return f;
  }

  private inputValue(): Obj {
    const f: Obj = { Description: this.description(), Name: this.name() };
    this.expect(':');
    f.Type = this.typeRef();
    if (this.skip('=')) f.DefaultValue = this.value(true);
    const dirs = this.directives(true);
    if (dirs.length) f.Directives = dirs;
    return f;
  }

  private directiveDefinition(desc: string): Obj {
    this.expectKw('directive');
    this.expect('@');
    const d: Obj = { Description: desc, Name: this.name() };
    const args = this.many('(', ')', () => this.inputValue());
    if (args.length) d.Arguments = args;
    d.IsRepeatable = false;
    if (this.isKw('repeatable')) {
      this.i++;
      d.IsRepeatable = true;
    }
    this.expectKw('on');
    this.skip('|');
    const locs: string[] = [];
    do {
      const t = this.t;
      const n = this.name();
      if (!LOCATIONS.has(n)) this.unexpected(t);
      locs.push(n);
    } while (this.skip('|'));
    d.Locations = locs;
    return d;
  }
}

/** parseQueryDocument parses an executable GraphQL document. */
export function parseQueryDocument(src: string): Obj {
  return new P(src).queryDocument();
}

/** parseSchemaDocument parses GraphQL SDL. */
export function parseSchemaDocument(src: string): Obj {
  return new P(src).schemaDocument();
}

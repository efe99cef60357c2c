import { type Document, type DocumentOptions, LineCounter, parse, parseAllDocuments, type ParseOptions, Parser, type ScalarTag, type SchemaOptions, type Tags, type ToJSOptions } from 'yaml';

/** GoYamlOptions are the `yaml` package's parse options, less `lineCounter` (the result carries one). */
export type GoYamlOptions = Omit<ParseOptions, 'lineCounter'> & DocumentOptions & SchemaOptions & ToJSOptions;

/** GoYamlResult is the parsed documents and the line index of the text they were parsed from. */
export interface GoYamlResult {
  docs: Document.Parsed[];
  lines: LineCounter;
}

/**
 * Plain scalars as go-yaml v2 resolves them. kubectl, the API server's YAML decoder, gator and OPA
 * read YAML through sigs.k8s.io/yaml, whose YAMLToJSON uses go-yaml v2 and its YAML 1.1 words:
 * `y`, `yes`, `on` (in three casings) are true and `n`, `no`, `off` false, map keys included (a key
 * `on:` becomes "true"); an integer with a leading zero is octal (`defaultMode: 0644` is 420) and
 * underscores in integers are dropped. Quoted scalars stay strings. go-yaml v3 reads only
 * true/false as booleans, but nothing on these paths uses v3 for untyped documents.
 */
const GO_TRUE = /^(?:[yY]|yes|Yes|YES|true|True|TRUE|on|On|ON)$/;
const GO_BOOL: ScalarTag = {
  identify: (v) => typeof v === 'boolean',
  default: true,
  tag: 'tag:yaml.org,2002:bool',
  test: /^(?:[yY]|yes|Yes|YES|[nN]|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$/,
  resolve: (s) => GO_TRUE.test(s),
  stringify: ({ value }) => (value ? 'true' : 'false'),
};
const GO_INT: ScalarTag = {
  // parse-only: the core schema's int tag stringifies
  identify: () => false,
  default: true,
  tag: 'tag:yaml.org,2002:int',
  test: /^[-+]?[0-9][0-9_]*$/,
  resolve: (s, _onError, opts) => {
    const digits = s.replace(/^[-+]/, '').replace(/_/g, '');
    // 0644 is octal as in Go's strconv.ParseInt(s, 0, 64); 08 and 09 fail there and become floats (8, 9)
    const n = BigInt(/^0[0-7]+$/.test(digits) ? `0o${digits.slice(1)}` : digits) * (s.startsWith('-') ? -1n : 1n);
    return opts.intAsBigInt ? n : Number(n);
  },
};
/** goScalars puts go-yaml v2's scalar resolution ahead of the schema's own tags. */
const goScalars = (tags: Tags): Tags => [GO_BOOL, GO_INT, ...tags];
/** withGoScalars adds them to the options; a caller's own tags (a function) still come first among the rest. */
function withGoScalars(options: GoYamlOptions): GoYamlOptions {
  const own = options.customTags;
  if (own === undefined || own === null) return { ...options, customTags: goScalars };
  return { ...options, customTags: typeof own === 'function' ? (tags) => goScalars(own(tags)) : (tags) => goScalars([...tags, ...own]) };
}

/**
 * parseYamlLikeGo parses multi-document YAML the way Go's YAML parser (go-yaml, under kubectl, the
 * API server, Gatekeeper, gator and OPA) reads it, so that a file a cluster accepts loads here too.
 *
 * The one leniency: go-yaml does not require the continuation lines of a quoted scalar to be indented
 * under their key, as YAML 1.2 and the `yaml` package do:
 *
 *     description: "When set the TLS block is optional,
 *     defaults to false."
 *
 * Leading spaces of a continuation line are folded away, so such a scalar is re-read with its
 * continuation lines indented past the opening quote: same value, same line numbers. A quote with no
 * closing quote, or a continuation line that is a document marker (`---`, `...`), is an error under
 * go-yaml too and stays one, reported with the `yaml` package's message, line and column.
 */
export function parseYamlLikeGo(text: string, options: GoYamlOptions = {}): GoYamlResult {
  const parse = (src: string): GoYamlResult => {
    const lines = new LineCounter();
    const docs = parseAllDocuments(src, { ...withGoScalars(options), lineCounter: lines });
    return { docs: Array.isArray(docs) ? docs : [docs as unknown as Document.Parsed], lines };
  };
  const first = parse(text);
  if (!first.docs.some((d) => d.errors.length)) return first;
  const mended = mendQuotedScalars(text);
  return mended === text ? first : parse(mended);
}

/**
 * mendQuotedScalars returns the text with the continuation lines of quoted scalars indented as the
 * `yaml` package needs (see {@link parseYamlLikeGo}); text it has nothing to mend comes back as is.
 * For callers of `YAML.parse`: retry with the mended text when the first parse fails.
 */
export function mendQuotedScalars(text: string, limits: MendLimits = FILE_MEND_LIMITS): string {
  // Each round re-reads the whole text to mend one cut scalar, so the work grows with size times
  // count: past the limits the text is left as it is and the parser's own error stands.
  if (text.length > limits.maxChars) return text;
  let src = text;
  for (let rounds = limits.maxScalars; rounds > 0; rounds--) {
    const mended = mendCutScalar(src);
    if (mended === undefined) break;
    src = mended;
  }
  return src;
}

/**
 * parseYamlValueLikeGo is `YAML.parse` (one document, errors thrown) with {@link parseYamlLikeGo}'s
 * leniency: text that fails is parsed again mended, and the first error stands when mending changes nothing.
 */
export function parseYamlValueLikeGo(text: string, options: GoYamlOptions = {}, limits: MendLimits = FILE_MEND_LIMITS): unknown {
  const opts = withGoScalars(options);
  try {
    return parse(text, opts);
  } catch (e) {
    const mended = mendQuotedScalars(text, limits);
    if (mended === text) throw e;
    return parse(mended, opts);
  }
}

/** MendLimits bound the mending (see {@link mendQuotedScalars}): the text's length and the scalars mended. */
export interface MendLimits {
  maxChars: number;
  maxScalars: number;
}
/** For files an operator or author hands to Skiff (manifests, templates, data files). */
export const FILE_MEND_LIMITS: MendLimits = { maxChars: 256 * 1024, maxScalars: 16 };
/** For strings a policy reads at request time (yaml.unmarshal): small, so a request cannot stall it. */
export const VALUE_MEND_LIMITS: MendLimits = { maxChars: 4096, maxScalars: 2 };

interface QuotedToken {
  type: string;
  offset: number;
  source: string;
}

/** mendCutScalar re-indents the first quoted scalar the `yaml` lexer cut short at an unindented line. */
function mendCutScalar(src: string): string | undefined {
  for (const tok of quotedScalars(src)) {
    const open = tok.offset;
    const close = closingQuote(src, open);
    if (close === undefined || close < open + tok.source.length) continue;
    const lineStart = src.lastIndexOf('\n', open - 1) + 1;
    const want = open - lineStart + 1;
    let out = src.slice(0, open);
    let i = open;
    let marker = false;
    for (;;) {
      const nl = src.indexOf('\n', i);
      if (nl < 0 || nl >= close) break;
      out += src.slice(i, nl + 1);
      i = nl + 1;
      let sp = 0;
      while (src[i + sp] === ' ') sp++;
      const next = src[i + sp];
      if (next === '\n' || next === '\r') continue;
      if (sp === 0 && /^(---|\.\.\.)(\s|$)/.test(src.slice(i, i + 4))) marker = true;
      if (sp < want) out += ' '.repeat(want - sp);
    }
    out += src.slice(i);
    if (!marker && out !== src) return out;
  }
  return undefined;
}

/** quotedScalars lists the quoted scalar tokens of the text's concrete syntax tree, in order. */
function quotedScalars(src: string): QuotedToken[] {
  const out: QuotedToken[] = [];
  const visit = (x: unknown): void => {
    if (Array.isArray(x)) {
      for (const y of x) visit(y);
      return;
    }
    if (!x || typeof x !== 'object') return;
    const t = x as Record<string, unknown>;
    if ((t.type === 'double-quoted-scalar' || t.type === 'single-quoted-scalar') && typeof t.offset === 'number' && typeof t.source === 'string') {
      out.push(t as unknown as QuotedToken);
    }
    for (const k of ['start', 'key', 'sep', 'value', 'items', 'end', 'props']) if (k in t) visit(t[k]);
  };
  for (const tok of new Parser().parse(src)) visit(tok);
  return out.sort((a, b) => a.offset - b.offset);
}

/** closingQuote finds the quote ending the scalar opened at `open` (`\"` escapes in double quotes, `''` in single). */
function closingQuote(src: string, open: number): number | undefined {
  const q = src[open];
  for (let i = open + 1; i < src.length; i++) {
    const c = src[i];
    if (q === '"' && c === '\\') i++;
    else if (c === q) {
      if (q === "'" && src[i + 1] === "'") i++;
      else return i;
    }
  }
  return undefined;
}

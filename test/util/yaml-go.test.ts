import { describe, expect, it } from 'vitest';

import { FILE_MEND_LIMITS, mendQuotedScalars, parseYamlLikeGo, parseYamlValueLikeGo, VALUE_MEND_LIMITS } from '../../src/util/yaml-go.js';

const values = (text: string) => parseYamlLikeGo(text).docs.map((d) => ({ errors: d.errors.map((e) => e.code), value: d.toJS() }));

describe('parseYamlLikeGo', () => {
  it('folds unindented continuation lines of double- and single-quoted scalars as go-yaml does', () => {
    expect(values('a:\n  b: "one\n  two"\n  c: 1\n')).toEqual([{ errors: [], value: { a: { b: 'one two', c: 1 } } }]);
    expect(values("k: 'it''s\nfine'\n")).toEqual([{ errors: [], value: { k: "it's fine" } }]);
    expect(values('- "one\ntwo"\n- x\n')).toEqual([{ errors: [], value: ['one two', 'x'] }]);
    // an empty line is a line break; escapes and tabs keep their meaning
    expect(values('a:\n  b: "x\n\n  y\\"\n\tz"\n')).toEqual([{ errors: [], value: { a: { b: 'x\ny" z' } } }]);
    expect(values('a:\r\n  b: "x\r\n  y"\r\n')).toEqual([{ errors: [], value: { a: { b: 'x y' } } }]);
  });

  it('mends every such scalar of every document and keeps line numbers', () => {
    const text = 'a: "1\nb"\n---\nc:\n  d: "2\n  e"\n  f: "3\n  g"\n';
    const r = parseYamlLikeGo(text);
    expect(r.docs.map((d) => d.toJS())).toEqual([{ a: '1 b' }, { c: { d: '2 e', f: '3 g' } }]);
    expect(r.lines.linePos(r.docs[1]!.contents!.range[0]).line).toBe(4);
  });

  it('leaves text it needs not touch as it is', () => {
    const ok = 'a:\n  b: "x\n    y"\n  c: |\n    "not\n  a scalar\n';
    expect(mendQuotedScalars(ok)).toBe(ok);
  });

  it('still rejects what go-yaml rejects: no closing quote, a document marker inside', () => {
    const open = parseYamlLikeGo('a: "never closed\nb: 1\n');
    expect(open.docs[0]!.errors.map((e) => e.code)).toContain('MISSING_CHAR');
    const marker = parseYamlLikeGo('a:\n  b: "x\n---\n  y"\n');
    expect(marker.docs[0]!.errors[0]!.code).toBe('MISSING_CHAR');
    expect(marker.docs[0]!.errors[0]!.linePos?.[0].line).toBe(2);
  });
});

describe('parseYamlValueLikeGo', () => {
  it('parses one document like YAML.parse, mending only when the first parse fails', () => {
    expect(parseYamlValueLikeGo('a:\n  b: "one\n  two"\n')).toEqual({ a: { b: 'one two' } });
    expect(() => parseYamlValueLikeGo('a: "never closed\n')).toThrow(/Missing closing "quote/);
  });

  it('mends within bounds, so crafted text cannot make the work grow with size times count', () => {
    const cut = (n: number) => Array.from({ length: n }, (_, i) => `k${i}: "a\nb"\n`).join('');
    // within the limits every cut scalar is mended
    expect(parseYamlValueLikeGo(cut(2), {}, VALUE_MEND_LIMITS)).toEqual({ k0: 'a b', k1: 'a b' });
    // past the count, the parser's own error stands
    expect(() => parseYamlValueLikeGo(cut(VALUE_MEND_LIMITS.maxScalars + 1), {}, VALUE_MEND_LIMITS)).toThrow();
    expect(() => parseYamlValueLikeGo(cut(FILE_MEND_LIMITS.maxScalars + 1))).toThrow();
    expect(parseYamlValueLikeGo(cut(FILE_MEND_LIMITS.maxScalars))).toMatchObject({ k0: 'a b' });
    // past the length, the text is not even looked at
    const long = cut(1) + `pad: "${'x'.repeat(VALUE_MEND_LIMITS.maxChars)}"\n`;
    expect(mendQuotedScalars(long, VALUE_MEND_LIMITS)).toBe(long);
    expect(mendQuotedScalars(long)).not.toBe(long);
  });
});

// go-yaml v2, under sigs.k8s.io/yaml's YAMLToJSON (kubectl, the API server, gator, OPA), resolves
// plain scalars by YAML 1.1: these are the words and numbers where that differs from YAML 1.2.
describe('plain scalars as go-yaml v2 reads them', () => {
  it('reads the YAML 1.1 boolean words as booleans, keys included, and leaves quoted ones and other casings strings', () => {
    const doc = 'hostNetwork: yes\nprivileged: On\nreadOnly: n\nlist: [y, Y, YES, off, OFF, No, TRUE, False]\nquoted: "yes"\nsingle: \'off\'\nmixed: yEs\nword: yes please\non: push\n';
    expect(parseYamlValueLikeGo(doc)).toEqual({
      hostNetwork: true,
      privileged: true,
      readOnly: false,
      list: [true, true, true, false, false, false, true, false],
      quoted: 'yes',
      single: 'off',
      mixed: 'yEs',
      word: 'yes please',
      true: 'push',
    });
    const { docs } = parseYamlLikeGo('spec:\n  hostPID: yes\n---\nspec:\n  hostPID: no\n');
    expect(docs.map((d) => d.toJS())).toEqual([{ spec: { hostPID: true } }, { spec: { hostPID: false } }]);
  });

  it('reads a leading zero as octal and drops underscores in integers, as strconv.ParseInt(s, 0, 64) does', () => {
    expect(parseYamlValueLikeGo('mode: 0644\nneg: -0755\nnine: 09\nbig: 1_000_000\nzero: 0\nhex: 0x1F\nplain: 644\nfloat: 0.5\nver: "0644"\n')).toEqual({
      mode: 420,
      neg: -493,
      nine: 9,
      big: 1000000,
      zero: 0,
      hex: 31,
      plain: 644,
      float: 0.5,
      ver: '0644',
    });
    expect(parseYamlValueLikeGo('mode: 0644\nhuge: 123456789012345678901\n', { intAsBigInt: true })).toEqual({ mode: 420n, huge: 123456789012345678901n });
  });
});

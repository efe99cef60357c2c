import { describe, expect, it } from 'vitest';

import type { FieldError } from '../../api/kinds/types.js';

import { compileRegex, compileRewrite, compileStringMatch, MAX_REGEX_LENGTH, replaceAll } from './values.js';

const matcher = (m: unknown, ignoreCase = false) => {
  const errors: FieldError[] = [];
  const t = compileStringMatch(m, 'f', errors, ignoreCase);
  return { t, errors };
};

describe('regex string matches (RE2 semantics through re2js)', () => {
  it('match the whole value', () => {
    const { t } = matcher({ regex: '/items/[0-9]+' });
    expect(t!('/items/42')).toBe(true);
    expect(t!('/items/42/x')).toBe(false);
    expect(t!('/x/items/42')).toBe(false);
    const alt = matcher({ regex: 'a|ab' }).t!;
    expect(alt('ab')).toBe(true);
    // `$` is the end of the text, not before a final newline.
    expect(matcher({ regex: 'b$' }).t!('b\n')).toBe(false);
  });

  it('honour ignoreUriCase and inline flags', () => {
    expect(matcher({ regex: '/API/[a-z]+' }, true).t!('/api/USERS')).toBe(true);
    expect(matcher({ regex: '(?i)/api' }).t!('/API')).toBe(true);
    expect(matcher({ regex: '/api' }).t!('/API')).toBe(false);
  });

  it('refuse what RE2 does not support, naming the field', () => {
    for (const regex of ['(a)\\1', '(?=a)b', '(?!a)b', '(?<=a)b', '(?<!a)b', '(', 'a**']) {
      const { t, errors } = matcher({ regex });
      expect(t, regex).toBeUndefined();
      expect(errors[0]!.field).toBe('f.regex');
      expect(errors[0]!.message).toMatch(/invalid regular expression \(RE2 syntax/);
    }
  });

  it('refuse patterns too large to match cheaply, before compiling them', () => {
    for (const p of ['a{1000}'.repeat(140), '.{101}', '(x{10}){11}', 'x'.repeat(MAX_REGEX_LENGTH + 1)]) {
      const t0 = performance.now();
      const r = compileRegex(p);
      expect(typeof r).toBe('string');
      expect(r as string).toMatch(/too large|longer than/);
      expect(performance.now() - t0).toBeLessThan(200);
    }
    expect(typeof compileRegex('[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}')).not.toBe('string');
  });

  it('match a catastrophic-backtracking pattern in linear time', () => {
    const { t } = matcher({ regex: '/redos/(a+)+$' });
    const t0 = performance.now();
    for (const n of [28, 30, 32, 1000]) expect(t!(`/redos/${'a'.repeat(n)}!`)).toBe(false);
    expect(t!(`/redos/${'a'.repeat(28)}`)).toBe(true);
    expect(performance.now() - t0).toBeLessThan(100);
  });
});

describe('uriRegexRewrite substitution (RE2 GlobalReplace)', () => {
  const rw = (pattern: string, sub: string) => {
    const re = compileRegex(pattern);
    if (typeof re === 'string') throw new Error(re);
    return compileRewrite(re, sub);
  };
  const apply = (pattern: string, sub: string, value: string) => {
    const c = rw(pattern, sub);
    if (typeof c === 'string') throw new Error(c);
    return replaceAll(c, value);
  };

  it('substitutes groups into every match', () => {
    expect(apply('/re/([a-z]+)/(\\d+)', '/\\2/\\1', '/re/abc/42')).toBe('/42/abc');
    expect(apply('a', 'b', '/aXa')).toBe('/bXb');
    expect(apply('^/v1', '', '/v1/x')).toBe('/x');
    expect(apply('x*', '-', 'abc')).toBe('-a-b-c-');
    expect(apply('z', 'y', '/abc')).toBe('/abc');
    expect(apply('(a)', '\\\\\\1$1', 'a')).toBe('\\a$1');
  });

  it('refuses a group the pattern lacks and a stray backslash', () => {
    expect(rw('(a)', '\\2')).toMatch(/group \\2/);
    expect(rw('a', '\\x')).toMatch(/backslash/);
  });
});

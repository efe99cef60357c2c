import { RE2JS } from 're2js';

import type { FieldError } from '../../api/kinds/types.js';

/** StringMatch is Istio's string matcher: exactly one of exact, prefix or regex (RE2-style full match). */
export interface StringMatch {
  exact?: string;
  prefix?: string;
  regex?: string;
}

/** StringMatcher is a compiled StringMatch. */
export type StringMatcher = (value: string) => boolean;

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** invalid builds a FieldError with the Kubernetes reason for a bad value. */
export function invalid(field: string, message: string): FieldError {
  return { field, message, reason: 'FieldValueInvalid' };
}

/**
 * MAX_REGEX_PROGRAM_SIZE bounds a compiled regular expression, as Envoy's default
 * `re2.max_program_size.error_level` does: matching costs at most the program size times the input
 * length, so a bigger pattern is refused at apply time.
 */
export const MAX_REGEX_PROGRAM_SIZE = 100;

/** MAX_REGEX_LENGTH bounds the text of a pattern. */
export const MAX_REGEX_LENGTH = 1024;

/**
 * estimatedSize is a cheap upper bound of a pattern's program size, computed on its text before
 * compiling: counted repetitions multiply what they repeat, so `a{1000}` repeated a hundred times
 * would otherwise take the compiler (on the API's thread) about a second to expand.
 */
function estimatedSize(p: string): number {
  const sums = [0];
  const lasts = [0];
  let i = 0;
  const atom = (cost: number) => {
    const top = sums.length - 1;
    sums[top]! += cost;
    lasts[top] = cost;
  };
  while (i < p.length) {
    const c = p[i]!;
    if (c === '\\') {
      // \Q...\E quotes literally; \p{..} and \x{..} are one atom.
      if (p[i + 1] === 'Q') {
        const end = p.indexOf('\\E', i + 2);
        const stop = end < 0 ? p.length : end;
        for (let k = i + 2; k < stop; k++) atom(1);
        i = end < 0 ? p.length : end + 2;
        continue;
      }
      const kind = p[i + 1];
      i += 2;
      if ((kind === 'p' || kind === 'P' || kind === 'x') && p[i] === '{') i = Math.max(i, p.indexOf('}', i) + 1);
      atom(1);
    } else if (c === '[') {
      let k = i + 1;
      if (p[k] === '^') k++;
      if (p[k] === ']') k++;
      while (k < p.length && p[k] !== ']') k += p[k] === '\\' ? 2 : p[k] === '[' && p[k + 1] === ':' ? Math.max(2, p.indexOf(':]', k) + 2 - k) : 1;
      i = k + 1;
      atom(1);
    } else if (c === '(') {
      sums.push(0);
      lasts.push(0);
      i++;
    } else if (c === ')') {
      const inner = sums.length > 1 ? sums.pop()! : 0;
      if (lasts.length > 1) lasts.pop();
      atom(inner + 1);
      i++;
    } else if (c === '{') {
      const m = /^\{(\d+)(?:(,)(\d*))?\}/.exec(p.slice(i, i + 24));
      const top = sums.length - 1;
      if (m) {
        const n = Math.max(Number(m[1]), m[3] ? Number(m[3]) : 0, m[2] && !m[3] ? Number(m[1]) + 1 : 0);
        const last = lasts[top]!;
        sums[top]! += last * Math.max(0, n - 1) + 1;
        lasts[top] = last * n;
        i += m[0].length;
      } else {
        atom(1);
        i++;
      }
    } else {
      atom(1);
      i++;
    }
  }
  while (sums.length > 1) {
    const inner = sums.pop()!;
    sums[sums.length - 1]! += inner;
  }
  return sums[0]!;
}

/**
 * compileRegex compiles a pattern with RE2 semantics (re2js: matching time linear in the input, no
 * backreferences or lookaround). Callers use `matches` (the whole value, as Istio's matchers do) or
 * `matcher` (search). Returns an error message instead of throwing so callers can report every
 * problem at once.
 */
export function compileRegex(pattern: string, ignoreCase = false): RE2JS | string {
  if (pattern.length > MAX_REGEX_LENGTH) return `regular expression is longer than ${MAX_REGEX_LENGTH} characters`;
  const tooBig = `regular expression is too large (RE2 program size over ${MAX_REGEX_PROGRAM_SIZE}, as Envoy's default limit): simplify it or use fewer counted repetitions`;
  if (estimatedSize(pattern) > 20 * MAX_REGEX_PROGRAM_SIZE) return tooBig;
  let re: RE2JS;
  try {
    re = RE2JS.compile(pattern, ignoreCase ? RE2JS.CASE_INSENSITIVE : 0);
  } catch (err) {
    const why = (err as Error).message.replace(/^error parsing regexp: /, '');
    return `invalid regular expression (RE2 syntax; backreferences and lookaround are not supported): ${why}`;
  }
  if (re.programSize() > MAX_REGEX_PROGRAM_SIZE) return tooBig;
  return re;
}

/** RegexRewrite is a compiled `uriRegexRewrite`: the pattern and its substitution in pieces (text, or a group number). */
export interface RegexRewrite {
  re: RE2JS;
  parts: Array<string | number>;
}

/**
 * compileRewrite reads an RE2/Envoy substitution: `\0`..`\9` insert a capture group, `\\` a
 * backslash; anything else is literal. Returns an error message for a group the pattern does not
 * have or a stray backslash.
 */
export function compileRewrite(re: RE2JS, substitution: string): RegexRewrite | string {
  const parts: Array<string | number> = [];
  let text = '';
  for (let i = 0; i < substitution.length; i++) {
    const c = substitution[i]!;
    if (c !== '\\') {
      text += c;
      continue;
    }
    const d = substitution[++i];
    if (d === '\\') text += '\\';
    else if (d !== undefined && d >= '0' && d <= '9') {
      const g = Number(d);
      if (g > re.groupCount()) return `refers to group \\${g} but the pattern has ${re.groupCount()} capture group(s)`;
      if (text) parts.push(text);
      text = '';
      parts.push(g);
    } else return 'a backslash must be followed by a group number (\\0-\\9) or another backslash';
  }
  if (text) parts.push(text);
  return { re, parts };
}

/** replaceAll substitutes every non-overlapping match of the rewrite's pattern in `value`, as RE2's GlobalReplace. */
export function replaceAll(rw: RegexRewrite, value: string): string {
  const m = rw.re.matcher(value);
  let out = '';
  let pos = 0;
  let copied = 0;
  let prevEnd = -1;
  while (pos <= value.length && m.find(pos)) {
    const start = m.start();
    const end = m.end();
    // An empty match right after the previous match is skipped, as RE2 does.
    if (start === end && start === prevEnd) {
      pos = start + 1;
      continue;
    }
    out += value.slice(copied, start);
    for (const part of rw.parts) out += typeof part === 'number' ? (m.group(part) ?? '') : part;
    copied = end;
    prevEnd = end;
    pos = end === start ? end + 1 : end;
  }
  return copied === 0 && out === '' ? value : out + value.slice(copied);
}

/** compileStringMatch turns a StringMatch into a predicate, or pushes a FieldError and returns undefined. */
export function compileStringMatch(m: unknown, field: string, errors: FieldError[], ignoreCase = false): StringMatcher | undefined {
  if (!isObj(m)) {
    errors.push(invalid(field, 'must be an object with one of exact, prefix or regex'));
    return undefined;
  }
  const keys = Object.keys(m).filter((k) => m[k] !== undefined);
  if (keys.length !== 1 || !['exact', 'prefix', 'regex'].includes(keys[0]!)) {
    errors.push(invalid(field, 'must set exactly one of exact, prefix or regex'));
    return undefined;
  }
  const key = keys[0]!;
  const raw = m[key];
  if (typeof raw !== 'string') {
    errors.push(invalid(`${field}.${key}`, 'must be a string'));
    return undefined;
  }
  if (key === 'regex') {
    const re = compileRegex(raw, ignoreCase);
    if (typeof re === 'string') {
      errors.push(invalid(`${field}.regex`, re));
      return undefined;
    }
    return (v) => re.matches(v);
  }
  const want = ignoreCase ? raw.toLowerCase() : raw;
  if (key === 'exact') return ignoreCase ? (v) => v.toLowerCase() === want : (v) => v === want;
  return ignoreCase ? (v) => v.toLowerCase().startsWith(want) : (v) => v.startsWith(want);
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, us: 0.001, µs: 0.001 };

/**
 * parseDuration reads a protobuf-style duration (`5s`, `0.25s`, `100ms`, `1m`) or a number of
 * milliseconds, returning milliseconds or undefined when it cannot.
 */
export function parseDuration(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) && v >= 0 ? v : undefined;
  if (typeof v !== 'string') return undefined;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|us|µs)$/.exec(v.trim());
  if (!m) return undefined;
  return Number(m[1]) * UNIT_MS[m[2]!]!;
}

/** durationField validates and converts a duration field, pushing a FieldError when it is malformed. */
export function durationField(v: unknown, field: string, errors: FieldError[]): number | undefined {
  if (v === undefined) return undefined;
  const ms = parseDuration(v);
  if (ms === undefined) errors.push(invalid(field, `must be a duration such as "250ms" or "5s", got ${JSON.stringify(v)}`));
  return ms;
}

/** percentageField reads Istio's `{ value: 0..100 }` percentage (absent means 100). */
export function percentageField(v: unknown, field: string, errors: FieldError[]): number {
  if (v === undefined) return 100;
  const value = isObj(v) ? v.value : undefined;
  if (typeof value !== 'number' || value < 0 || value > 100) {
    errors.push(invalid(`${field}.value`, 'must be a number from 0 to 100'));
    return 0;
  }
  return value;
}

export { isObj };

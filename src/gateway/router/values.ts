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
 * compileRegex compiles a pattern that must match the whole value, as Istio's RE2 matchers do.
 * Returns an error message instead of throwing so callers can report every problem at once.
 */
export function compileRegex(pattern: string, flags = ''): RegExp | string {
  try {
    return new RegExp(`^(?:${pattern})$`, flags);
  } catch (err) {
    return `invalid regular expression: ${(err as Error).message.replace(/^Invalid regular expression: /, '')}`;
  }
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
    const re = compileRegex(raw, ignoreCase ? 'i' : '');
    if (typeof re === 'string') {
      errors.push(invalid(`${field}.regex`, re));
      return undefined;
    }
    return (v) => re.test(v);
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

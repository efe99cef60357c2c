import { normNum } from '../value.js';

import { str } from './operands.js';
import { type Builtin,builtinErr } from './types.js';

const DEC: Record<string, bigint> = { '': 1n, k: 10n ** 3n, m: 10n ** 6n, g: 10n ** 9n, t: 10n ** 12n, p: 10n ** 15n, e: 10n ** 18n };
const BIN: Record<string, bigint> = { ki: 1n << 10n, mi: 1n << 20n, gi: 1n << 30n, ti: 1n << 40n, pi: 1n << 50n, ei: 1n << 60n };

/** splitAmount separates the number (digits, '.', exponent) from the unit suffix. */
function splitAmount(s: string): [string, string] {
  const m = /^[+-]?[0-9.]*(?:[eE][+-]?[0-9]+)?/.exec(s)!;
  return [m[0], s.slice(m[0].length)];
}

/** exact turns decimal text into numerator/denominator bigints (or null when not a number). */
function exact(num: string): [bigint, bigint] | null {
  const m = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(num);
  if (!m || (!m[2] && !m[3])) return null;
  const digits = (m[2] ?? '') + (m[3] ?? '');
  const e = Number(m[4] ?? 0) - (m[3]?.length ?? 0);
  // 10^e is computed exactly: an exponent in the millions would take the process with it
  if (!Number.isSafeInteger(e) || Math.abs(e) > 10000) return null;
  let n = BigInt(digits || '0');
  if (m[1] === '-') n = -n;
  let d = 1n;
  if (e >= 0) n *= 10n ** BigInt(e);
  else d = 10n ** BigInt(-e);
  return [n, d];
}

function finish(n: bigint, d: bigint, truncate: boolean): number | bigint {
  if (n % d === 0n) return normNum(n / d);
  if (truncate) return normNum(n / d);
  return Number(n) / Number(d);
}

function parse(name: string, raw: string, bytes: boolean): number | bigint {
  const s = raw.replace(/"/g, '');
  if (/\s/.test(s)) throw builtinErr(name, 'spaces not allowed in resource strings');
  const [num, unitRaw] = splitAmount(s);
  if (!num || num === '+' || num === '-') throw builtinErr(name, bytes ? 'no byte amount provided' : 'no amount provided');
  const ex = exact(num);
  if (!ex) throw builtinErr(name, bytes ? 'could not parse byte amount to a number' : 'could not parse amount to a number');
  let [n, d] = ex;
  let unit = unitRaw;
  if (!bytes && unit === 'm') {
    d *= 1000n;
    return finish(n, d, false);
  }
  unit = unit.toLowerCase();
  if (bytes && unit.endsWith('b')) unit = unit.slice(0, -1);
  const mult = DEC[unit] ?? BIN[unit];
  if (mult === undefined) throw builtinErr(name, `${bytes ? 'byte ' : ''}unit ${JSON.stringify(unitRaw)} not recognized`);
  n *= mult;
  return finish(n, d, bytes);
}

/** Units: decimal and binary SI suffixes for amounts and byte sizes. */
export const register: Record<string, Builtin> = {
  'units.parse': { arity: 1, fn: (a) => parse('units.parse', str('units.parse', a, 0), false) },
  'units.parse_bytes': { arity: 1, fn: (a) => parse('units.parse_bytes', str('units.parse_bytes', a, 0), true) },
};

import { isNumber, normNum, type Value } from '../value.js';

import { num, str } from './operands.js';
import { type Builtin,builtinErr, typeErr } from './types.js';

const MIN_NS = -(2n ** 63n);
const MAX_NS = 2n ** 63n - 1n;
const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

/** Go's named layouts, accepted by time.format and time.parse_ns. */
const NAMED: Record<string, string> = {
  ANSIC: 'Mon Jan _2 15:04:05 2006',
  UnixDate: 'Mon Jan _2 15:04:05 MST 2006',
  RubyDate: 'Mon Jan 02 15:04:05 -0700 2006',
  RFC822: '02 Jan 06 15:04 MST',
  RFC822Z: '02 Jan 06 15:04 -0700',
  RFC850: 'Monday, 02-Jan-06 15:04:05 MST',
  RFC1123: 'Mon, 02 Jan 2006 15:04:05 MST',
  RFC1123Z: 'Mon, 02 Jan 2006 15:04:05 -0700',
  RFC3339: '2006-01-02T15:04:05Z07:00',
  RFC3339Nano: '2006-01-02T15:04:05.999999999Z07:00',
  Kitchen: '3:04PM',
  Stamp: 'Jan _2 15:04:05',
  StampMilli: 'Jan _2 15:04:05.000',
  StampMicro: 'Jan _2 15:04:05.000000',
  StampNano: 'Jan _2 15:04:05.000000000',
  DateTime: '2006-01-02 15:04:05',
  DateOnly: '2006-01-02',
  TimeOnly: '15:04:05',
};

const TOKENS = ['January', 'Monday', '2006', 'Z07:00:00', '-07:00:00', 'Z07:00', '-07:00', 'Z0700', '-0700', 'Z07', '-07', 'Jan', 'Mon', 'MST', '002', '__2', '_2', '01', '02', '03', '04', '05', '06', '15', 'PM', 'pm', '1', '2', '3', '4', '5'];

function tokenize(layout: string): string[] {
  const out: string[] = [];
  let i = 0;
  let lit = '';
  while (i < layout.length) {
    if ((layout[i] === '.' || layout[i] === ',') && /^[.,](0+|9+)(?![0-9])/.test(layout.slice(i))) {
      const m = /^[.,](0+|9+)/.exec(layout.slice(i))!;
      if (lit) {
        out.push('L' + lit);
        lit = '';
      }
      out.push('F' + m[0]);
      i += m[0].length;
      continue;
    }
    const t = TOKENS.find((tk) => layout.startsWith(tk, i));
    if (t) {
      if (lit) {
        out.push('L' + lit);
        lit = '';
      }
      out.push('T' + t);
      i += t.length;
    } else lit += layout[i++];
  }
  if (lit) out.push('L' + lit);
  return out;
}

interface Civil {
  y: number;
  mo: number;
  d: number;
  h: number;
  mi: number;
  s: number;
  ns: number;
  wd: number;
  yd: number;
  offset: number;
  zone: string;
}

/** civil breaks epoch nanoseconds into wall-clock fields in an IANA zone. */
function civil(ns: bigint, tz: string): Civil {
  const secs = ns / 1000000000n - (ns % 1000000000n < 0n ? 1n : 0n);
  const frac = Number(ns - secs * 1000000000n);
  const ms = Number(secs) * 1000;
  let offset = 0;
  let zone = 'UTC';
  if (tz && tz !== 'UTC') {
    const f = new Intl.DateTimeFormat('en-US', { timeZone: tz, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric', era: 'short', timeZoneName: 'short' });
    const parts = Object.fromEntries(f.formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
    let year = Number(parts.year);
    if (parts.era === 'BC' || parts.era === 'B') year = 1 - year;
    const asUTC = Date.UTC(year, Number(parts.month) - 1, Number(parts.day), Number(parts.hour), Number(parts.minute), Number(parts.second));
    const d0 = new Date(0);
    d0.setUTCFullYear(year, Number(parts.month) - 1, Number(parts.day));
    offset = Math.round((asUTC - ms) / 1000);
    zone = parts.timeZoneName ?? tz;
    if (/^GMT[+-]/.test(zone)) zone = zone.replace('GMT', '').replace(/^([+-])(\d)$/, '$10$2');
  }
  const d = new Date(ms + offset * 1000);
  const start = Date.UTC(d.getUTCFullYear(), 0, 1);
  const dd = new Date(0);
  dd.setUTCFullYear(d.getUTCFullYear(), 0, 1);
  return {
    y: d.getUTCFullYear(),
    mo: d.getUTCMonth() + 1,
    d: d.getUTCDate(),
    h: d.getUTCHours(),
    mi: d.getUTCMinutes(),
    s: d.getUTCSeconds(),
    ns: frac,
    wd: d.getUTCDay(),
    yd: Math.floor((d.getTime() - dd.getTime()) / 86400000) + 1 + 0 * start,
    offset,
    zone,
  };
}

const pad = (n: number, w: number): string => String(Math.abs(n)).padStart(w, '0');

function fmtOffset(off: number, tok: string): string {
  if (tok.startsWith('Z') && off === 0) return 'Z';
  const sign = off < 0 ? '-' : '+';
  const a = Math.abs(off);
  const h = pad(Math.floor(a / 3600), 2);
  const m = pad(Math.floor((a % 3600) / 60), 2);
  const s = pad(a % 60, 2);
  const body = tok.replace(/^[Z-]/, '');
  if (body === '07:00:00') return `${sign}${h}:${m}:${s}`;
  if (body === '07:00') return `${sign}${h}:${m}`;
  if (body === '0700') return `${sign}${h}${m}`;
  return `${sign}${h}`;
}

/** formatGo renders wall-clock fields with a Go layout. */
export function formatGo(c: Civil, layout: string): string {
  let out = '';
  for (const tk of tokenize(layout)) {
    const t = tk.slice(1);
    if (tk[0] === 'L') {
      out += t;
      continue;
    }
    if (tk[0] === 'F') {
      const digits = t.length - 1;
      let f = pad(c.ns, 9).slice(0, digits);
      if (t[1] === '9') {
        f = f.replace(/0+$/, '');
        out += f ? t[0] + f : '';
      } else out += t[0] + f;
      continue;
    }
    switch (t) {
      case '2006': out += c.y < 0 ? '-' + pad(c.y, 4) : pad(c.y, 4); break;
      case '06': out += pad(c.y % 100, 2); break;
      case '01': out += pad(c.mo, 2); break;
      case '1': out += String(c.mo); break;
      case 'Jan': out += MONTHS[c.mo - 1]!.slice(0, 3); break;
      case 'January': out += MONTHS[c.mo - 1]; break;
      case '02': out += pad(c.d, 2); break;
      case '2': out += String(c.d); break;
      case '_2': out += String(c.d).padStart(2, ' '); break;
      case '002': out += pad(c.yd, 3); break;
      case '__2': out += String(c.yd).padStart(3, ' '); break;
      case '15': out += pad(c.h, 2); break;
      case '03': out += pad(c.h % 12 || 12, 2); break;
      case '3': out += String(c.h % 12 || 12); break;
      case '04': out += pad(c.mi, 2); break;
      case '4': out += String(c.mi); break;
      case '05': out += pad(c.s, 2); break;
      case '5': out += String(c.s); break;
      case 'PM': out += c.h >= 12 ? 'PM' : 'AM'; break;
      case 'pm': out += c.h >= 12 ? 'pm' : 'am'; break;
      case 'Mon': out += DAYS[c.wd]!.slice(0, 3); break;
      case 'Monday': out += DAYS[c.wd]; break;
      case 'MST': out += c.zone; break;
      default: out += fmtOffset(c.offset, t);
    }
  }
  return out;
}

/** parseGo parses text with a Go layout into epoch nanoseconds. */
export function parseGo(layout: string, text: string): bigint {
  let y = 1, mo = 1, d = 1, h = 0, mi = 0, s = 0, ns = 0, off: number | undefined, pm: boolean | undefined;
  let i = 0;
  const fail = (what: string): never => {
    throw new Error(`parsing time ${JSON.stringify(text)} as ${JSON.stringify(layout)}: cannot parse ${JSON.stringify(text.slice(i))} as ${JSON.stringify(what)}`);
  };
  const digits = (min: number, max: number, what: string): number => {
    const m = new RegExp(`^\\d{${min},${max}}`).exec(text.slice(i));
    if (!m) fail(what);
    i += m![0].length;
    return Number(m![0]);
  };
  for (const tk of tokenize(layout)) {
    const t = tk.slice(1);
    if (tk[0] === 'L') {
      if (!text.startsWith(t, i)) fail(t);
      i += t.length;
      continue;
    }
    if (tk[0] === 'F' || ((t === '05' || t === '5') && false)) {
      const m = /^[.,](\d+)/.exec(text.slice(i));
      if (m) {
        ns = Number(m[1]!.slice(0, 9).padEnd(9, '0'));
        i += m[0].length;
      } else if (t[1] === '0') fail(t);
      continue;
    }
    switch (t) {
      case '2006': {
        const neg = text[i] === '-';
        if (neg) i++;
        y = digits(4, 4, '2006') * (neg ? -1 : 1);
        break;
      }
      case '06': y = 2000 + digits(2, 2, '06'); if (y >= 2069) y -= 100; break;
      case '01': mo = digits(2, 2, '01'); break;
      case '1': mo = digits(1, 2, '1'); break;
      case 'Jan': case 'January': {
        const idx = MONTHS.findIndex((m) => text.slice(i).toLowerCase().startsWith(t === 'Jan' ? m.slice(0, 3).toLowerCase() : m.toLowerCase()));
        if (idx < 0) fail(t);
        mo = idx + 1;
        i += t === 'Jan' ? 3 : MONTHS[idx]!.length;
        break;
      }
      case '02': d = digits(2, 2, '02'); break;
      case '2': d = digits(1, 2, '2'); break;
      case '_2': if (text[i] === ' ') i++; d = digits(1, 2, '_2'); break;
      case '002': digits(3, 3, '002'); break;
      case '15': h = digits(1, 2, '15'); break;
      case '03': h = digits(2, 2, '03'); break;
      case '3': h = digits(1, 2, '3'); break;
      case '04': mi = digits(2, 2, '04'); break;
      case '4': mi = digits(1, 2, '4'); break;
      case '05': case '5': {
        s = digits(t === '05' ? 2 : 1, 2, t);
        const m = /^\.(\d+)/.exec(text.slice(i));
        if (m && !layout.includes('.0') && !layout.includes('.9')) {
          ns = Number(m[1]!.slice(0, 9).padEnd(9, '0'));
          i += m[0].length;
        }
        break;
      }
      case 'PM': case 'pm': {
        const v = text.slice(i, i + 2).toUpperCase();
        if (v !== 'AM' && v !== 'PM') fail(t);
        pm = v === 'PM';
        i += 2;
        break;
      }
      case 'Mon': case 'Monday': {
        const idx = DAYS.findIndex((m) => text.slice(i).toLowerCase().startsWith(t === 'Mon' ? m.slice(0, 3).toLowerCase() : m.toLowerCase()));
        if (idx < 0) fail(t);
        i += t === 'Mon' ? 3 : DAYS[idx]!.length;
        break;
      }
      case 'MST': {
        const m = /^[A-Z]{3,5}/.exec(text.slice(i));
        if (!m) fail('MST');
        i += m![0].length;
        if (m![0] === 'UTC' || m![0] === 'GMT') off = 0;
        break;
      }
      default: {
        if (t.startsWith('Z') && (text[i] === 'Z' || text[i] === 'z')) {
          off = 0;
          i++;
          break;
        }
        const m = /^([+-])(\d{2})(?::?(\d{2}))?(?::?(\d{2}))?/.exec(text.slice(i));
        if (!m) fail(t);
        off = (m![1] === '-' ? -1 : 1) * (Number(m![2]) * 3600 + Number(m![3] ?? 0) * 60 + Number(m![4] ?? 0));
        i += m![0].length;
      }
    }
  }
  if (i < text.length) throw new Error(`parsing time ${JSON.stringify(text)}: extra text: ${JSON.stringify(text.slice(i))}`);
  if (pm !== undefined) h = (h % 12) + (pm ? 12 : 0);
  if (mo < 1 || mo > 12) throw new Error(`parsing time ${JSON.stringify(text)}: month out of range`);
  if (d < 1 || d > 31 || h > 23 || mi > 59 || s > 59) throw new Error(`parsing time ${JSON.stringify(text)}: day out of range`);
  const base = new Date(0);
  base.setUTCFullYear(y, mo - 1, d);
  base.setUTCHours(h, mi, s, 0);
  const secs = BigInt(Math.round(base.getTime() / 1000)) - BigInt(off ?? 0);
  const out = secs * 1000000000n + BigInt(ns);
  if (out < MIN_NS || out > MAX_NS) throw new Error('time outside of valid range');
  return out;
}

function nsArg(name: string, v: Value): [bigint, string] {
  let t: Value = v;
  let tz = 'UTC';
  if (Array.isArray(v)) {
    t = v[0]!;
    if (typeof v[1] === 'string') tz = v[1] || 'UTC';
  }
  if (!isNumber(t)) throw typeErr(name, 1, 'number', t);
  if (typeof t === 'object') {
    t = Number(t);
    if (!Number.isFinite(t)) throw builtinErr(name, 'timestamp too big');
  }
  const n = typeof t === 'bigint' ? t : BigInt(Math.trunc(t));
  if (typeof t === 'number' && Math.abs(t) > 9.3e18) throw builtinErr(name, 'timestamp too big');
  if (n < MIN_NS || n > MAX_NS) throw builtinErr(name, 'timestamp too big');
  if (tz === 'Local') tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
  try {
    if (tz !== 'UTC') new Intl.DateTimeFormat('en-US', { timeZone: tz });
  } catch {
    throw builtinErr(name, `unknown time zone ${tz}`);
  }
  return [n, tz];
}

function durationNs(s: string): bigint {
  if (s === '0') return 0n;
  const m = /^([+-]?)((?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$/.exec(s);
  if (!m) throw new Error(`time: invalid duration ${JSON.stringify(s)}`);
  const unit: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, μs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  let total = 0n;
  for (const part of s.replace(/^[+-]/, '').matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g)) total += BigInt(Math.round(Number(part[1]) * unit[part[2]!]!));
  return m[1] === '-' ? -total : total;
}

/** addDate adds years, months and days to a timestamp the way Go's AddDate normalises dates. */
function addDate(ns: bigint, y: number, mo: number, d: number): bigint {
  const secs = ns / 1000000000n - (ns % 1000000000n < 0n ? 1n : 0n);
  const frac = ns - secs * 1000000000n;
  const dt = new Date(Number(secs) * 1000);
  const nd = new Date(0);
  nd.setUTCFullYear(dt.getUTCFullYear() + y, dt.getUTCMonth() + mo, dt.getUTCDate() + d);
  nd.setUTCHours(dt.getUTCHours(), dt.getUTCMinutes(), dt.getUTCSeconds(), 0);
  const out = BigInt(nd.getTime() / 1000) * 1000000000n + frac;
  if (out < MIN_NS || out > MAX_NS || !Number.isFinite(nd.getTime())) throw new Error('time outside of valid range');
  return out;
}

function diff(a: Civil, b: Civil): number[] {
  // order so that a is later
  const later = [a.y, a.mo, a.d, a.h, a.mi, a.s, a.ns];
  const earlier = [b.y, b.mo, b.d, b.h, b.mi, b.s, b.ns];
  let [y, mo, d, h, mi, s] = later.map((v, i) => v - earlier[i]!) as [number, number, number, number, number, number, number];
  let nsd = later[6]! - earlier[6]!;
  if (nsd < 0) {
    s--;
    nsd += 1e9;
  }
  if (s < 0) {
    s += 60;
    mi--;
  }
  if (mi < 0) {
    mi += 60;
    h--;
  }
  if (h < 0) {
    h += 24;
    d--;
  }
  if (d < 0) {
    const days = new Date(Date.UTC(b.y, b.mo, 0)).getUTCDate();
    d += days;
    mo--;
  }
  if (mo < 0) {
    mo += 12;
    y--;
  }
  return [y, mo, d, h, mi, s];
}

const call = <T>(name: string, f: () => T): T => {
  try {
    return f();
  } catch (e) {
    if (e instanceof Error && !(e as { code?: string }).code) throw builtinErr(name, e.message);
    throw e;
  }
};

/** Time: parsing and formatting with Go layouts, IANA zones, calendar arithmetic. */
export const register: Record<string, Builtin> = {
  'time.now_ns': { arity: 0, fn: (_a, ctx) => normNum(ctx.nowNs) },
  'time.parse_ns': { arity: 2, fn: (a) => call('time.parse_ns', () => normNum(parseGo(NAMED[str('time.parse_ns', a, 0)] ?? (a[0] as string), str('time.parse_ns', a, 1)))) },
  'time.parse_rfc3339_ns': { arity: 1, fn: (a) => call('time.parse_rfc3339_ns', () => normNum(parseGo(NAMED.RFC3339!, str('time.parse_rfc3339_ns', a, 0)))) },
  'time.parse_duration_ns': { arity: 1, fn: (a) => call('time.parse_duration_ns', () => normNum(durationNs(str('time.parse_duration_ns', a, 0)))) },
  'time.date': {
    arity: 1,
    fn: (a) => {
      const [n, tz] = nsArg('time.date', a[0]!);
      const c = civil(n, tz);
      return [c.y, c.mo, c.d];
    },
  },
  'time.clock': {
    arity: 1,
    fn: (a) => {
      const [n, tz] = nsArg('time.clock', a[0]!);
      const c = civil(n, tz);
      return [c.h, c.mi, c.s];
    },
  },
  'time.weekday': {
    arity: 1,
    fn: (a) => {
      const [n, tz] = nsArg('time.weekday', a[0]!);
      return DAYS[civil(n, tz).wd]!;
    },
  },
  'time.add_date': {
    arity: 4,
    fn: (a) => {
      const n = num('time.add_date', a, 0);
      return call('time.add_date', () => normNum(addDate(BigInt(n), Number(num('time.add_date', a, 1)), Number(num('time.add_date', a, 2)), Number(num('time.add_date', a, 3)))));
    },
  },
  'time.diff': {
    arity: 2,
    fn: (a) => {
      const [n1, tz1] = nsArg('time.diff', a[0]!);
      const [n2, tz2] = nsArg('time.diff', a[1]!);
      // both instants are read in the first one's zone; the later one comes first
      void tz2;
      const [later, earlier] = n1 >= n2 ? [n1, n2] : [n2, n1];
      return diff(civil(later, tz1), civil(earlier, tz1));
    },
  },
  'time.format': {
    arity: 1,
    fn: (a) => {
      const v = a[0]!;
      const [n, tz] = nsArg('time.format', v);
      let layout = NAMED.RFC3339Nano!;
      if (Array.isArray(v) && v.length > 2) {
        if (typeof v[2] !== 'string') throw typeErr('time.format', 1, 'string', v[2]!);
        layout = NAMED[v[2]] ?? v[2];
      }
      return formatGo(civil(n, tz), layout);
    },
  },
};

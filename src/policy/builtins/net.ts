import { isObject, objEntries, RSet, type Value } from '../value.js';

import { Meter } from './limits.js';
import { str } from './operands.js';
import { runSync } from './sync-worker.js';
import { type Builtin,builtinErr, BuiltinError } from './types.js';

interface Net {
  v6: boolean;
  addr: bigint;
  bits: number;
  prefix: number;
}

/** parseIP reads an IPv4 or IPv6 address (with embedded IPv4 allowed) into a bigint. */
export function parseIP(s: string): { v6: boolean; addr: bigint } | undefined {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(s)) {
    const p = s.split('.').map(Number);
    if (p.some((x) => x > 255)) return undefined;
    return { v6: false, addr: BigInt(((p[0]! << 24) >>> 0) + (p[1]! << 16) + (p[2]! << 8) + p[3]!) };
  }
  if (!s.includes(':') || !/^[0-9a-fA-F:.]+$/.test(s)) return undefined;
  let head = s;
  let tail4: bigint | undefined;
  const m = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (m) {
    const v4 = parseIP(m[2]!);
    if (!v4) return undefined;
    tail4 = v4.addr;
    head = m[1]!.endsWith('::') ? m[1]! : m[1]!.slice(0, -1);
  }
  const want = tail4 !== undefined ? 6 : 8;
  const dbl = head.split('::');
  if (dbl.length > 2) return undefined;
  const left = dbl[0] ? dbl[0].split(':') : [];
  const right = dbl.length === 2 && dbl[1] ? dbl[1].split(':') : [];
  if (dbl.length === 1 && left.length !== want) return undefined;
  const groups = dbl.length === 2 ? [...left, ...Array(want - left.length - right.length).fill('0'), ...right] : left;
  if (groups.length !== want || groups.some((g) => !/^[0-9a-fA-F]{1,4}$/.test(g))) return undefined;
  let addr = 0n;
  for (const g of groups) addr = (addr << 16n) | BigInt(parseInt(g, 16));
  if (tail4 !== undefined) addr = (addr << 32n) | tail4;
  return { v6: true, addr };
}

function parseCIDR(s: string): Net | undefined {
  const i = s.indexOf('/');
  if (i < 0) return undefined;
  const ip = parseIP(s.slice(0, i));
  const pre = s.slice(i + 1);
  if (!ip || !/^\d+$/.test(pre)) return undefined;
  const bits = ip.v6 ? 128 : 32;
  const prefix = Number(pre);
  if (prefix > bits) return undefined;
  const mask = ((1n << BigInt(bits)) - 1n) ^ ((1n << BigInt(bits - prefix)) - 1n);
  return { v6: ip.v6, addr: ip.addr & mask, bits, prefix };
}

/** cidrOrIP reads a CIDR, or a plain address as a single-host network. */
function cidrOrIP(s: string): Net | undefined {
  const c = parseCIDR(s);
  if (c) return c;
  const ip = parseIP(s);
  if (!ip) return undefined;
  const bits = ip.v6 ? 128 : 32;
  return { v6: ip.v6, addr: ip.addr, bits, prefix: bits };
}

const last = (n: Net): bigint => n.addr | ((1n << BigInt(n.bits - n.prefix)) - 1n);

function contains(a: Net, b: Net): boolean {
  return a.v6 === b.v6 && a.prefix <= b.prefix && b.addr >= a.addr && last(b) <= last(a);
}

export function formatIP(v6: boolean, addr: bigint): string {
  if (!v6) return [24n, 16n, 8n, 0n].map((s) => String((addr >> s) & 255n)).join('.');
  const g: number[] = [];
  for (let i = 7; i >= 0; i--) g.push(Number((addr >> BigInt(i * 16)) & 0xffffn));
  let bestS = -1;
  let bestL = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestL && j - i >= 2) {
      bestS = i;
      bestL = j - i;
    }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (bestS < 0) return hex.join(':');
  return hex.slice(0, bestS).join(':') + '::' + hex.slice(bestS + bestL).join(':');
}

function must(name: string, s: Value, pos: number): Net {
  if (typeof s !== 'string') throw new BuiltinError('eval_type_error', `${name}: operand ${pos} must be string but got ${typeof s}`);
  const n = cidrOrIP(s);
  if (!n) throw builtinErr(name, `invalid CIDR address: ${s}`);
  return n;
}

function matchItems(name: string, v: Value, pos: number): Array<[Value, string]> {
  const one = (key: Value, x: Value): [Value, string] => {
    if (typeof x === 'string') return [key, x];
    if (Array.isArray(x) && x.length && typeof x[0] === 'string') return [key, x[0]];
    throw builtinErr(name, `operand ${pos}: element must be string or non-empty array`);
  };
  if (typeof v === 'string') return [[v, v]];
  if (Array.isArray(v)) return v.map((x, i) => one(i, x));
  if (v instanceof RSet) return v.values().map((x) => one(x, x));
  if (isObject(v)) return objEntries(v).map(([k, x]) => one(k, x));
  throw builtinErr(name, `operand ${pos} must be one of {string, array, set, object}`);
}

const LOOKUP = `
const dns = require('node:dns');
dns.lookup(input.name, { all: true }, (err, addrs) => done(err ? { ok: false, error: err.code || err.message } : { ok: true, addrs: addrs.map((a) => a.address) }));
`;

/** Networks: CIDR containment, intersection, expansion and merging for IPv4 and IPv6. */
export const register: Record<string, Builtin> = {
  'net.cidr_contains': {
    arity: 2,
    fn: (a) => {
      const n = parseCIDR(str('net.cidr_contains', a, 0));
      if (!n) throw builtinErr('net.cidr_contains', `invalid CIDR address: ${a[0] as string}`);
      return contains(n, must('net.cidr_contains', a[1]!, 2));
    },
  },
  'net.cidr_intersects': {
    arity: 2,
    fn: (a) => {
      const x = parseCIDR(str('net.cidr_intersects', a, 0));
      const y = parseCIDR(str('net.cidr_intersects', a, 1));
      if (!x || !y) throw builtinErr('net.cidr_intersects', 'invalid CIDR');
      return x.v6 === y.v6 && x.addr <= last(y) && y.addr <= last(x);
    },
  },
  'net.lookup_ip_addr': {
    arity: 1,
    sideEffect: true,
    fn: (a) => {
      const name = str('net.lookup_ip_addr', a, 0);
      // literal addresses answer themselves; names go through the system resolver (hosts file first)
      if (parseIP(name)) return new RSet([name]);
      const r = runSync<{ ok: boolean; addrs?: string[]; error?: string }>(LOOKUP, { name }, 5000);
      if (!r) throw builtinErr('net.lookup_ip_addr', 'lookup timed out');
      if (!r.ok) throw builtinErr('net.lookup_ip_addr', `lookup ${name}: ${r.error}`);
      return new RSet(r.addrs ?? []);
    },
  },
  'net.cidr_is_valid': { arity: 1, fn: (a) => typeof a[0] === 'string' && !!parseCIDR(a[0]) },
  'net.cidr_expand': {
    arity: 1,
    fn: (a) => {
      const s = str('net.cidr_expand', a, 0);
      const n = parseCIDR(s);
      if (!n) throw builtinErr('net.cidr_expand', `invalid CIDR address: ${s}`);
      const count = 1n << BigInt(n.bits - n.prefix);
      if (count > 65536n) throw builtinErr('net.cidr_expand', 'CIDR too large to expand');
      const out: string[] = [];
      for (let i = 0n; i < count; i++) out.push(formatIP(n.v6, n.addr + i));
      return out;
    },
  },
  'net.cidr_contains_matches': {
    arity: 2,
    fn: (a, ctx) => {
      const cidrs = matchItems('net.cidr_contains_matches', a[0]!, 1);
      const addrs = matchItems('net.cidr_contains_matches', a[1]!, 2);
      const out = new RSet();
      const m = new Meter('net.cidr_contains_matches', ctx);
      for (const [ck, cs] of cidrs) {
        const c = cidrOrIP(cs);
        if (!c) throw builtinErr('net.cidr_contains_matches', `invalid CIDR address: ${cs}`);
        for (const [ak, as] of addrs) {
          m.step();
          const x = cidrOrIP(as);
          if (x && contains(c, x)) {
            m.grow();
            out.add([ck, ak]);
          }
        }
      }
      return out;
    },
  },
  'net.cidr_merge': {
    arity: 1,
    fn: (a, ctx) => {
      const v = a[0]!;
      const xs = Array.isArray(v) ? v : v instanceof RSet ? v.values() : null;
      if (!xs) throw new BuiltinError('eval_type_error', `net.cidr_merge: operand 1 must be one of {array, set}`);
      const nets: Net[] = [];
      const m = new Meter('net.cidr_merge', ctx);
      for (const x of xs) {
        if (typeof x !== 'string') throw new BuiltinError('eval_type_error', `net.cidr_merge: operand 1 must be array of strings`);
        let n = parseCIDR(x);
        if (!n) {
          const ip = parseIP(x);
          if (ip?.v6) throw builtinErr('net.cidr_merge', 'IPv6 invalid: needs prefix length');
          // a bare IPv4 address is taken with its classful default mask, as Go's net.IP.DefaultMask does
          if (ip) {
            const first = Number(ip.addr >> 24n);
            const prefix = first < 128 ? 8 : first < 192 ? 16 : 24;
            n = parseCIDR(`${x}/${prefix}`);
          }
        }
        if (!n) throw builtinErr('net.cidr_merge', `invalid CIDR address: ${x}`);
        nets.push(n);
      }
      const out: string[] = [];
      for (const v6 of [false, true]) {
        let list = nets.filter((n) => n.v6 === v6).sort((p, q) => (p.addr < q.addr ? -1 : p.addr > q.addr ? 1 : p.prefix - q.prefix));
        // drop contained networks, then repeatedly join adjacent siblings
        let changed = true;
        while (changed) {
          changed = false;
          const kept: Net[] = [];
          for (const n of list) {
            m.step();
            const prev = kept[kept.length - 1];
            if (prev && contains(prev, n)) {
              changed = true;
              continue;
            }
            if (prev && prev.prefix === n.prefix && prev.prefix > 0) {
              const size = 1n << BigInt(n.bits - n.prefix);
              if ((prev.addr & ((size << 1n) - 1n)) === 0n && prev.addr + size === n.addr) {
                kept[kept.length - 1] = { ...prev, prefix: prev.prefix - 1 };
                changed = true;
                continue;
              }
            }
            kept.push(n);
          }
          list = kept;
        }
        for (const n of list) out.push(`${formatIP(n.v6, n.addr)}/${n.prefix}`);
      }
      return out;
    },
  },
};

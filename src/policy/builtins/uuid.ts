import { randomBytes } from 'node:crypto';

import { normNum, type PlainObject } from '../value.js';

import { str } from './operands.js';
import type { Builtin } from './types.js';

/** parseUUID decodes the fields OPA reports for a UUID string (any of its accepted spellings). */
function parseUUID(s: string): PlainObject | undefined {
  let t = s;
  if (/^urn:uuid:/i.test(t)) t = t.slice(9);
  else if (/^\{.*\}$/.test(t)) t = t.slice(1, -1);
  let hex: string;
  if (/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/.test(t)) hex = t.replace(/-/g, '');
  else if (/^[0-9a-fA-F]{32}$/.test(t)) hex = t;
  else return undefined;
  const b = Buffer.from(hex, 'hex');
  const version = b[6]! >> 4;
  const v = b[8]!;
  const variant = (v & 0x80) === 0 ? 'Reserved, NCS backward compatibility' : (v & 0xc0) === 0x80 ? 'RFC4122' : (v & 0xe0) === 0xc0 ? 'Reserved, Microsoft Corporation backward compatibility' : 'Reserved, future definition';
  const out: PlainObject = Object.create(null) as PlainObject;
  out.version = version;
  out.variant = variant;
  if (version === 1 || version === 2) {
    const timeLow = BigInt(b.readUInt32BE(0));
    const timeMid = BigInt(b.readUInt16BE(4));
    const timeHi = BigInt(b.readUInt16BE(6) & 0x0fff);
    const ts = (timeHi << 48n) | (timeMid << 32n) | timeLow;
    // 100ns intervals since 1582-10-15 → ns since the Unix epoch
    const ns = (ts - 122192928000000000n) * 100n;
    out.time = normNum(ns);
    out.clocksequence = version === 2 ? (b[8]! & 0x3f) << 8 : ((b[8]! & 0x3f) << 8) | b[9]!;
    const node = [...b.subarray(10, 16)].map((x) => x.toString(16).padStart(2, '0'));
    out.nodeid = node.join('-');
    out.macvariables = `${b[10]! & 0x02 ? 'local' : 'global'}:${b[10]! & 0x01 ? 'multicast' : 'unicast'}`;
    if (version === 2) {
      out.id = b.readUInt32BE(0);
      out.domain = ['Person', 'Group', 'Org'][b[9]!] ?? `Domain${b[9]}`;
    }
  }
  return out;
}

/** UUIDs: rfc4122 generation (stable per key within a query) and parsing. */
export const register: Record<string, Builtin> = {
  'uuid.rfc4122': {
    arity: 1,
    sideEffect: true,
    fn: (a, ctx) => {
      const key = 'uuid:' + str('uuid.rfc4122', a, 0);
      const hit = ctx.memo.get(key);
      if (hit !== undefined) return hit;
      const b = randomBytes(16);
      b[6] = (b[6]! & 0x0f) | 0x40;
      b[8] = (b[8]! & 0x3f) | 0x80;
      const h = b.toString('hex');
      const u = `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
      ctx.memo.set(key, u);
      return u;
    },
  },
  'uuid.parse': { arity: 1, fn: (a) => (typeof a[0] === 'string' ? parseUUID(a[0]) : undefined) },
};

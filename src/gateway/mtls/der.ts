/**
 * A minimal DER encoder: just the ASN.1 types an X.509 v3 certificate needs. Hand-written because
 * Node's crypto can sign and parse certificates but not build one, and this is all it takes.
 */

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** tlv encodes one element with the given tag byte. */
export function tlv(tag: number, content: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), length(content.length), content]);
}

export const seq = (...items: Buffer[]): Buffer => tlv(0x30, Buffer.concat(items));
export const set = (...items: Buffer[]): Buffer => tlv(0x31, Buffer.concat(items));
export const octets = (b: Buffer): Buffer => tlv(0x04, b);
export const utf8 = (s: string): Buffer => tlv(0x0c, Buffer.from(s, 'utf8'));
export const bool = (v: boolean): Buffer => tlv(0x01, Buffer.from([v ? 0xff : 0]));
/** explicit wraps content in a constructed context-specific tag [n]. */
export const explicit = (n: number, content: Buffer): Buffer => tlv(0xa0 | n, content);
/** implicit makes a primitive context-specific tag [n] (e.g. a URI in GeneralName). */
export const implicit = (n: number, content: Buffer): Buffer => tlv(0x80 | n, content);

/** bitString wraps bytes with zero unused bits. */
export function bitString(b: Buffer, unusedBits = 0): Buffer {
  return tlv(0x03, Buffer.concat([Buffer.from([unusedBits]), b]));
}

/** integer encodes a non-negative big-endian integer (adding a 0 byte when the top bit is set). */
export function integer(v: Buffer | number): Buffer {
  let hex = typeof v === 'number' ? v.toString(16) : '';
  if (hex.length % 2) hex = `0${hex}`;
  let b = typeof v === 'number' ? Buffer.from(hex, 'hex') : v;
  while (b.length > 1 && b[0] === 0 && b[1]! < 0x80) b = b.subarray(1);
  if (b[0]! >= 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return tlv(0x02, b);
}

/** oid encodes a dotted object identifier. */
export function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const out = [parts[0]! * 40 + parts[1]!];
  for (const p of parts.slice(2)) {
    const stack = [p & 0x7f];
    for (let v = Math.floor(p / 128); v > 0; v = Math.floor(v / 128)) stack.unshift((v & 0x7f) | 0x80);
    out.push(...stack);
  }
  return tlv(0x06, Buffer.from(out));
}

/** time encodes a date as UTCTime before 2050 and GeneralizedTime after, as RFC 5280 requires. */
export function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  const year = d.getUTCFullYear();
  return year < 2050 ? tlv(0x17, Buffer.from(`${iso.slice(2)}Z`)) : tlv(0x18, Buffer.from(`${iso}Z`));
}

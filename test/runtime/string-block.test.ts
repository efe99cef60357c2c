import { describe, expect, it } from 'vitest';

import { type StringBlock,StringBlockEncoder } from '../../src/runtime/wasi/process.js';

/** strings reads a block back the way a guest would: each string from its start to its NUL. */
function strings(b: StringBlock): string[] {
  const dec = new TextDecoder();
  return [...b.starts].map((s) => dec.decode(b.bytes.subarray(s, b.bytes.indexOf(0, s))));
}

describe('StringBlockEncoder', () => {
  it('encodes an environment as KEY=VALUE strings, each NUL-terminated, in insertion order', () => {
    const b = new StringBlockEncoder().env({ B: '2', A: '', PATH_INFO: '/x' });
    expect(strings(b)).toEqual(['B=2', 'A=', 'PATH_INFO=/x']);
    expect(b.bytes.length).toBe(4 + 3 + 13);
    expect(b.bytes[b.bytes.length - 1]).toBe(0);
  });

  it('encodes text beyond ASCII as UTF-8 with byte offsets', () => {
    const enc = new StringBlockEncoder();
    expect(strings(enc.env({ NAME: 'zoë', CITY: '東京', LAST: 'ok' }))).toEqual(['NAME=zoë', 'CITY=東京', 'LAST=ok']);
    expect(strings(enc.list(['ünïcode', 'plain']))).toEqual(['ünïcode', 'plain']);
    // And back to the ASCII path afterwards.
    expect(strings(enc.list(['a', 'b']))).toEqual(['a', 'b']);
  });

  it('grows for large environments and many variables, and reuses its buffers for the next run', () => {
    const enc = new StringBlockEncoder();
    const big: Record<string, string> = {};
    for (let i = 0; i < 300; i++) big[`VAR_${i}`] = 'v'.repeat(i * 7);
    const b = enc.env(big);
    expect(b.starts.length).toBe(300);
    expect(strings(b)[299]).toBe(`VAR_299=${'v'.repeat(299 * 7)}`);
    const small = enc.env({ ONE: '1' });
    expect(strings(small)).toEqual(['ONE=1']);
    expect(small.bytes.length).toBe(6);
  });

  it('encodes an empty list or environment as an empty block', () => {
    const enc = new StringBlockEncoder();
    expect(enc.list([]).bytes.length).toBe(0);
    expect(enc.env({}).starts.length).toBe(0);
  });
});

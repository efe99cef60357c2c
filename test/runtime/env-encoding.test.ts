import { describe, expect, it } from 'vitest';

import { WasiHost } from '../../src/runtime/wasi/host.js';

// Args and environment are encoded into one NUL-separated buffer per run; the guest must see each
// string whole, UTF-8 encoded, in order.
describe('args and environment encoding', () => {
  const env = { A: '1', EMPTY: '', UNICODE: 'héllo ✓ \u{1f600}', 'X-Y': 'a=b' };
  const joined = Object.entries(env).map(([k, v]) => `${k}=${v}\0`).join('');
  const view = (b: { bytes: Uint8Array; starts: Uint32Array }) => ({ text: Buffer.from(b.bytes).toString('utf8'), starts: [...b.starts] });

  it('a record and KEY=VALUE strings encode the same, each entry NUL-terminated', () => {
    const fromRecord = view(new WasiHost({ args: [], env }).state.env);
    const fromList = view(new WasiHost({ args: [], env: Object.entries(env).map(([k, v]) => `${k}=${v}`) }).state.env);
    expect(fromList).toEqual(fromRecord);
    expect(fromRecord.text).toBe(joined);
    const bytes = Buffer.from(joined);
    expect(fromRecord.starts).toEqual([0, ...[...bytes.entries()].filter(([, b]) => b === 0).map(([i]) => i + 1).slice(0, -1)]);
  });

  it('encodes args, including empty ones', () => {
    const h = new WasiHost({ args: ['prog', '', 'ü'], env: {} });
    expect(view(h.state.args)).toEqual({ text: 'prog\0\0ü\0', starts: [0, 5, 6] });
    expect(h.state.env.starts).toHaveLength(0);
  });
});

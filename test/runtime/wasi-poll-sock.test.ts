import { describe, expect, it } from 'vitest';

import { MemFs } from '../../src/runtime/fs/mem-fs.js';
import { CLOCK, E, EVENT, EVENTTYPE, OFLAGS, SUBSCRIPTION } from '../../src/runtime/wasi/constants.js';
import type { SocketLike } from '../../src/runtime/wasi/fd-table.js';

import { Guest } from './helpers/guest.js';

/** A connected in-memory socket: `inbox` is what the peer sent, `sent` what the guest sent. */
function pipeSocket(inbox: string): SocketLike & { sent: string[]; shut: [boolean, boolean] } {
  let data = new TextEncoder().encode(inbox);
  const s = {
    sent: [] as string[],
    shut: [false, false] as [boolean, boolean],
    recv(buf: Uint8Array, peek: boolean) {
      if (data.length === 0) return s.shut[0] ? 0 : -1;
      const n = Math.min(buf.length, data.length);
      buf.set(data.subarray(0, n));
      if (!peek) data = data.subarray(n);
      return n;
    },
    send(buf: Uint8Array) {
      s.sent.push(new TextDecoder().decode(buf));
      return buf.length;
    },
    shutdown(rd: boolean, wr: boolean) {
      s.shut = [s.shut[0] || rd, s.shut[1] || wr];
    },
    readable: () => data.length > 0,
    close() {},
  };
  return s;
}

function listener(conns: SocketLike[]): SocketLike {
  return { accept: () => conns.shift() ?? null, shutdown() {}, readable: () => conns.length > 0, close() {} };
}

const sub = (g: Guest, base: number, userdata: bigint, tag: number, a: { clock?: number; timeout?: bigint; flags?: number; fd?: number }) => {
  const dv = g.dv;
  dv.setBigUint64(base + SUBSCRIPTION.USERDATA, userdata, true);
  dv.setUint8(base + SUBSCRIPTION.TAG, tag);
  if (tag === EVENTTYPE.CLOCK) {
    dv.setUint32(base + SUBSCRIPTION.CLOCK_ID, a.clock ?? CLOCK.MONOTONIC, true);
    dv.setBigUint64(base + SUBSCRIPTION.CLOCK_TIMEOUT, a.timeout ?? 0n, true);
    dv.setUint16(base + SUBSCRIPTION.CLOCK_FLAGS, a.flags ?? 0, true);
  } else {
    dv.setUint32(base + SUBSCRIPTION.FD, a.fd ?? 0, true);
  }
};

describe('poll_oneoff', () => {
  it('sleeps on a relative clock subscription', async () => {
    const g = await Guest.create();
    const subs = g.alloc(48), evs = g.alloc(64), n = g.alloc(4);
    sub(g, subs, 7n, EVENTTYPE.CLOCK, { timeout: 20_000_000n });
    const t0 = performance.now();
    expect(g.call('poll_oneoff', subs, evs, 1, n)).toBe(E.SUCCESS);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(19);
    expect(g.u32(n)).toBe(1);
    expect(g.u64(evs + EVENT.USERDATA)).toBe(7n);
    expect(g.u8at(evs + EVENT.TYPE)).toBe(EVENTTYPE.CLOCK);
  });

  it('advances a frozen clock instead of sleeping, and honours absolute deadlines', async () => {
    const g = await Guest.create({ clock: 'frozen' });
    const subs = g.alloc(48), evs = g.alloc(64), n = g.alloc(4), now = g.alloc(8);
    sub(g, subs, 1n, EVENTTYPE.CLOCK, { timeout: 5_000_000_000n, flags: 1 });
    const t0 = performance.now();
    expect(g.call('poll_oneoff', subs, evs, 1, n)).toBe(E.SUCCESS);
    expect(performance.now() - t0).toBeLessThan(1000);
    g.call('clock_time_get', CLOCK.MONOTONIC, 0n, now);
    expect(g.u64(now)).toBe(5_000_000_000n);
  });

  it('reports fd readiness at once: files, stdin, bad descriptors', async () => {
    const fs = new MemFs();
    const g = await Guest.create({ mounts: [{ guest: '/', backend: fs, readOnly: false }], stdin: { read: () => 0, available: () => 3 } });
    const [, fd] = g.open(3, 'f', { oflags: OFLAGS.CREAT });
    g.write(fd, 'hello');
    g.call('fd_seek', fd, 1n, 0, g.alloc(8));
    const subs = g.alloc(48 * 4), evs = g.alloc(32 * 4), n = g.alloc(4);
    sub(g, subs, 1n, EVENTTYPE.FD_READ, { fd });
    sub(g, subs + 48, 2n, EVENTTYPE.FD_READ, { fd: 0 });
    sub(g, subs + 96, 3n, EVENTTYPE.FD_WRITE, { fd: 99 });
    sub(g, subs + 144, 4n, EVENTTYPE.CLOCK, { timeout: 60_000_000_000n });
    expect(g.call('poll_oneoff', subs, evs, 4, n)).toBe(E.SUCCESS);
    expect(g.u32(n)).toBe(3);
    const events = [0, 1, 2].map((i) => ({ ud: g.u64(evs + i * 32), err: g.u16(evs + i * 32 + EVENT.ERROR), nbytes: g.u64(evs + i * 32 + EVENT.NBYTES) }));
    expect(events).toEqual([
      { ud: 1n, err: 0, nbytes: 4n },
      { ud: 2n, err: 0, nbytes: 3n },
      { ud: 3n, err: E.BADF, nbytes: 0n },
    ]);
  });

  it('rejects zero subscriptions, unknown tags and bad pointers', async () => {
    const g = await Guest.create();
    const subs = g.alloc(48), evs = g.alloc(32), n = g.alloc(4);
    expect(g.call('poll_oneoff', subs, evs, 0, n)).toBe(E.INVAL);
    sub(g, subs, 1n, 9, {});
    expect(g.call('poll_oneoff', subs, evs, 1, n)).toBe(E.INVAL);
    expect(g.call('poll_oneoff', 0xfffffff0, evs, 1, n)).toBe(E.FAULT);
    sub(g, subs, 1n, EVENTTYPE.CLOCK, { clock: 99 });
    expect(g.call('poll_oneoff', subs, evs, 1, n)).toBe(E.SUCCESS);
    expect(g.u16(evs + EVENT.ERROR)).toBe(E.INVAL);
  });
});

describe('sock_*', () => {
  it('sock_accept takes pending connections from a granted listener', async () => {
    const conn = pipeSocket('ping');
    const g = await Guest.create({ sockets: [listener([conn])] });
    const out = g.alloc(4);
    expect(g.call('sock_accept', 3, 0, out)).toBe(E.SUCCESS);
    const cfd = g.u32(out);
    expect(g.read(cfd, 10)).toEqual([E.SUCCESS, 'ping']);
    expect(g.call('sock_accept', 3, 0, out)).toBe(E.AGAIN);
    expect(g.call('sock_accept', 3, 0x100, out)).toBe(E.INVAL);
    expect(g.call('sock_accept', 1, 0, out)).toBe(E.NOTSOCK);
    expect(g.call('sock_accept', 30, 0, out)).toBe(E.BADF);
    expect(g.call('sock_accept', cfd, 0, out)).toBe(E.BADF);
  });

  it('sock_recv reads, peeks and reports EAGAIN', async () => {
    const s = pipeSocket('hello');
    const g = await Guest.create({ sockets: [s] });
    const [iov, n, ptrs] = g.iovs([3]);
    const len = g.alloc(4), fl = g.alloc(4);
    expect(g.call('sock_recv', 3, iov, n, 1, len, fl)).toBe(E.SUCCESS);
    expect(g.text(ptrs[0]!, g.u32(len))).toBe('hel');
    expect(g.call('sock_recv', 3, iov, n, 0, len, fl)).toBe(E.SUCCESS);
    expect(g.text(ptrs[0]!, g.u32(len))).toBe('hel');
    expect(g.call('sock_recv', 3, iov, n, 0, len, fl)).toBe(E.SUCCESS);
    expect(g.text(ptrs[0]!, g.u32(len))).toBe('lo');
    expect(g.call('sock_recv', 3, iov, n, 0, len, fl)).toBe(E.AGAIN);
    expect(g.call('sock_recv', 3, iov, n, 8, len, fl)).toBe(E.INVAL);
    expect(g.call('sock_recv', 1, iov, n, 0, len, fl)).toBe(E.NOTSOCK);
  });

  it('sock_send sends the iovecs', async () => {
    const s = pipeSocket('');
    const g = await Guest.create({ sockets: [s] });
    const [iov, n] = g.iovs(['a', 'bc']);
    const out = g.alloc(4);
    expect(g.call('sock_send', 3, iov, n, 0, out)).toBe(E.SUCCESS);
    expect(g.u32(out)).toBe(3);
    expect(s.sent.join('')).toBe('abc');
    expect(g.call('sock_send', 3, iov, n, 1, out)).toBe(E.INVAL);
    expect(g.call('sock_send', 2, iov, n, 0, out)).toBe(E.NOTSOCK);
  });

  it('sock_shutdown shuts one or both directions', async () => {
    const s = pipeSocket('');
    const g = await Guest.create({ sockets: [s, listener([])] });
    expect(g.call('sock_shutdown', 3, 2)).toBe(E.SUCCESS);
    expect(s.shut).toEqual([false, true]);
    expect(g.call('sock_shutdown', 3, 0)).toBe(E.INVAL);
    expect(g.call('sock_shutdown', 3, 4)).toBe(E.INVAL);
    expect(g.call('sock_shutdown', 4, 3)).toBe(E.NOTCONN);
    expect(g.call('sock_shutdown', 0, 3)).toBe(E.NOTSOCK);
  });
});

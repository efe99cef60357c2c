import { FsError } from '../fs/types.js';

import { E, EVENT, EVENTRW_HANGUP, EVENTTYPE, R, SUBCLOCK_ABSTIME, SUBSCRIPTION } from './constants.js';
import type { SyscallHost as WasiHost, Syscalls } from './syscalls.js';

/** Most subscriptions one poll_oneoff may pass. */
const MAX_SUBSCRIPTIONS = 4096;

interface Ready {
  userdata: bigint;
  error: number;
  type: number;
  nbytes: bigint;
  flags: number;
}

/**
 * pollCalls implements `poll_oneoff`: clock subscriptions (relative or absolute, any clock) and fd
 * read/write readiness. Regular files are always ready; stdio and sockets ask their stream. The wait
 * blocks the sandbox's own thread only, and a frozen clock advances instead of sleeping.
 */
export const pollCalls: Syscalls = {
  poll_oneoff: (h: WasiHost, inPtr: number, outPtr: number, nsubs: number, neventsOut: number) => {
    nsubs >>>= 0;
    // Every subscription costs host memory: bound them like the kernel bounds poll's nfds.
    if (nsubs === 0 || nsubs > MAX_SUBSCRIPTIONS) return E.INVAL;
    const m = h.memory;
    m.check(inPtr >>> 0, nsubs * SUBSCRIPTION.SIZE);
    m.check(outPtr >>> 0, nsubs * EVENT.SIZE);
    m.check(neventsOut >>> 0, 4);
    const clock = h.state.clock;
    const clocks: Array<{ userdata: bigint; id: number; deadline: bigint }> = [];
    const fdSubs: Array<{ userdata: bigint; fd: number; type: number }> = [];
    const immediate: Ready[] = [];
    for (let i = 0; i < nsubs; i++) {
      const base = (inPtr >>> 0) + i * SUBSCRIPTION.SIZE;
      const dv = m.dv;
      const userdata = dv.getBigUint64(base + SUBSCRIPTION.USERDATA, true);
      const tag = dv.getUint8(base + SUBSCRIPTION.TAG);
      if (tag === EVENTTYPE.CLOCK) {
        const id = dv.getUint32(base + SUBSCRIPTION.CLOCK_ID, true);
        const timeout = dv.getBigUint64(base + SUBSCRIPTION.CLOCK_TIMEOUT, true);
        const flags = dv.getUint16(base + SUBSCRIPTION.CLOCK_FLAGS, true);
        let now: bigint;
        try {
          now = clock.now(id);
        } catch (err) {
          if (!(err instanceof FsError)) throw err;
          immediate.push({ userdata, error: err.errno, type: tag, nbytes: 0n, flags: 0 });
          continue;
        }
        const deadline = flags & SUBCLOCK_ABSTIME ? timeout : now + timeout;
        clocks.push({ userdata, id, deadline: deadline - now });
      } else if (tag === EVENTTYPE.FD_READ || tag === EVENTTYPE.FD_WRITE) {
        fdSubs.push({ userdata, fd: dv.getUint32(base + SUBSCRIPTION.FD, true), type: tag });
      } else {
        return E.INVAL;
      }
    }
    const checkFds = (): Ready[] => {
      const out: Ready[] = [];
      for (const s of fdSubs) {
        let d;
        try {
          d = h.state.fds.get(s.fd);
        } catch {
          out.push({ userdata: s.userdata, error: E.BADF, type: s.type, nbytes: 0n, flags: 0 });
          continue;
        }
        if ((d.rightsBase & R.POLL_FD_READWRITE) === 0n) {
          out.push({ userdata: s.userdata, error: E.BADF, type: s.type, nbytes: 0n, flags: 0 });
          continue;
        }
        const read = s.type === EVENTTYPE.FD_READ;
        if (d.kind === 'file') {
          const size = d.file.stat().size;
          out.push({ userdata: s.userdata, error: 0, type: s.type, nbytes: read ? (size > d.position ? size - d.position : 0n) : 0n, flags: 0 });
        } else if (d.kind === 'dir') {
          out.push({ userdata: s.userdata, error: E.ISDIR, type: s.type, nbytes: 0n, flags: 0 });
        } else if (d.kind === 'stream') {
          if (read) {
            const n = d.stream.available ? d.stream.available() : 0;
            out.push({ userdata: s.userdata, error: 0, type: s.type, nbytes: BigInt(n), flags: n === 0 ? EVENTRW_HANGUP : 0 });
          } else {
            out.push({ userdata: s.userdata, error: 0, type: s.type, nbytes: 0n, flags: 0 });
          }
        } else if (!read || d.socket.readable()) {
          out.push({ userdata: s.userdata, error: 0, type: s.type, nbytes: 0n, flags: 0 });
        }
      }
      return out;
    };
    let events = [...immediate, ...checkFds()];
    if (events.length === 0) {
      // Relative waits: `deadline` now holds each clock's remaining time at entry.
      const start = clock.now(1);
      const earliest = clocks.length ? clocks.reduce((a, c) => (c.deadline < a ? c.deadline : a), clocks[0]!.deadline) : null;
      for (;;) {
        const elapsed = clock.now(1) - start;
        if (earliest !== null && elapsed >= earliest) {
          events = clocks.filter((c) => c.deadline <= elapsed).map((c) => ({ userdata: c.userdata, error: 0, type: EVENTTYPE.CLOCK, nbytes: 0n, flags: 0 }));
          break;
        }
        if (fdSubs.length) {
          events = checkFds();
          if (events.length) break;
        }
        const step = earliest === null ? 1_000_000n : earliest - elapsed;
        clock.sleep(fdSubs.length && step > 1_000_000n ? 1_000_000n : step);
      }
    }
    const dv = m.dv;
    events.forEach((ev, i) => {
      const base = (outPtr >>> 0) + i * EVENT.SIZE;
      for (let k = 0; k < EVENT.SIZE; k++) dv.setUint8(base + k, 0);
      dv.setBigUint64(base + EVENT.USERDATA, ev.userdata, true);
      dv.setUint16(base + EVENT.ERROR, ev.error, true);
      dv.setUint8(base + EVENT.TYPE, ev.type);
      dv.setBigUint64(base + EVENT.NBYTES, ev.nbytes, true);
      dv.setUint16(base + EVENT.FLAGS, ev.flags, true);
    });
    m.u32(neventsOut, events.length);
    return E.SUCCESS;
  },
};

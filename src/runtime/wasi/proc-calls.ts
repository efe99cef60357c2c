import { E, SIGNAL_MAX } from './constants.js';
import { ProcExit, type StringBlock } from './process.js';
import type { SyscallHost as WasiHost, Syscalls } from './syscalls.js';

/** Signals whose default action is to be ignored (chld, cont, urg, winch); the rest terminate. */
const IGNORED_SIGNALS = new Set([16, 17, 22, 27]);

function stringList(h: WasiHost, list: StringBlock, ptrs: number, buf: number): number {
  const m = h.memory;
  const base = buf >>> 0;
  m.bytes(base, list.bytes.length).set(list.bytes);
  const starts = list.starts;
  for (let i = 0; i < starts.length; i++) m.u32(ptrs + i * 4, base + starts[i]!);
  return E.SUCCESS;
}

function sizes(h: WasiHost, list: StringBlock, countPtr: number, sizePtr: number): number {
  h.memory.u32(countPtr, list.starts.length);
  h.memory.u32(sizePtr, list.bytes.length);
  return E.SUCCESS;
}

/** processCalls: args, environ, clocks, random, sched_yield, proc_exit, proc_raise. */
export const processCalls: Syscalls = {
  args_get: (h: WasiHost, argv: number, buf: number) => stringList(h, h.state.args, argv, buf),
  args_sizes_get: (h: WasiHost, c: number, s: number) => sizes(h, h.state.args, c, s),
  environ_get: (h: WasiHost, envp: number, buf: number) => stringList(h, h.state.env, envp, buf),
  environ_sizes_get: (h: WasiHost, c: number, s: number) => sizes(h, h.state.env, c, s),
  clock_res_get: (h: WasiHost, id: number, out: number) => {
    h.memory.u64(out, h.state.clock.resolution(id));
    return E.SUCCESS;
  },
  clock_time_get: (h: WasiHost, id: number, _precision: bigint, out: number) => {
    h.memory.u64(out, h.state.clock.now(id));
    return E.SUCCESS;
  },
  random_get: (h: WasiHost, buf: number, len: number) => {
    h.state.random.fill(h.memory.bytes(buf, len));
    return E.SUCCESS;
  },
  sched_yield: (_h: WasiHost) => E.SUCCESS,
  proc_exit: (_h: WasiHost, code: number) => {
    throw new ProcExit(code >>> 0);
  },
  proc_raise: (_h: WasiHost, sig: number) => {
    if (sig < 0 || sig > SIGNAL_MAX) return E.INVAL;
    if (sig === 0 || IGNORED_SIGNALS.has(sig)) return E.SUCCESS;
    // Like a shell reports a process killed by a signal.
    throw new ProcExit(128 + sig);
  },
};

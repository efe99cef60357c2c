import { FsError } from '../fs/types.js';

import { E } from './constants.js';

/**
 * The classes a syscall may end with other than its errno, kept apart as wasmtime's preview 1 host
 * keeps them apart: a guest fault (a bad pointer: EFAULT to the guest), a deliberate unwind of the
 * guest (exit, a budget spent, a sleep a thread may not take), and a host error (a bug here, never
 * the guest's errno). This module is a leaf so memory.ts, process.ts, host.ts and the sandbox can all
 * share the classes without importing each other.
 */

/**
 * GuestMemoryFault is a guest pointer or length that lies outside its linear memory: the one
 * condition a syscall answers with EFAULT.
 */
export class GuestMemoryFault extends FsError {
  constructor(ptr: number, len: number, size: number) {
    super(E.FAULT, `guest range at ${ptr} of ${len} bytes lies outside its ${size}-byte memory`);
  }
}

/**
 * GuestUnwind is the base of everything the host throws on purpose through the guest to end its run
 * (exit, a budget spent, output over the limit). The syscall wrapper lets these through untouched.
 * Not an Error: they are thrown per request (proc_exit ends most runs) and need no stack trace.
 */
export abstract class GuestUnwind {}

/**
 * WouldBlock unwinds a guest that would block, or hold for long, a thread that serves others (a run
 * on the caller's own thread, see inline.ts): it asked to sleep. The caller runs it again where that
 * is allowed.
 */
export class WouldBlock extends GuestUnwind {}

/**
 * BudgetSpent unwinds a guest that moved more bytes of its memory through the host than a run on a
 * thread that serves others may: like {@link WouldBlock}, the run moves to a worker.
 */
export class BudgetSpent extends WouldBlock {}

/**
 * HostError is anything a syscall threw that is neither an errno, a guest fault nor a deliberate
 * unwind: a bug in the host. It ends the run with the syscall named instead of handing the guest an
 * errno that would hide the bug.
 */
export class HostError extends Error {
  constructor(readonly syscall: string, cause: unknown) {
    super(`host error in ${syscall}: ${cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause)}`, { cause });
    this.name = 'HostError';
  }
}

/**
 * isStackOverflow tells V8's "Maximum call stack size exceeded" apart from other RangeErrors. Inside a
 * syscall it means the guest's own recursion left the host no stack: the guest's failure (a trap, as
 * when its Wasm code overflows), not a host bug.
 */
export function isStackOverflow(err: unknown): boolean {
  return err instanceof RangeError && err.message === 'Maximum call stack size exceeded';
}

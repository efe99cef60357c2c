import type { FdTable } from './fd-table.js';
import type { GuestMemory } from './memory.js';
import type { Clock, RandomSource, StringBlock } from './process.js';

/** HostState is the per-run state; resetting it lets a warm instance serve the next request. */
export interface HostState {
  args: StringBlock;
  env: StringBlock;
  clock: Clock;
  random: RandomSource;
  fds: FdTable;
  writeBudget: number;
  /** Security notes (refused escapes) collected for the caller's log. */
  notes: string[];
}

/**
 * SyscallHost is the host as the syscall families see it. It lives in this leaf, not in host.ts, so
 * that the families need not import host.ts, which imports them: `WasiHost` implements it.
 */
export interface SyscallHost {
  readonly memory: GuestMemory;
  readonly state: HostState;
}

/** Syscalls is one family's table: each function takes the host first, then the guest's arguments. */
// Each syscall has its own guest signature (i32 as number, i64 as bigint): only `any` admits them all.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Syscalls = Record<string, (h: SyscallHost, ...a: any[]) => number>;

/** GuestImport is one function of the import object handed to WebAssembly (same typing reason). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type GuestImport = (...a: any[]) => unknown;

import { addNote, FsError } from '../fs/types.js';
import type { WasmImports } from '../wasm-api.js';

import {
  E, FILETYPE, R,
RIGHTS_ALL, RIGHTS_DIR, RIGHTS_FILE, RIGHTS_MUTATING, RIGHTS_SOCKET, RIGHTS_STREAM,   WASI_FUNCTIONS, WASI_MODULE,
} from './constants.js';
import { GuestUnwind, HostError, isStackOverflow } from './faults.js';
import { fdCalls } from './fd.js';
import { type Descriptor, FdTable, type Mount, type SocketLike, type Stream } from './fd-table.js';
import { GuestMemory } from './memory.js';
import { pathCalls } from './path.js';
import { pollCalls } from './poll.js';
import { processCalls } from './proc-calls.js';
import { Clock, ProcExit, RandomSource, StringBlockEncoder } from './process.js';
import { sockCalls } from './sock.js';
import type { GuestImport, HostState, SyscallHost, Syscalls } from './syscalls.js';

/** HostOptions is everything one sandbox run may use: nothing is ambient, all of it is granted here. */
export interface HostOptions {
  args: string[];
  /** Environment as `KEY=VALUE` strings or a record. */
  env: Record<string, string> | string[];
  stdin?: Stream;
  stdout?: Stream;
  stderr?: Stream;
  /** Preopened trees, given descriptors 3, 4, ... in order. */
  mounts?: Mount[];
  /** Sockets granted to the guest, numbered after the preopens. */
  sockets?: SocketLike[];
  clock?: 'real' | 'frozen';
  random?: 'real' | { seed: number };
  /** Quota: open descriptors (EMFILE beyond). Default 1024. */
  maxOpenFds?: number;
  /** Quota: bytes the guest may write to files (EDQUOT beyond). Default unlimited. */
  maxWriteBytes?: number;
  /** Receives one line per syscall (name, raw arguments, errno), like strace. */
  trace?: (line: string) => void;
  /** False on a thread that must never block: a real sleep then unwinds the guest with WouldBlock (faults.ts). */
  mayBlock?: boolean;
  /** Bytes of guest memory the host may read or write this run before it unwinds the guest with BudgetSpent (default unbounded). */
  byteBudget?: number;
  /**
   * Encoders shared by hosts whose runs never overlap (one SandboxHost's, on one thread), so idle
   * hosts hold no encoding buffers: a host's args and environment are then only valid during its
   * own runs, which is when the guest reads them. By default a host has its own.
   */
  encoders?: HostEncoders;
}

/** HostEncoders turn args and environment into the blocks the guest reads (see StringBlockEncoder). */
export interface HostEncoders {
  args: StringBlockEncoder;
  env: StringBlockEncoder;
}

export function hostEncoders(): HostEncoders {
  return { args: new StringBlockEncoder(), env: new StringBlockEncoder() };
}

const emptyStream: Stream = { read: () => 0, write: (b) => b.length, available: () => 0 };
// Computed once: bigint arithmetic allocates, and the descriptors are built for every run.
const STDIN_RIGHTS = RIGHTS_STREAM & ~R.FD_WRITE;
const STDOUT_RIGHTS = RIGHTS_STREAM & ~R.FD_READ;

function stdio(s: Stream | undefined, rights: bigint): Descriptor {
  return {
    kind: 'stream', stream: s ?? emptyStream, filetype: s?.isTerminal ? FILETYPE.CHARACTER_DEVICE : FILETYPE.UNKNOWN,
    rightsBase: rights, rightsInheriting: 0n, fdflags: 0,
  };
}

/**
 * WasiHost is one sandbox's WASI preview 1 implementation. It owns all state of the sandbox (no
 * module-level state), builds the `wasi_snapshot_preview1` import object once, and can be reset with
 * new options between runs of a reused instance.
 */
export class WasiHost implements SyscallHost {
  readonly memory = new GuestMemory();
  state!: HostState;
  trace?: (line: string) => void;
  private importObject: Record<string, GuestImport> | null = null;
  private ownEncoders?: HostEncoders;

  constructor(opts: HostOptions) {
    this.reset(opts);
  }

  /** reset replaces every per-run capability and closes whatever the previous run left open. */
  reset(opts: HostOptions): void {
    if (this.state) this.closeAll();
    this.trace = opts.trace;
    this.memory.byteBudget = opts.byteBudget ?? Number.POSITIVE_INFINITY;
    const fds = new FdTable(opts.maxOpenFds ?? 1024);
    fds.set(0, stdio(opts.stdin, STDIN_RIGHTS));
    fds.set(1, stdio(opts.stdout, STDOUT_RIGHTS));
    fds.set(2, stdio(opts.stderr, STDOUT_RIGHTS));
    let next = 3;
    for (const m of opts.mounts ?? []) {
      const allowed = m.readOnly ? RIGHTS_ALL & ~RIGHTS_MUTATING : RIGHTS_ALL;
      fds.set(next++, {
        kind: 'dir', mount: m, stack: [m.backend.root], preopen: m.guest, filetype: FILETYPE.DIRECTORY,
        rightsBase: RIGHTS_DIR & allowed, rightsInheriting: (RIGHTS_DIR | RIGHTS_FILE) & allowed, fdflags: 0,
      });
    }
    for (const s of opts.sockets ?? []) {
      fds.set(next++, {
        kind: 'socket', socket: s, filetype: FILETYPE.SOCKET_STREAM, rightsBase: RIGHTS_SOCKET,
        rightsInheriting: RIGHTS_SOCKET, fdflags: 0,
      });
    }
    const enc = opts.encoders ?? (this.ownEncoders ??= hostEncoders());
    this.state = {
      args: enc.args.list(opts.args),
      env: Array.isArray(opts.env) ? enc.env.list(opts.env) : enc.env.env(opts.env),
      clock: new Clock(opts.clock ?? 'real', opts.mayBlock ?? true),
      random: new RandomSource(opts.random ?? 'real'),
      fds,
      writeBudget: opts.maxWriteBytes ?? Number.POSITIVE_INFINITY,
      notes: [],
    };
  }

  /** closeAll releases every descriptor (host files stay open otherwise). */
  closeAll(): void {
    for (const d of this.state.fds.all()) {
      try {
        if (d.kind === 'file') d.file.close();
        else if (d.kind === 'socket') d.socket.close();
      } catch { /* closing is best effort at teardown */ }
    }
  }

  /** imports returns a `{ wasi_snapshot_preview1: {...} }` object bound to this host. */
  imports(): WasmImports {
    this.importObject ??= importObject(() => this);
    return { [WASI_MODULE]: this.importObject };
  }
}

/** Every implemented syscall; the tables are immutable and shared by all hosts. */
const SYSCALLS: Syscalls = { ...processCalls, ...fdCalls, ...pathCalls, ...pollCalls, ...sockCalls };

/**
 * importObject builds the preview 1 import functions for whichever host `current()` returns. Errno
 * exceptions (a GuestMemoryFault among them) become return values; deliberate unwinds (exit, budgets,
 * limits) and a stack overflow pass through to end the run; anything else is a host bug and unwinds
 * the guest as a HostError naming the syscall, never as an errno the guest would take for its own fault.
 */
function importObject(current: () => WasiHost): Record<string, GuestImport> {
  const obj: Record<string, GuestImport> = {};
  for (const name of Object.keys(WASI_FUNCTIONS)) {
    const impl = SYSCALLS[name];
    obj[name] = impl
      ? (...a: Parameters<GuestImport>) => {
          const h = current();
          let r: number;
          try {
            r = impl(h, ...a);
          } catch (err) {
            if (err instanceof FsError) {
              r = err.errno;
              if (err.note) addNote(h.state.notes, err.note);
            }
            else {
              const out = err instanceof GuestUnwind || isStackOverflow(err) ? err : new HostError(name, err);
              h.trace?.(`${name}(${a.join(', ')}) -> unwinds (${out instanceof ProcExit ? `exit ${out.code}` : out instanceof Error ? out.message : (out as object).constructor.name})`);
              throw out;
            }
          }
          h.trace?.(`${name}(${a.join(', ')}) = ${ERRNO_NAMES[r] ?? r}`);
          return r;
        }
      : () => E.NOSYS;
  }
  return obj;
}

/** Errno names for the syscall trace (`ENOENT` rather than 44). */
const ERRNO_NAMES: Record<number, string> = Object.fromEntries(Object.entries(E).map(([k, v]) => [v, k === 'SUCCESS' ? 'ok' : `E${k}`]));

/**
 * HostSwitch is one import object shared by every instance on a thread, dispatching to the host of
 * the sandbox that is running. A thread runs one guest at a time and guests never re-enter the host,
 * so this is exact — and an idle instance then costs no per-instance import functions at all.
 */
export class HostSwitch {
  current: WasiHost | null = null;
  private readonly object: Record<string, GuestImport>;
  constructor() {
    this.object = importObject(() => {
      if (!this.current) throw new Error('no sandbox is running on this thread');
      return this.current;
    });
  }

  imports(): WasmImports {
    return { [WASI_MODULE]: this.object };
  }
}

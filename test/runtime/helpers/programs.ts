import { commandWat } from './wat.js';

/** WAT programs used by the runtime and CLI tests. */
export const programs = {
  /** Spins forever without calling the host. */
  loop: commandWat({ imports: [], start: '(loop $l (br $l))' }),
  /** Recurses without end: the call stack runs out. */
  recurse: commandWat({ imports: [], extra: '(func $r (call $r))', start: '(call $r)' }),
  /** Sleeps 60 s in poll_oneoff (a relative monotonic clock subscription). */
  sleep: commandWat({
    imports: ['poll_oneoff'],
    start: '(i32.store8 (i32.const 8) (i32.const 0)) (i32.store (i32.const 16) (i32.const 1)) (i64.store (i32.const 24) (i64.const 60000000000)) (drop (call $poll_oneoff (i32.const 0) (i32.const 100) (i32.const 1) (i32.const 200)))',
  }),
  /** Traps with `unreachable`. */
  trap: commandWat({ imports: [], start: 'unreachable' }),
  /** Tries to grow memory by 4 GiB - 64 KiB; exits 1 when refused, 0 when granted. */
  grow4g: commandWat({ imports: ['proc_exit'], start: '(call $proc_exit (i32.eq (memory.grow (i32.const 65535)) (i32.const -1)))' }),
  /** Grows one page at a time until refused, then exits with the number of pages it holds. */
  growAll: commandWat({
    imports: ['proc_exit'],
    start: '(block $done (loop $l (br_if $done (i32.eq (memory.grow (i32.const 1)) (i32.const -1))) (br $l))) (call $proc_exit (memory.size))',
  }),
  /** Writes 64 KiB to stdout forever. */
  flood: commandWat({
    imports: ['fd_write'],
    start: '(i32.store (i32.const 0) (i32.const 64)) (i32.store (i32.const 4) (i32.const 65000)) (loop $l (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))) (br $l))',
  }),
  /** Copies stdin to stdout until end of input (like cat). */
  cat: commandWat({
    imports: ['fd_read', 'fd_write'],
    start: `(i32.store (i32.const 0) (i32.const 64)) (i32.store (i32.const 4) (i32.const 4096))
      (block $eof (loop $l
        (drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
        (br_if $eof (i32.eqz (i32.load (i32.const 8))))
        (i32.store (i32.const 16) (i32.const 64)) (i32.store (i32.const 20) (i32.load (i32.const 8)))
        (drop (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24)))
        (br $l)))`,
  }),
  /** Writes the raw argv buffer to stdout, then the raw environ buffer to stderr. */
  argsEnv: commandWat({
    imports: ['args_sizes_get', 'args_get', 'environ_sizes_get', 'environ_get', 'fd_write'],
    memory: '2',
    start: `(drop (call $args_sizes_get (i32.const 0) (i32.const 4)))
      (drop (call $args_get (i32.const 1024) (i32.const 4096)))
      (i32.store (i32.const 16) (i32.const 4096)) (i32.store (i32.const 20) (i32.load (i32.const 4)))
      (drop (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24)))
      (drop (call $environ_sizes_get (i32.const 0) (i32.const 4)))
      (drop (call $environ_get (i32.const 1024) (i32.const 65536)))
      (i32.store (i32.const 16) (i32.const 65536)) (i32.store (i32.const 20) (i32.load (i32.const 4)))
      (drop (call $fd_write (i32.const 2) (i32.const 16) (i32.const 1) (i32.const 24)))`,
  }),
  /** Declares 100 pages (6.25 MiB) of initial memory. */
  bigMin: commandWat({ imports: [], memory: '100', start: 'nop' }),
  /** Imports a function from a host module Skiff does not provide. */
  foreign: `(module (import "env" "emscripten_notify" (func $f)) (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32))) (import "wasi_snapshot_preview1" "no_such_call" (func $g)) (memory (export "memory") 1) (func (export "_start")))`,
  /** A reactor: exports no _start. */
  reactor: '(module (memory (export "memory") 1) (func (export "_initialize")))',
  /** Counts in a global and memory: a second run on a reused instance must see fresh state. */
  counter: commandWat({
    imports: ['proc_exit'],
    extra: '(global $g (mut i32) (i32.const 5))',
    start: '(global.set $g (i32.add (global.get $g) (i32.const 1))) (i32.store (i32.const 100) (i32.add (i32.load (i32.const 100)) (i32.const 10))) (call $proc_exit (i32.add (global.get $g) (i32.load (i32.const 100))))',
  }),
};

/** A core module whose memory is 64-bit (memory64), built by hand because wabt's parser needs a flag. */
export const memory64Module = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x05, 0x03, 0x01, 0x04, 0x01]);
/** The header of a WebAssembly component (component model layer 1). */
export const componentHeader = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00]);
/** A module declaring a GC struct type (wasm-gc), which V8 in Node 20 does not enable. */
export const gcModule = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x05, 0x01, 0x5f, 0x01, 0x7f, 0x00]);

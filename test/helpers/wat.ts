import wabtInit from 'wabt';

let wabt: Awaited<ReturnType<typeof wabtInit>> | undefined;

/** wat assembles WebAssembly text into a binary module (tests build their fixtures this way), with optional wabt feature flags. */
export async function wat(text: string, features?: Record<string, boolean>): Promise<Uint8Array> {
  wabt ??= await wabtInit();
  const mod = wabt.parseWat('fixture.wat', text, features);
  try {
    mod.resolveNames();
    mod.validate();
    return new Uint8Array(mod.toBinary({ log: false }).buffer);
  } finally {
    mod.destroy();
  }
}

/** wagiModule builds a WASI command that writes `stdout` to fd 1 and `stderr` to fd 2, then runs `tail` (WAT instructions). */
export function wagiWat(stdout: string, opts: { stderr?: string; tail?: string } = {}): string {
  const enc = (s: string) => Array.from(new TextEncoder().encode(s)).map((b) => `\\${b.toString(16).padStart(2, '0')}`).join('');
  const outLen = new TextEncoder().encode(stdout).length;
  const errLen = new TextEncoder().encode(opts.stderr ?? '').length;
  return `(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 1024) "${enc(stdout)}")
  (data (i32.const 32768) "${enc(opts.stderr ?? '')}")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 1024))
    (i32.store (i32.const 4) (i32.const ${outLen}))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))
    (i32.store (i32.const 0) (i32.const 32768))
    (i32.store (i32.const 4) (i32.const ${errLen}))
    (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 16)))
    ${opts.tail ?? ''}))`;
}

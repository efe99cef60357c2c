import wabtInit from 'wabt';

import { WASI_FUNCTIONS, WASI_MODULE } from '../../../src/runtime/wasi/constants.js';

type Wabt = Awaited<ReturnType<typeof wabtInit>>;
let wabtPromise: Promise<Wabt> | undefined;

/** wat2wasm assembles WebAssembly text with the `wabt` package (every post-MVP feature enabled). */
export async function wat2wasm(text: string): Promise<Uint8Array> {
  wabtPromise ??= wabtInit();
  const wabt = await wabtPromise;
  const mod = wabt.parseWat('test.wat', text, { multi_value: true, bulk_memory: true, mutable_globals: true, sign_extension: true, sat_float_to_int: true, reference_types: true });
  try {
    mod.resolveNames();
    mod.validate();
    return new Uint8Array(mod.toBinary({}).buffer);
  } finally {
    mod.destroy();
  }
}

const TYPES: Record<string, string> = { i: 'i32', I: 'i64' };

/** wasiImport renders the import line for one preview 1 function, named $<name>. */
export function wasiImport(name: string): string {
  const sig = WASI_FUNCTIONS[name]!;
  const params = [...sig].map((c) => TYPES[c]).join(' ');
  const result = name === 'proc_exit' ? '' : ' (result i32)';
  return `(import "${WASI_MODULE}" "${name}" (func $${name}${params ? ` (param ${params})` : ''}${result}))`;
}

/**
 * commandWat wraps a `_start` body into a WASI command importing the named functions, with one page
 * of memory (exported) and optional data segments and extra functions.
 */
export function commandWat(opts: { imports: string[]; start: string; data?: string; extra?: string; memory?: string }): string {
  return `(module
  ${opts.imports.map(wasiImport).join('\n  ')}
  (memory (export "memory") ${opts.memory ?? '1'})
  ${opts.data ?? ''}
  ${opts.extra ?? ''}
  (func (export "_start") ${opts.start})
)`;
}

/** helloWat prints `text` to stdout (fd 1) and exits with `code` through proc_exit. */
export function helloWat(text: string, code = 0): string {
  const bytes = new TextEncoder().encode(text);
  const escaped = [...bytes].map((b) => '\\' + b.toString(16).padStart(2, '0')).join('');
  return commandWat({
    imports: ['fd_write', 'proc_exit'],
    data: `(data (i32.const 16) "${escaped}")`,
    start: `
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const ${bytes.length}))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (call $proc_exit (i32.const ${code}))`,
  });
}

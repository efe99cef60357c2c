import { createHash } from 'node:crypto';

import { BinaryError, GLOBAL_EXPORT_PREFIX, type MemoryDecl, type ModuleLayout,parseLayout } from './binary.js';
import { RuntimeError } from './errors.js';
import { WASI_FUNCTIONS, WASI_MODULE } from './wasi/constants.js';
import { Wasm, type WasmModule } from './wasm-api.js';

/** ImportInfo and ExportInfo describe a module's interface as the JS API reports it. */
export interface ImportInfo { module: string; name: string; kind: string }
export interface ExportInfo { name: string; kind: string }

/** Inspection is everything `skiff inspect` prints and the Function controller checks. */
export interface Inspection {
  digest: string;
  size: number;
  imports: ImportInfo[];
  exports: ExportInfo[];
  memories: MemoryDecl[];
  /** What the module can possibly use, derived from its imports. */
  capabilities: string[];
  /** Imports Skiff does not provide, as `module.name`. */
  unknownImports: string[];
  /** True when `_start` is exported (a WASI command). */
  isCommand: boolean;
  layout: ModuleLayout;
}

/**
 * Capability names and the WASI imports that imply them. A module without any `path_*` import can
 * never touch a directory, one without `sock_*` never a socket, and so on.
 */
const CAPABILITY_IMPORTS: Array<[string, (name: string) => boolean]> = [
  ['args', (n) => n.startsWith('args_')],
  ['env', (n) => n.startsWith('environ_')],
  ['clocks', (n) => n.startsWith('clock_') || n === 'poll_oneoff'],
  ['random', (n) => n === 'random_get'],
  ['stdin', (n) => n === 'fd_read'],
  ['stdout', (n) => n === 'fd_write'],
  ['dirs', (n) => n.startsWith('path_') || n === 'fd_prestat_get' || n === 'fd_readdir'],
  ['sockets', (n) => n.startsWith('sock_')],
  ['exit', (n) => n === 'proc_exit' || n === 'proc_raise'],
];

/** sha256Digest returns `sha256:<hex>` of the bytes. */
export function sha256Digest(bytes: Uint8Array): string {
  return 'sha256:' + createHash('sha256').update(bytes).digest('hex');
}

/** capabilitiesOf derives the capability set from a module's imports. */
export function capabilitiesOf(imports: ImportInfo[]): string[] {
  const names = imports.filter((i) => i.module === WASI_MODULE && i.kind === 'function').map((i) => i.name);
  return CAPABILITY_IMPORTS.filter(([, match]) => names.some(match)).map(([cap]) => cap);
}

/** unknownImportsOf lists imports the WASI host does not provide (other host modules, non-functions, unknown names). */
export function unknownImportsOf(imports: ImportInfo[]): string[] {
  return imports
    .filter((i) => i.module !== WASI_MODULE || i.kind !== 'function' || !(i.name in WASI_FUNCTIONS))
    .map((i) => `${i.module}.${i.name}`);
}

/** layoutOrThrow parses the binary layout and turns structural problems into coded RuntimeErrors. */
export function layoutOrThrow(bytes: Uint8Array): ModuleLayout {
  try {
    const layout = parseLayout(bytes);
    for (const m of layout.memories) {
      if (m.memory64) throw new BinaryError('unsupported', 'the module uses 64-bit memory (memory64), which V8 in Node 20 does not enable');
    }
    return layout;
  } catch (err) {
    if (!(err instanceof BinaryError)) throw err;
    if (err.kind === 'not_wasm') throw new RuntimeError('not_wasm', `not a WebAssembly module: ${err.message}`);
    if (err.kind === 'component') throw new RuntimeError('unsupported_feature', `${err.message}; Skiff runs WASI preview 1 core modules (build for wasm32-wasip1)`);
    if (err.kind === 'unsupported') throw new RuntimeError('unsupported_feature', err.message);
    throw new RuntimeError('invalid_module', `malformed WebAssembly module: ${err.message}`);
  }
}

const FEATURE_HINTS: Array<[RegExp, string]> = [
  [/0xfb|struct|array|heap type|ref type|rec group/i, 'garbage collection (wasm-gc)'],
  [/memory64|memory index|0x04 .*limits|limits flags/i, 'memory64'],
  [/exnref|try_table|throw_ref/i, 'exception handling (exnref)'],
  [/stringref|0x77/i, 'stringref'],
  [/opcode|value type|invalid type|local type/i, 'an instruction or type V8 in Node 20 does not support'],
];

/** Names of V8's `--experimental-wasm-*` flags, in words. */
const V8_FEATURES: Record<string, string> = {
  gc: 'garbage collection (wasm-gc)', memory64: 'memory64', exnref: 'exception handling (exnref)', stringref: 'stringref',
  'type-reflection': 'type reflection', 'stack-switching': 'stack switching', jspi: 'JS promise integration',
  'multi-memory': 'multiple memories', 'imported-strings': 'imported strings', 'extended-const': 'extended constant expressions',
};

/**
 * v8Message is V8's compile error with nothing of the module's own bytes in it: V8 quotes bytes it did
 * not expect ("found 74 68 69 73") and names from the module ("Duplicate export name 'x'"), and the
 * message ends up in a Function's status, which others may read; offsets and opcodes stay.
 */
export function v8Message(msg: string): string {
  if (/expected magic word/i.test(msg)) return 'not a WebAssembly module (bad magic number)';
  return msg
    .replace(/\b(found|got)((?:\s+[0-9a-f]{2}\b){2,})/gi, '$1 other bytes')
    .replace(/'[^']*'/g, "'…'")
    .replace(/"(?!<unknown>")[^"]*"/g, '"…"');
}

/** compileError maps a V8 CompileError onto 'unsupported_feature' (naming the feature) or 'invalid_module'. */
export function compileError(err: unknown): RuntimeError {
  const msg = v8Message(err instanceof Error ? err.message : String(err));
  // V8 names the proposal it lacks: "... (enable with --experimental-wasm-gc)".
  const flag = /--experimental-wasm-([\w-]+)/.exec(msg)?.[1];
  if (flag) {
    const feature = V8_FEATURES[flag] ?? `the "${flag}" proposal`;
    return new RuntimeError('unsupported_feature', `the module uses ${feature}, which V8 in this Node.js does not enable: ${msg}`, { cause: err });
  }
  for (const [re, feature] of FEATURE_HINTS) {
    if (re.test(msg)) return new RuntimeError('unsupported_feature', `the module uses ${feature}: V8 says "${msg}"`, { cause: err });
  }
  return new RuntimeError('invalid_module', `the module does not validate: ${msg}`, { cause: err });
}

/** interfaceOf reads imports and exports from a compiled module, hiding the runtime's own added exports. */
export function interfaceOf(module: WasmModule): { imports: ImportInfo[]; exports: ExportInfo[] } {
  return {
    imports: Wasm.Module.imports(module).map((i) => ({ module: i.module, name: i.name, kind: i.kind })),
    exports: Wasm.Module.exports(module).filter((e) => !e.name.startsWith(GLOBAL_EXPORT_PREFIX)).map((e) => ({ name: e.name, kind: e.kind })),
  };
}

/** inspectModule validates and describes a module without running it (used by `skiff inspect`). */
export async function inspectModule(bytes: Uint8Array): Promise<Inspection> {
  const layout = layoutOrThrow(bytes);
  let module: WasmModule;
  try {
    module = await Wasm.compile(bytes);
  } catch (err) {
    throw compileError(err);
  }
  const { imports, exports } = interfaceOf(module);
  return {
    digest: sha256Digest(bytes), size: bytes.length, imports, exports, memories: layout.memories,
    capabilities: capabilitiesOf(imports), unknownImports: unknownImportsOf(imports),
    isCommand: exports.some((e) => e.name === '_start' && e.kind === 'function'), layout,
  };
}

/** Grants is the part of a Function's capabilities that can be checked against a module's imports. */
export interface Grants {
  dirs?: unknown[];
  memfs?: unknown;
  env?: Record<string, string>;
  clock?: string;
  random?: unknown;
}

/**
 * excessGrants lists what a Function grants but its module can never use (no `path_*` import, yet
 * directories granted, and so on), one warning each, for the Function controller to report.
 */
export function excessGrants(capabilities: string[], grants: Grants): string[] {
  const has = (c: string) => capabilities.includes(c);
  const out: string[] = [];
  if (grants.dirs?.length && !has('dirs')) out.push(`capabilities.dirs grants ${grants.dirs.length} director${grants.dirs.length === 1 ? 'y' : 'ies'}, but the module imports no path_* function and can never open them`);
  if (grants.memfs && !has('dirs')) out.push('capabilities.memfs mounts scratch space, but the module imports no path_* function and can never open it');
  if (grants.env && Object.keys(grants.env).length && !has('env')) out.push('capabilities.env sets variables, but the module imports no environ_* function and can never read them');
  if (grants.clock && !has('clocks')) out.push(`capabilities.clock is "${grants.clock}", but the module imports no clock function`);
  if (grants.random && !has('random')) out.push('capabilities.random is set, but the module does not import random_get');
  return out;
}

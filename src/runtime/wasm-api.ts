/**
 * Typed access to the WebAssembly JS API. The project compiles with `lib: ES2023` and no DOM types,
 * which is where TypeScript keeps the WebAssembly declarations, so the runtime declares the few
 * members it uses here instead of changing the shared compiler settings or adding globals.
 */

/** A compiled module; opaque, and shareable with worker threads through postMessage. */
export interface WasmModule {
  readonly __wasmModule?: never;
}

export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(deltaPages: number): number;
}

export interface WasmGlobal {
  value: unknown;
}

export interface WasmInstance {
  readonly exports: Record<string, unknown>;
}

export interface WasmImportDescriptor {
  module: string;
  name: string;
  kind: string;
}

export interface WasmExportDescriptor {
  name: string;
  kind: string;
}

/** WasmImports is the import object passed to instantiation. */
export type WasmImports = Record<string, Record<string, unknown>>;

interface WasmApi {
  Module: {
    new (bytes: Uint8Array): WasmModule;
    imports(m: WasmModule): WasmImportDescriptor[];
    exports(m: WasmModule): WasmExportDescriptor[];
  };
  Instance: new (m: WasmModule, imports?: WasmImports) => WasmInstance;
  Memory: new (desc: { initial: number; maximum?: number }) => WasmMemory;
  Global: new (desc: { value: string; mutable?: boolean }, v?: unknown) => WasmGlobal;
  RuntimeError: new (message?: string) => Error;
  CompileError: new (message?: string) => Error;
  LinkError: new (message?: string) => Error;
  compile(bytes: Uint8Array): Promise<WasmModule>;
  validate(bytes: Uint8Array): boolean;
}

/** Wasm is the engine's WebAssembly namespace object. */
export const Wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

import { type ModuleLayout,PAGE, rewrite } from './binary.js';
import { RuntimeError } from './errors.js';
import { capabilitiesOf, compileError, interfaceOf, layoutOrThrow, sha256Digest, unknownImportsOf } from './inspect.js';
import { meter } from './meter.js';
import { Wasm, type WasmModule } from './wasm-api.js';

/** ModuleInfo describes a compiled module (the shape the control plane stores in Function status). */
export interface ModuleInfo {
  digest: string;
  size: number;
  imports: Array<{ module: string; name: string; kind: string }>;
  exports: Array<{ name: string; kind: string }>;
  compileMs: number;
  capabilities: string[];
}

/** Variant is the module compiled for one memory cap, ready to post to workers. */
export interface Variant {
  key: string;
  digest: string;
  module: WasmModule;
  maxPages: number;
  minPages: number;
  /** Whether a used instance may be reset from its snapshot and reused. */
  reusable: boolean;
}

interface Entry {
  info: ModuleInfo;
  bytes: Uint8Array;
  layout: ModuleLayout;
  isCommand: boolean;
  variants: Map<number, Promise<Variant>>;
}

/**
 * ModuleCache compiles each module once per sha256 digest (and once per memory cap: the cap is
 * written into the module's memory limits so `memory.grow` itself refuses to pass it). Compiled
 * modules are shared with every worker by posting the compiled module, which V8 shares without
 * recompiling.
 */
export class ModuleCache {
  private readonly entries = new Map<string, Promise<Entry>>();
  /** Variants that finished compiling, by `digest/memoryBytes`, so the request path can skip two awaits. */
  private readonly ready = new Map<string, Variant>();
  constructor(private readonly defaultMaxPages: number) {}

  /** compile validates, checks imports and compiles; a second call with the same bytes returns the cached info. */
  async compile(input: Uint8Array): Promise<ModuleInfo> {
    const bytes = new Uint8Array(input);
    const digest = sha256Digest(bytes);
    let p = this.entries.get(digest);
    if (!p) {
      p = this.load(digest, bytes);
      this.entries.set(digest, p);
      p.catch(() => this.entries.delete(digest));
    }
    return (await p).info;
  }

  private async load(digest: string, bytes: Uint8Array): Promise<Entry> {
    const layout = layoutOrThrow(bytes);
    const entry: Entry = {
      info: { digest, size: bytes.length, imports: [], exports: [], compileMs: 0, capabilities: [] },
      bytes, layout, isCommand: false, variants: new Map(),
    };
    const t0 = performance.now();
    const v = await this.compileVariant(entry, this.defaultMaxPages);
    entry.info.compileMs = performance.now() - t0;
    const { imports, exports } = interfaceOf(v.module);
    const unknown = unknownImportsOf(imports);
    if (unknown.length) {
      throw new RuntimeError(
        'missing_imports',
        `the module imports ${unknown.length === 1 ? 'a host function' : 'host functions'} Skiff does not provide: ${unknown.join(', ')} (Skiff provides only ${'wasi_snapshot_preview1'} functions)`,
        { details: unknown },
      );
    }
    entry.info.imports = imports;
    entry.info.exports = exports;
    entry.info.capabilities = capabilitiesOf(imports);
    entry.isCommand = exports.some((e) => e.name === '_start' && e.kind === 'function');
    entry.variants.set(this.defaultMaxPages, Promise.resolve(v));
    return entry;
  }

  private async compileVariant(entry: Entry, maxPages: number): Promise<Variant> {
    const { layout } = entry;
    const reusable = !layout.hasPassiveData && layout.importedMemories === 0 && layout.memories.length === 1;
    const bytes = rewrite(entry.bytes, layout, maxPages, reusable);
    let module: WasmModule;
    try {
      module = await Wasm.compile(bytes);
    } catch (err) {
      throw compileError(err);
    }
    const minPages = layout.memories[0]?.min ?? 0;
    return { key: `${entry.info.digest}/${maxPages}`, digest: entry.info.digest, module, maxPages, minPages, reusable };
  }

  /** info returns a compiled module's info, or throws 'unknown_module'. */
  async info(digest: string): Promise<ModuleInfo> {
    return (await this.entry(digest)).info;
  }

  private async entry(digest: string): Promise<Entry> {
    const p = this.entries.get(digest);
    if (!p) throw new RuntimeError('unknown_module', `no module with digest ${digest} was compiled; call compile() with its bytes first`);
    return p;
  }

  /** variant returns the module compiled for a memory cap in bytes (refusing modules whose minimum exceeds it). */
  async variant(digest: string, memoryBytes: number): Promise<Variant> {
    const entry = await this.entry(digest);
    if (!entry.isCommand) throw new RuntimeError('not_a_command', `module ${digest} exports no _start function: it is not a WASI command`);
    const maxPages = Math.max(0, Math.floor(memoryBytes / PAGE));
    const minPages = entry.layout.memories[0]?.min ?? 0;
    if (minPages > maxPages) {
      throw new RuntimeError('memory_limit', `the module declares a minimum memory of ${minPages * PAGE} bytes (${minPages} pages), above the limit of ${memoryBytes} bytes; raise limits.memory or shrink the module's initial memory`);
    }
    let v = entry.variants.get(maxPages);
    if (!v) {
      v = this.compileVariant(entry, maxPages);
      entry.variants.set(maxPages, v);
    }
    const variant = await v;
    this.ready.set(`${digest}/${memoryBytes}`, variant);
    return variant;
  }

  /** Fuel-metered compilations by variant key: null when the module cannot be metered. */
  private readonly meteredModules = new Map<string, WasmModule | null>();
  private readonly metering = new Map<string, Promise<unknown>>();

  /**
   * metered returns the variant compiled with fuel checks (meter.ts), for runs on the caller's own
   * thread: undefined while that compilation runs (the first call starts it), null when the module
   * cannot be metered. Compiled lazily: only functions that are actually invoked pay for it.
   */
  metered(variant: Variant, initialFuel: number): WasmModule | null | undefined {
    const got = this.meteredModules.get(variant.key);
    if (got !== undefined || this.metering.has(variant.key)) return got;
    const done = this.compileMetered(variant, initialFuel)
      .then((m) => this.meteredModules.set(variant.key, m), () => this.meteredModules.set(variant.key, null))
      .finally(() => this.metering.delete(variant.key));
    this.metering.set(variant.key, done);
    return undefined;
  }

  /** meteredSettled resolves once the metered build of a variant is done (at once when it is, or never started). */
  async meteredSettled(variant: Variant): Promise<void> {
    await this.metering.get(variant.key);
  }

  private async compileMetered(variant: Variant, initialFuel: number): Promise<WasmModule | null> {
    const entry = await this.entry(variant.digest);
    const bytes = meter(rewrite(entry.bytes, entry.layout, variant.maxPages, variant.reusable), initialFuel);
    return bytes ? Wasm.compile(bytes) : null;
  }

  /** resolvedVariant is variant() without waiting, for a digest and cap that variant() already returned. */
  resolvedVariant(digest: string, memoryBytes: number): Variant | undefined {
    return this.ready.get(`${digest}/${memoryBytes}`);
  }
}

/**
 * A small reader and rewriter for the parts of the Wasm binary format the runtime cares about:
 * memory limits (to enforce the memory cap on `memory.grow` by lowering the declared maximum),
 * mutable globals (exported under private names so a used instance can be reset to its post-init
 * snapshot), passive data segments, and the component-model header. Everything else is copied verbatim.
 */

const WASM_MAGIC = 0x6d736100;
export const PAGE = 65536;

/** BinaryError says which structural problem was found (the caller maps it to a RuntimeError). */
export class BinaryError extends Error {
  constructor(readonly kind: 'not_wasm' | 'component' | 'unsupported' | 'malformed', message: string) {
    super(message);
  }
}

/** MemoryDecl is one defined linear memory's limits, in pages. */
export interface MemoryDecl {
  min: number;
  max: number | null;
  shared: boolean;
  memory64: boolean;
}

/** ModuleLayout is what the runtime learned from a module's sections. */
export interface ModuleLayout {
  memories: MemoryDecl[];
  importedGlobals: number;
  importedMemories: number;
  /** Indices (in the global index space) of defined mutable globals. */
  mutableGlobals: number[];
  hasPassiveData: boolean;
  hasStart: boolean;
  sections: Array<{ id: number; start: number; end: number; bodyStart: number }>;
}

/** Reader walks a module's bytes; a structural problem is a BinaryError('malformed'). */
export class Reader {
  constructor(readonly b: Uint8Array, public pos = 0) {}
  byte(): number {
    if (this.pos >= this.b.length) throw new BinaryError('malformed', 'unexpected end of module');
    return this.b[this.pos++]!;
  }
  u32(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      const x = this.byte();
      result += (x & 0x7f) * 2 ** shift;
      if ((x & 0x80) === 0) return result;
      shift += 7;
      if (shift > 63) throw new BinaryError('malformed', 'LEB128 integer too long');
    }
  }
  skip(n: number): void {
    this.pos += n;
    if (this.pos > this.b.length) throw new BinaryError('malformed', 'unexpected end of module');
  }
  name(): string {
    const n = this.u32();
    const s = new TextDecoder().decode(this.b.subarray(this.pos, this.pos + n));
    this.skip(n);
    return s;
  }
  /** limits reads a memory/table limits record. */
  limits(): MemoryDecl {
    const flag = this.byte();
    const min = this.u32();
    const max = flag & 1 ? this.u32() : null;
    return { min, max, shared: (flag & 2) !== 0, memory64: (flag & 4) !== 0 };
  }
  /** constExpr skips an initializer expression up to its `end`. */
  constExpr(): void {
    for (;;) {
      const op = this.byte();
      if (op === 0x0b) return;
      if (op === 0x41 || op === 0x42 || op === 0x23 || op === 0xd2) this.u32(); // i32/i64.const (signed LEB is skipped the same way), global.get, ref.func
      else if (op === 0x43) this.skip(4);
      else if (op === 0x44) this.skip(8);
      else if (op === 0xd0) this.byte(); // ref.null heaptype
      else if (op === 0xfd) { this.u32(); this.skip(16); } // v128.const
      else if (op >= 0x6a && op <= 0x7e) { /* extended-const arithmetic: no immediates */ }
      else throw new BinaryError('unsupported', `unsupported instruction 0x${op.toString(16)} in a constant expression`);
    }
  }
}

/** parseLayout reads the section headers and the sections the runtime needs. */
export function parseLayout(bytes: Uint8Array): ModuleLayout {
  if (bytes.length < 8 || new DataView(bytes.buffer, bytes.byteOffset, 8).getUint32(0, true) !== WASM_MAGIC) {
    throw new BinaryError('not_wasm', 'the file does not start with the WebAssembly magic number \\0asm');
  }
  const version = new DataView(bytes.buffer, bytes.byteOffset, 8).getUint32(4, true);
  if (version !== 1) {
    if ((version & 0xffff) === 0x0d) throw new BinaryError('component', 'this is a WebAssembly component (component model), not a core module');
    throw new BinaryError('unsupported', `unknown WebAssembly binary version ${version}`);
  }
  const r = new Reader(bytes, 8);
  const layout: ModuleLayout = {
    memories: [], importedGlobals: 0, importedMemories: 0, mutableGlobals: [], hasPassiveData: false, hasStart: false, sections: [],
  };
  while (r.pos < bytes.length) {
    const start = r.pos;
    const id = r.byte();
    const size = r.u32();
    const bodyStart = r.pos;
    const end = bodyStart + size;
    if (end > bytes.length) throw new BinaryError('malformed', `section ${id} runs past the end of the module`);
    layout.sections.push({ id, start, end, bodyStart });
    const s = new Reader(bytes.subarray(0, end), bodyStart);
    if (id === 2) {
      const n = s.u32();
      for (let i = 0; i < n; i++) {
        s.name();
        s.name();
        const kind = s.byte();
        if (kind === 0x00) s.u32();
        else if (kind === 0x01) { s.byte(); s.limits(); }
        else if (kind === 0x02) { s.limits(); layout.importedMemories++; }
        else if (kind === 0x03) { s.byte(); s.byte(); layout.importedGlobals++; }
        else if (kind === 0x04) { s.byte(); s.u32(); }
        else throw new BinaryError('malformed', `unknown import kind ${kind}`);
      }
    } else if (id === 5) {
      const n = s.u32();
      for (let i = 0; i < n; i++) layout.memories.push(s.limits());
    } else if (id === 6) {
      const n = s.u32();
      for (let i = 0; i < n; i++) {
        const valtype = s.byte();
        if (valtype === 0x63 || valtype === 0x64) s.u32(); // (ref null? ht): heap type index
        const mut = s.byte();
        s.constExpr();
        if (mut === 1) layout.mutableGlobals.push(layout.importedGlobals + i);
      }
    } else if (id === 8) {
      layout.hasStart = true;
    } else if (id === 11) {
      const n = s.u32();
      for (let i = 0; i < n; i++) {
        const flag = s.u32();
        if (flag === 1) layout.hasPassiveData = true;
        else {
          if (flag === 2) s.u32();
          s.constExpr();
        }
        s.skip(s.u32());
      }
    }
    r.pos = end;
  }
  return layout;
}

/** leb encodes an unsigned LEB128 integer. */
export function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}

function section(id: number, body: number[] | Uint8Array): Uint8Array {
  const head = [id, ...leb(body.length)];
  const out = new Uint8Array(head.length + body.length);
  out.set(head);
  out.set(body, head.length);
  return out;
}

/** Prefix of the exports added so a host can read and restore the guest's mutable globals. */
export const GLOBAL_EXPORT_PREFIX = '__skiff_global_';

/**
 * rewrite returns module bytes whose defined memories may not grow past `maxPages`, and which export
 * every defined mutable global as `__skiff_global_<index>`.
 */
export function rewrite(bytes: Uint8Array, layout: ModuleLayout, maxPages: number, exportGlobals: boolean): Uint8Array {
  const parts: Uint8Array[] = [bytes.subarray(0, 8)];
  let sawExport = false;
  const extraExports: number[][] = exportGlobals
    ? layout.mutableGlobals.map((g) => {
        const name = new TextEncoder().encode(GLOBAL_EXPORT_PREFIX + g);
        return [...leb(name.length), ...name, 0x03, ...leb(g)];
      })
    : [];
  for (const sec of layout.sections) {
    if (sec.id === 5) {
      const body: number[] = [...leb(layout.memories.length)];
      for (const m of layout.memories) {
        const max = m.max === null ? maxPages : Math.min(m.max, maxPages);
        const flag = 1 | (m.shared ? 2 : 0) | (m.memory64 ? 4 : 0);
        body.push(flag, ...leb(m.min), ...leb(Math.max(max, m.min)));
      }
      parts.push(section(5, body));
    } else if (sec.id === 7 && extraExports.length) {
      sawExport = true;
      const r = new Reader(bytes.subarray(0, sec.end), sec.bodyStart);
      const n = r.u32();
      const body = [...leb(n + extraExports.length), ...bytes.subarray(r.pos, sec.end)];
      for (const e of extraExports) body.push(...e);
      parts.push(section(7, body));
    } else {
      // An export section must come right after the global section; insert one if the module had none.
      if (!sawExport && extraExports.length && sec.id !== 0 && sectionOrder(sec.id) > sectionOrder(7)) {
        sawExport = true;
        parts.push(section(7, [...leb(extraExports.length), ...extraExports.flat()]));
      }
      parts.push(bytes.subarray(sec.start, sec.end));
    }
  }
  if (!sawExport && extraExports.length) parts.push(section(7, [...leb(extraExports.length), ...extraExports.flat()]));
  const total = parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** sectionOrder: a known section's place in the required order (tag section 13 sits between memory and global). */
export function sectionOrder(id: number): number {
  const order = [1, 2, 3, 4, 5, 13, 6, 7, 8, 9, 12, 10, 11];
  const i = order.indexOf(id);
  return i < 0 ? 100 : i;
}

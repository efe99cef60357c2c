/**
 * Fuel metering by binary rewrite: every function entry and every loop iteration costs one unit of
 * fuel from a mutable i32 global the module gains (exported as FUEL_EXPORT); at zero the guest traps.
 * With a known budget, a run's length is bounded without a second thread to interrupt it, which is
 * what lets a short guest run on the caller's own thread (see inline.ts): calls and back-edges are
 * the only ways code repeats, so straight-line code between two checks is bounded by the code size.
 *
 * Hand-written: it is the sandbox itself, and it only needs to walk instructions and splice bytes, not
 * to build a tree of the module. Instructions it does not know (new proposals) make it decline, and the
 * module then simply always runs on a worker.
 */
import { BinaryError, leb, parseLayout, Reader, sectionOrder } from './binary.js';

/** Name under which a metered module exports its fuel global. */
export const FUEL_EXPORT = '__skiff_fuel';

class Cursor extends Reader {
  /** leb skips a signed or unsigned LEB128 of any width (the value is not needed). */
  leb(): void {
    for (let i = 0; i < 10; i++) if ((this.byte() & 0x80) === 0) return;
    throw new Unmeterable('LEB128 integer too long');
  }
  memarg(): void {
    const align = this.u32();
    if (align & 0x40) this.u32(); // multi-memory: explicit memory index
    this.leb();
  }
  /** blockType: the empty type, a value type, a reference type, or a type index (s33). */
  blockType(): void {
    const t = this.b[this.pos];
    if (t === undefined) throw new Unmeterable('unexpected end of code');
    if (t === 0x40 || (t >= 0x6f && t <= 0x7f)) {
      this.pos++;
      return;
    }
    if (t === 0x63 || t === 0x64) {
      this.pos++;
      this.leb();
      return;
    }
    this.leb();
  }
}

/** Unmeterable: the module uses an encoding the meter does not know; it is left unmetered. */
class Unmeterable extends Error {}

function sleb32(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

/**
 * skipInstruction moves past one instruction's opcode and immediates, returning the opcode (prefixed
 * opcodes return the prefix). Only `loop` matters to the caller; the rest must merely be skipped
 * exactly, so the table follows the binary format's immediates per opcode range.
 */
function skipInstruction(c: Cursor): number {
  const op = c.byte();
  if (op <= 0x01 || op === 0x05 || op === 0x0b || op === 0x0f || op === 0x19 || op === 0x1a || op === 0x1b || op === 0xd1 || op === 0xd3) return op;
  if (op >= 0x45 && op <= 0xc4) return op; // numeric operators carry no immediates
  switch (op) {
    case 0x02: case 0x03: case 0x04: case 0x06: // block, loop, if, try
      c.blockType();
      return op;
    case 0x07: case 0x08: case 0x09: case 0x0c: case 0x0d: case 0x10: case 0x12: case 0x14: case 0x15:
    case 0x18: case 0x20: case 0x21: case 0x22: case 0x23: case 0x24: case 0x25: case 0x26: case 0xd2:
    case 0xd4: case 0xd6: // one index / depth / tag
      c.u32();
      return op;
    case 0x0e: { // br_table
      const n = c.u32();
      for (let i = 0; i <= n; i++) c.u32();
      return op;
    }
    case 0x11: case 0x13: // call_indirect, return_call_indirect: type, table
      c.u32();
      c.u32();
      return op;
    case 0x1c: { // select with types
      const n = c.u32();
      for (let i = 0; i < n; i++) {
        const t = c.byte();
        if (t === 0x63 || t === 0x64) c.leb();
      }
      return op;
    }
    case 0x3f: case 0x40: // memory.size, memory.grow
      c.u32();
      return op;
    case 0x41: case 0x42:
      c.leb();
      return op;
    case 0x43:
      c.skip(4);
      return op;
    case 0x44:
      c.skip(8);
      return op;
    case 0xd0: // ref.null heap type
      c.leb();
      return op;
    case 0xfc:
      return 0xfc00 + skipFc(c);
    case 0xfd:
      skipSimd(c);
      return op;
    case 0xfe: { // threads
      const sub = c.u32();
      if (sub === 0x03) c.byte();
      else c.memarg();
      return op;
    }
  }
  if (op >= 0x28 && op <= 0x3e) {
    c.memarg();
    return op;
  }
  throw new Unmeterable(`opcode 0x${op.toString(16)}`);
}

/** skipFc skips a 0xfc-prefixed instruction and returns its sub-opcode. */
function skipFc(c: Cursor): number {
  const sub = c.u32();
  if (sub <= 7) return sub; // saturating truncations
  switch (sub) {
    case 8: case 10: case 12: case 14: // memory.init, memory.copy, table.init, table.copy: two indices
      c.u32();
      c.u32();
      return sub;
    case 9: case 11: case 13: case 15: case 16: case 17: // data.drop, memory.fill, elem.drop, table.grow/size/fill
      c.u32();
      return sub;
  }
  throw new Unmeterable(`opcode 0xfc ${sub}`);
}

/**
 * Operations whose cost grows with an operand on the top of the stack are charged by it:
 * memory.init/copy/fill and table.init/copy/fill a unit per BULK_BYTES_PER_UNIT elements (one loop
 * iteration costs about a nanosecond, moving 16 bytes about as much); memory.grow the bytes it adds
 * at the same rate (the pages are zeroed when first touched); table.grow a unit per entry.
 */
const SIZED_OPS = new Map<number, 'bulk' | 'pages' | 'entries'>([
  [0xfc08, 'bulk'], [0xfc0a, 'bulk'], [0xfc0b, 'bulk'], [0xfc0c, 'bulk'], [0xfc0e, 'bulk'], [0xfc11, 'bulk'],
  [0x40, 'pages'],
  [0xfc0f, 'entries'],
]);
const BULK_SHIFT = 4;
/** Bytes a bulk operation (or the host, for guest memory it reads or writes) moves per unit of fuel. */
export const BULK_BYTES_PER_UNIT = 2 ** BULK_SHIFT;

function skipSimd(c: Cursor): void {
  const sub = c.u32();
  if (sub <= 0x0b || sub === 0x5c || sub === 0x5d) c.memarg();
  else if (sub === 0x0c || sub === 0x0d) c.skip(16); // v128.const, i8x16.shuffle
  else if (sub >= 0x15 && sub <= 0x22) c.byte(); // extract/replace lane
  else if (sub >= 0x54 && sub <= 0x5b) {
    c.memarg();
    c.byte();
  }
  // Every other SIMD operator, relaxed SIMD included, has no immediates.
}

/** The check spliced in: trap when the fuel is gone, else take one unit. */
function checkSequence(global: number): number[] {
  const g = leb(global);
  return [0x23, ...g, 0x45, 0x04, 0x40, 0x00, 0x0b, 0x23, ...g, 0x41, 0x01, 0x6b, 0x24, ...g];
}

/**
 * The charge spliced before a sized operation: its operand (kept on the stack) costs fuel, trapping
 * below zero. Counts that could overflow the charge (a grow far past any limit, which fails anyway)
 * are clamped first.
 */
function chargeSequence(global: number, scratch: number, kind: 'bulk' | 'pages' | 'entries'): number[] {
  const g = leb(global);
  const l = leb(scratch);
  const clamp = (max: number[]) => [0x41, ...max, 0x20, ...l, 0x41, ...max, 0x49, 0x1b]; // min(operand, max): i32.lt_u, select
  const cost = kind === 'bulk'
    ? [0x20, ...l, 0x41, BULK_SHIFT, 0x76] // operand >>> 4
    : kind === 'pages'
      ? [0x20, ...l, ...clamp(sleb32(65536)), 0x41, 16 - BULK_SHIFT, 0x74] // min(pages, 65536) << 12
      : [0x20, ...l, ...clamp(sleb32(1 << 24))]; // min(entries, 2^24)
  return [0x22, ...l, 0x23, ...g, ...cost, 0x6b, 0x24, ...g, 0x23, ...g, 0x41, 0x00, 0x48, 0x04, 0x40, 0x00, 0x0b];
}

/** meterBody rewrites one function body (locals and code), inserting `check` at entry and at each loop head. */
function meterBody(b: Uint8Array, start: number, end: number, params: number, fuel: number, check: number[], out: Writer, body: Writer): void {
  const c = new Cursor(b.subarray(0, end), start);
  const groups = c.u32();
  const groupsStart = c.pos;
  let locals = 0;
  for (let i = 0; i < groups; i++) {
    locals += c.u32();
    const t = c.byte();
    if (t === 0x63 || t === 0x64) c.leb();
  }
  const codeStart = c.pos;
  // First pass: where loops begin (after their block type) and where sized operations start.
  const loops: number[] = [];
  const bulks: number[] = [];
  const kinds: Array<'bulk' | 'pages' | 'entries'> = [];
  while (c.pos < end) {
    const at = c.pos;
    const op = skipInstruction(c);
    if (op === 0x03) loops.push(c.pos);
    else {
      const kind = SIZED_OPS.get(op);
      if (kind) {
        bulks.push(at);
        kinds.push(kind);
      }
    }
  }
  if (c.pos !== end) throw new Unmeterable('a function body ends inside an instruction');
  body.len = 0;
  if (bulks.length) {
    // One i32 scratch local, after every existing one, holds a sized operation's operand.
    body.bytes(leb(groups + 1));
    body.bytes(b.subarray(groupsStart, codeStart));
    body.bytes([0x01, 0x7f]);
  } else body.bytes(b.subarray(start, codeStart));
  body.bytes(check);
  const scratchLocal = params + locals;
  const charges = new Map<string, number[]>();
  const charge = (kind: 'bulk' | 'pages' | 'entries') => {
    let seq = charges.get(kind);
    if (!seq) charges.set(kind, (seq = chargeSequence(fuel, scratchLocal, kind)));
    return seq;
  };
  let copied = codeStart;
  let li = 0;
  let bi = 0;
  while (li < loops.length || bi < bulks.length) {
    const isLoop = bi >= bulks.length || (li < loops.length && loops[li]! <= bulks[bi]!);
    const kind = isLoop ? undefined : kinds[bi];
    const at = isLoop ? loops[li++]! : bulks[bi++]!;
    body.bytes(b.subarray(copied, at));
    body.bytes(kind ? charge(kind) : check);
    copied = at;
  }
  body.bytes(b.subarray(copied, end));
  out.bytes(leb(body.len));
  out.bytes(body.result());
}

/** Writer is a growable byte buffer (module-sized arrays must not go through spread arguments). */
class Writer {
  private buf = new Uint8Array(1024);
  len = 0;
  private room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.len + n, this.buf.length * 2));
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }
  byte(x: number): void {
    this.room(1);
    this.buf[this.len++] = x;
  }
  bytes(b: ArrayLike<number>): void {
    this.room(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
  result(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }
}

function section(out: Writer, id: number, body: ArrayLike<number>): void {
  out.byte(id);
  out.bytes(leb(body.length));
  out.bytes(body);
}

/**
 * meter returns the module with fuel checks, its fuel global starting at `initialFuel` (enough for
 * a start function), or null when the module uses instructions the meter does not know.
 */
export function meter(bytes: Uint8Array, initialFuel: number): Uint8Array | null {
  try {
    return meterOrThrow(bytes, initialFuel);
  } catch (err) {
    if (err instanceof Unmeterable || err instanceof BinaryError) return null;
    throw err;
  }
}

/** paramCounts reads each defined function's parameter count (from the type and function sections). */
function paramCounts(bytes: Uint8Array, sections: Array<{ id: number; bodyStart: number; end: number }>): number[] {
  const types: number[] = [];
  const typeSec = sections.find((s) => s.id === 1);
  if (typeSec) {
    const c = new Cursor(bytes.subarray(0, typeSec.end), typeSec.bodyStart);
    const n = c.u32();
    for (let i = 0; i < n; i++) {
      if (c.byte() !== 0x60) throw new Unmeterable('a type that is not a function type');
      const vec = () => {
        const k = c.u32();
        for (let j = 0; j < k; j++) {
          const t = c.byte();
          if (t === 0x63 || t === 0x64) c.leb();
        }
        return k;
      };
      types.push(vec());
      vec();
    }
  }
  const out: number[] = [];
  const funcSec = sections.find((s) => s.id === 3);
  if (funcSec) {
    const c = new Cursor(bytes.subarray(0, funcSec.end), funcSec.bodyStart);
    const n = c.u32();
    for (let i = 0; i < n; i++) {
      const t = types[c.u32()];
      if (t === undefined) throw new Unmeterable('a function with an unknown type');
      out.push(t);
    }
  }
  return out;
}

function meterOrThrow(bytes: Uint8Array, initialFuel: number): Uint8Array {
  const layout = parseLayout(bytes);
  // Bulk lengths are i64 with a 64-bit memory; the charge sequence is written for i32.
  if (layout.memories.some((m) => m.memory64)) throw new Unmeterable('memory64');
  const params = paramCounts(bytes, layout.sections);
  const globalSec = layout.sections.find((s) => s.id === 6);
  const defined = globalSec ? new Cursor(bytes, globalSec.bodyStart).u32() : 0;
  const fuelIndex = layout.importedGlobals + defined;
  const fuelGlobal = [0x7f, 0x01, 0x41, ...sleb32(initialFuel), 0x0b];
  const name = [...new TextEncoder().encode(FUEL_EXPORT)];
  const fuelExport = [...leb(name.length), ...name, 0x03, ...leb(fuelIndex)];
  const check = checkSequence(fuelIndex);

  const out = new Writer();
  out.bytes(bytes.subarray(0, 8));
  let addedGlobal = false;
  let addedExport = false;
  const concat = (...parts: ArrayLike<number>[]) => {
    const w = new Writer();
    for (const p of parts) w.bytes(p);
    return w.result();
  };
  for (const sec of layout.sections) {
    const at = sectionOrder(sec.id);
    // Sections the module lacks are inserted where the binary format's order puts them.
    if (!addedGlobal && sec.id !== 0 && at > sectionOrder(6)) {
      section(out, 6, concat([0x01], fuelGlobal));
      addedGlobal = true;
    }
    if (!addedExport && sec.id !== 0 && at > sectionOrder(7)) {
      section(out, 7, concat([0x01], fuelExport));
      addedExport = true;
    }
    if (sec.id === 6) {
      const c = new Cursor(bytes, sec.bodyStart);
      c.u32();
      section(out, 6, concat(leb(defined + 1), bytes.subarray(c.pos, sec.end), fuelGlobal));
      addedGlobal = true;
    } else if (sec.id === 7) {
      const c = new Cursor(bytes, sec.bodyStart);
      const n = c.u32();
      section(out, 7, concat(leb(n + 1), bytes.subarray(c.pos, sec.end), fuelExport));
      addedExport = true;
    } else if (sec.id === 10) {
      const c = new Cursor(bytes.subarray(0, sec.end), sec.bodyStart);
      const n = c.u32();
      const code = new Writer();
      const scratch = new Writer();
      code.bytes(leb(n));
      for (let i = 0; i < n; i++) {
        const size = c.u32();
        const p = params[i];
        if (p === undefined) throw new Unmeterable('more function bodies than functions');
        meterBody(bytes, c.pos, c.pos + size, p, fuelIndex, check, code, scratch);
        c.skip(size);
      }
      section(out, 10, code.result());
    } else out.bytes(bytes.subarray(sec.start, sec.end));
  }
  if (!addedGlobal) section(out, 6, concat([0x01], fuelGlobal));
  if (!addedExport) section(out, 7, concat([0x01], fuelExport));
  return out.result().slice();
}

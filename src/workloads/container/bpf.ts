/**
 * A small assembler for classic BPF as seccomp runs it: `struct sock_filter { u16 code; u8 jt; u8 jf;
 * u32 k; }`, little-endian as on x86_64. Jumps name labels; `assemble` resolves them and refuses a
 * program whose forward jump is longer than the 255 instructions a u8 offset can hold, or that
 * exceeds the kernel's 4096-instruction limit.
 */

/** Instruction classes, sizes, modes and operations (linux/bpf_common.h). */
export const BPF = {
  LD_W_ABS: 0x20, // A = seccomp_data[k] (32-bit word)
  LD_IMM: 0x00, // A = k
  ALU_AND_K: 0x54,
  ALU_RSH_K: 0x74,
  ALU_LSH_X: 0x6c, // A <<= X
  TAX: 0x07, // X = A
  JMP_JA: 0x05,
  JMP_JEQ_K: 0x15,
  JMP_JGE_K: 0x35,
  JMP_JSET_K: 0x45,
  RET_K: 0x06,
} as const;

/** Return values of a seccomp filter (linux/seccomp.h). */
export const SECCOMP_RET = {
  KILL_PROCESS: 0x80000000,
  ERRNO: 0x00050000,
  ALLOW: 0x7fff0000,
} as const;

/** The kernel refuses longer programs (BPF_MAXINSNS). */
export const BPF_MAXINSNS = 4096;

type Target = string | number; // a label, or 0 for "the next instruction"

interface Insn {
  code: number;
  k: number;
  jt?: Target;
  jf?: Target;
  labels?: string[];
}

/** BpfProgram collects instructions and labels and assembles them into `struct sock_filter` bytes. */
export class BpfProgram {
  private readonly insns: Insn[] = [];
  private pendingLabels: string[] = [];

  /** label names the next instruction (one instruction may carry several names). */
  label(name: string): this {
    this.pendingLabels.push(name);
    return this;
  }

  /** stmt appends a non-jump instruction. */
  stmt(code: number, k = 0): this {
    return this.push({ code, k });
  }

  /** jump appends a conditional jump: to `jt` when the test holds, else to `jf` (0 = fall through). */
  jump(code: number, k: number, jt: Target, jf: Target): this {
    return this.push({ code, k, jt, jf });
  }

  /** ret appends a return of `k`. */
  ret(k: number): this {
    return this.push({ code: BPF.RET_K, k });
  }

  get length(): number {
    return this.insns.length;
  }

  /** assemble resolves labels and returns the program as `struct sock_filter[]` bytes. */
  assemble(): Buffer {
    if (this.pendingLabels.length) throw new Error(`bpf: label ${this.pendingLabels[0]} names no instruction`);
    if (this.insns.length > BPF_MAXINSNS) throw new Error(`bpf: ${this.insns.length} instructions, more than ${BPF_MAXINSNS}`);
    const at = new Map<string, number>();
    this.insns.forEach((insn, i) => {
      for (const label of insn.labels ?? []) {
        if (at.has(label)) throw new Error(`bpf: label ${label} defined twice`);
        at.set(label, i);
      }
    });
    const offset = (from: number, target: Target | undefined): number => {
      if (target === undefined || target === 0) return 0;
      if (typeof target === 'number') throw new Error('bpf: a numeric jump target other than 0');
      const to = at.get(target);
      if (to === undefined) throw new Error(`bpf: jump to undefined label ${target}`);
      const off = to - from - 1;
      if (off < 0) throw new Error(`bpf: backward jump to ${target} (classic BPF jumps only forward)`);
      if (off > 255) throw new Error(`bpf: jump to ${target} spans ${off} instructions, more than 255`);
      return off;
    };
    const out = Buffer.alloc(this.insns.length * 8);
    this.insns.forEach((insn, i) => {
      out.writeUInt16LE(insn.code, i * 8);
      out.writeUInt8(offset(i, insn.jt), i * 8 + 2);
      out.writeUInt8(offset(i, insn.jf), i * 8 + 3);
      out.writeUInt32LE(insn.k >>> 0, i * 8 + 4);
    });
    return out;
  }

  private push(insn: Insn): this {
    if (this.pendingLabels.length) {
      insn.labels = this.pendingLabels;
      this.pendingLabels = [];
    }
    this.insns.push(insn);
    return this;
  }
}

/** One decoded `struct sock_filter`. */
export interface SockFilter {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

/** decode reads assembled bytes back into instructions (for tests and for the interpreter below). */
export function decode(program: Buffer): SockFilter[] {
  const out: SockFilter[] = [];
  for (let i = 0; i + 8 <= program.length; i += 8) {
    out.push({ code: program.readUInt16LE(i), jt: program.readUInt8(i + 2), jf: program.readUInt8(i + 3), k: program.readUInt32LE(i + 4) });
  }
  return out;
}

/** The part of `struct seccomp_data` a filter reads: nr at 0, arch at 4, args[i] at 16 + 8i. */
export interface SeccompData {
  nr: number;
  arch: number;
  args?: bigint[];
}

/**
 * run interprets the subset of classic BPF the assembler emits, as the kernel would, and returns the
 * filter's verdict. Tests use it to check every syscall of the table without a kernel round trip.
 */
export function run(program: Buffer, data: SeccompData): number {
  const mem = Buffer.alloc(64);
  mem.writeInt32LE(data.nr, 0);
  mem.writeUInt32LE(data.arch >>> 0, 4);
  (data.args ?? []).forEach((a, i) => mem.writeBigUInt64LE(BigInt.asUintN(64, a), 16 + 8 * i));
  const insns = decode(program);
  let a = 0;
  let x = 0;
  for (let pc = 0; pc < insns.length; pc++) {
    const { code, jt, jf, k } = insns[pc]!;
    switch (code) {
      case BPF.LD_W_ABS: a = mem.readUInt32LE(k); break;
      case BPF.LD_IMM: a = k; break;
      case BPF.ALU_AND_K: a = (a & k) >>> 0; break;
      case BPF.ALU_RSH_K: a = a >>> k; break;
      case BPF.ALU_LSH_X: a = (a << x) >>> 0; break;
      case BPF.TAX: x = a; break;
      case BPF.JMP_JA: pc += k; break;
      case BPF.JMP_JEQ_K: pc += a === k ? jt : jf; break;
      case BPF.JMP_JGE_K: pc += a >= k ? jt : jf; break;
      case BPF.JMP_JSET_K: pc += (a & k) !== 0 ? jt : jf; break;
      case BPF.RET_K: return k;
      default: throw new Error(`bpf: instruction ${pc} has code 0x${code.toString(16)} the interpreter does not know`);
    }
  }
  throw new Error('bpf: the program ran off its end');
}

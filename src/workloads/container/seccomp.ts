import { BPF, BpfProgram, SECCOMP_RET } from './bpf.js';
import { RUNTIME_DEFAULT_ALLOW, X86_64_SYSCALLS } from './syscalls-x86-64.js';

/** AUDIT_ARCH_X86_64 (linux/audit.h): EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE. */
export const AUDIT_ARCH_X86_64 = 0xc000003e;
/** The x32 ABI runs x86_64 code with this bit set in the syscall number. */
export const X32_SYSCALL_BIT = 0x40000000;
export const EPERM = 1;
export const ENOSYS = 38;

/** An argument test. Every argument tested here is 32 bits wide in the kernel, so only the low word is read. */
export type ArgTest = { arg: number; op: 'eq' | 'ne'; value: number } | { arg: number; op: 'maskedEq'; mask: number; value: number };

/**
 * A call allowed only when one of `allowIf` holds (else the default EPERM), or answered with a fixed
 * errno (`errno`) whatever its arguments.
 */
export interface ConditionalRule {
  name: string;
  allowIf?: ArgTest[];
  errno?: number;
  why: string;
}

/** The namespace flags of clone(2): CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET. */
export const CLONE_NAMESPACE_FLAGS = 0x7e020000;
const AF_VSOCK = 40;

/** SeccompProfile is one syscall policy in the forms the handlers need. */
export interface SeccompProfile {
  readonly name: string;
  /** errno of every call not allowed. */
  readonly defaultErrno: number;
  readonly allow: readonly string[];
  readonly conditional: readonly ConditionalRule[];
  /** The filter as classic BPF for x86_64 (`struct sock_filter[]`), as bwrap's `--seccomp FD` reads it. */
  bpf(): Buffer;
  /** The same policy as an OCI runtime-spec `linux.seccomp` object, for runc. */
  oci(): OciSeccomp;
}

/** OCI runtime-spec `linux.seccomp` (config-linux.md). */
export interface OciSeccomp {
  defaultAction: string;
  defaultErrnoRet: number;
  architectures: string[];
  syscalls: { names: string[]; action: string; errnoRet?: number; args?: { index: number; value: number; valueTwo?: number; op: string }[] }[];
}

const CONDITIONAL: readonly ConditionalRule[] = [
  { name: 'clone', allowIf: [{ arg: 0, op: 'maskedEq', mask: CLONE_NAMESPACE_FLAGS, value: 0 }], why: 'threads and processes yes, new namespaces no' },
  { name: 'clone3', errno: ENOSYS, why: 'its flags sit in memory a filter cannot read; ENOSYS makes libc fall back to clone' },
  { name: 'socket', allowIf: [{ arg: 0, op: 'ne', value: AF_VSOCK }], why: 'no vsock: it reaches the hypervisor host' },
  {
    name: 'personality',
    allowIf: [0x0, 0x8, 0x20000, 0x20008, 0xffffffff].map((value) => ({ arg: 0, op: 'eq' as const, value })),
    why: 'only the default personalities and the query; others turn off address-space randomisation',
  },
];

/**
 * runtimeDefaultSeccomp is the RuntimeDefault profile of Docker and containerd for a container
 * without capabilities on x86_64: an allowlist, every other call EPERM, other ABIs (i386, x32)
 * refused. Both handlers use it: bwrap as compiled BPF, runc as JSON.
 */
export function runtimeDefaultSeccomp(): SeccompProfile {
  return {
    name: 'RuntimeDefault',
    defaultErrno: EPERM,
    allow: RUNTIME_DEFAULT_ALLOW,
    conditional: CONDITIONAL,
    bpf: () => compileBpf(RUNTIME_DEFAULT_ALLOW, CONDITIONAL, EPERM),
    oci: () => toOci(RUNTIME_DEFAULT_ALLOW, CONDITIONAL, EPERM),
  };
}

function nr(name: string): number {
  const n = X86_64_SYSCALLS[name];
  if (n === undefined) throw new Error(`seccomp: no x86_64 syscall named ${name}`);
  return n;
}

/**
 * compileBpf lays the filter out as: architecture check, x32 check, one block per conditional rule,
 * then the allowlist as a bitmap (the syscall number's upper bits pick a 32-call word, its low five
 * bits a bit in it) so a call costs a dozen instructions instead of a walk down 300 comparisons.
 */
function compileBpf(allow: readonly string[], conditional: readonly ConditionalRule[], defaultErrno: number): Buffer {
  const p = new BpfProgram();
  p.stmt(BPF.LD_W_ABS, 4).jump(BPF.JMP_JEQ_K, AUDIT_ARCH_X86_64, 0, 'deny');
  p.stmt(BPF.LD_W_ABS, 0).jump(BPF.JMP_JGE_K, X32_SYSCALL_BIT, 'deny', 0);
  conditional.forEach((rule, i) => {
    const next = `rule${i + 1}`;
    p.jump(BPF.JMP_JEQ_K, nr(rule.name), 0, next);
    if (rule.errno !== undefined) {
      p.ret(SECCOMP_RET.ERRNO | rule.errno);
    } else {
      for (const t of rule.allowIf ?? []) {
        p.stmt(BPF.LD_W_ABS, 16 + 8 * t.arg);
        if (t.op === 'maskedEq') p.stmt(BPF.ALU_AND_K, t.mask).jump(BPF.JMP_JEQ_K, t.value, 'allow', 0);
        else if (t.op === 'eq') p.jump(BPF.JMP_JEQ_K, t.value, 'allow', 0);
        else p.jump(BPF.JMP_JEQ_K, t.value, 0, 'allow');
      }
      p.ret(SECCOMP_RET.ERRNO | defaultErrno);
    }
    p.label(next).stmt(BPF.LD_W_ABS, 0);
  });
  const words = new Map<number, number>();
  for (const name of allow) {
    const n = nr(name);
    words.set(n >>> 5, ((words.get(n >>> 5) ?? 0) | (1 << (n & 31))) >>> 0);
  }
  p.stmt(BPF.ALU_RSH_K, 5);
  for (const [word, bits] of [...words].sort((a, b) => a[0] - b[0])) {
    // A holds nr >> 5 on every path into this compare; the bit test below overwrites it.
    p.jump(BPF.JMP_JEQ_K, word, 0, `word${word}`);
    p.stmt(BPF.LD_W_ABS, 0).stmt(BPF.ALU_AND_K, 31).stmt(BPF.TAX).stmt(BPF.LD_IMM, 1).stmt(BPF.ALU_LSH_X);
    p.jump(BPF.JMP_JSET_K, bits, 'allow', 'deny');
    p.label(`word${word}`);
  }
  p.label('deny').ret(SECCOMP_RET.ERRNO | defaultErrno);
  p.label('allow').ret(SECCOMP_RET.ALLOW);
  return p.assemble();
}

/** toOci writes the same policy in runc's terms; libseccomp then compiles it. */
function toOci(allow: readonly string[], conditional: readonly ConditionalRule[], defaultErrno: number): OciSeccomp {
  const syscalls: OciSeccomp['syscalls'] = [{ names: [...allow], action: 'SCMP_ACT_ALLOW' }];
  for (const rule of conditional) {
    if (rule.errno !== undefined) {
      syscalls.push({ names: [rule.name], action: 'SCMP_ACT_ERRNO', errnoRet: rule.errno });
      continue;
    }
    // libseccomp ANDs the tests of one entry, so each alternative is an entry of its own.
    for (const t of rule.allowIf ?? []) {
      const arg =
        t.op === 'maskedEq'
          ? { index: t.arg, value: t.mask, valueTwo: t.value, op: 'SCMP_CMP_MASKED_EQ' }
          : { index: t.arg, value: t.value, op: t.op === 'eq' ? 'SCMP_CMP_EQ' : 'SCMP_CMP_NE' };
      syscalls.push({ names: [rule.name], action: 'SCMP_ACT_ALLOW', args: [arg] });
    }
  }
  return { defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: defaultErrno, architectures: ['SCMP_ARCH_X86_64'], syscalls };
}

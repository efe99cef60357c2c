import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { BPF, BpfProgram, decode, run, SECCOMP_RET } from '../../src/workloads/container/bpf.js';
import { CgroupManager } from '../../src/workloads/container/cgroups.js';
import { runtimeDefaultSeccomp } from '../../src/workloads/container/index.js';
import { AUDIT_ARCH_X86_64 } from '../../src/workloads/container/seccomp.js';
import { X86_64_SYSCALLS } from '../../src/workloads/container/syscalls-x86-64.js';

const HEADER = '/usr/include/x86_64-linux-gnu/asm/unistd_64.h';
const ALLOW = SECCOMP_RET.ALLOW;
const EPERM = SECCOMP_RET.ERRNO | 1;
const ENOSYS = SECCOMP_RET.ERRNO | 38;

describe('RuntimeDefault seccomp profile', () => {
  const profile = runtimeDefaultSeccomp();
  const bpf = profile.bpf();
  const verdict = (name: string, args: bigint[] = []) => run(bpf, { nr: X86_64_SYSCALLS[name]!, arch: AUDIT_ARCH_X86_64, args });

  it.skipIf(!existsSync(HEADER))('uses the syscall numbers of the kernel headers', () => {
    const header = new Map([...readFileSync(HEADER, 'utf8').matchAll(/#define __NR_(\w+) (\d+)/g)].map((m) => [m[1]!, Number(m[2])]));
    for (const [name, nr] of Object.entries(X86_64_SYSCALLS)) expect({ name, nr }).toEqual({ name, nr: header.get(name) });
  });

  it('allows every call of the allowlist and nothing the brief names as dangerous', () => {
    for (const name of profile.allow) expect({ name, v: verdict(name) }).toEqual({ name, v: ALLOW });
    const denied = ['mount', 'umount2', 'ptrace', 'kexec_load', 'kexec_file_load', 'bpf', 'init_module', 'finit_module', 'delete_module', 'reboot', 'swapon', 'swapoff', 'pivot_root', 'setns', 'open_by_handle_at', 'keyctl', 'add_key', 'request_key', 'perf_event_open', 'userfaultfd', 'unshare', 'chroot', 'process_vm_readv', 'process_vm_writev', 'io_uring_setup', 'fsopen', 'move_mount', 'open_tree', 'syslog', 'acct', 'settimeofday', 'iopl', 'ioperm'];
    for (const name of denied) {
      expect(profile.allow).not.toContain(name);
      expect({ name, v: verdict(name) }).toEqual({ name, v: EPERM });
    }
    // A number no kernel has given a name yet is refused too.
    expect(run(bpf, { nr: 1000, arch: AUDIT_ARCH_X86_64 })).toBe(EPERM);
  });

  it('allows clone for threads and processes, not for namespaces; clone3 answers ENOSYS', () => {
    const CLONE_THREAD_FLAGS = 0x3d0f00n; // what pthread_create passes
    expect(verdict('clone', [0x01200011n])).toBe(ALLOW); // fork(): CHILD_SETTID|CHILD_CLEARTID|SIGCHLD
    expect(verdict('clone', [CLONE_THREAD_FLAGS])).toBe(ALLOW);
    for (const ns of [0x10000000n, 0x00020000n, 0x04000000n, 0x08000000n, 0x20000000n, 0x40000000n, 0x02000000n]) {
      expect(verdict('clone', [ns | 0x11n])).toBe(EPERM);
    }
    expect(verdict('clone3')).toBe(ENOSYS);
  });

  it('allows only the default personalities and refuses vsock sockets', () => {
    for (const p of [0n, 8n, 0x20000n, 0x20008n, 0xffffffffn]) expect(verdict('personality', [p])).toBe(ALLOW);
    expect(verdict('personality', [0x0400000n])).toBe(EPERM);
    expect(verdict('socket', [2n])).toBe(ALLOW);
    expect(verdict('socket', [40n])).toBe(EPERM);
  });

  it('refuses other architectures and the x32 ABI', () => {
    expect(run(bpf, { nr: 39, arch: 0x40000003 /* AUDIT_ARCH_I386 */ })).toBe(EPERM);
    expect(run(bpf, { nr: 0x40000000 | 39, arch: AUDIT_ARCH_X86_64 })).toBe(EPERM);
    expect(run(bpf, { nr: 39, arch: AUDIT_ARCH_X86_64 })).toBe(ALLOW);
  });

  it('lays out struct sock_filter as the kernel reads it', () => {
    const insns = decode(bpf);
    expect(bpf.length).toBe(insns.length * 8);
    expect(insns.length).toBeLessThan(256);
    // ld [4] (arch) first, then the arch comparison falling through on a match.
    expect(insns[0]).toEqual({ code: 0x20, jt: 0, jf: 0, k: 4 });
    expect(insns[1]).toMatchObject({ code: 0x15, jt: 0, k: AUDIT_ARCH_X86_64 });
    expect(insns.at(-1)).toEqual({ code: 0x06, jt: 0, jf: 0, k: ALLOW });
  });

  it('writes the same policy in runc’s JSON form', () => {
    const oci = profile.oci();
    expect(oci).toMatchObject({ defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 1, architectures: ['SCMP_ARCH_X86_64'] });
    expect(oci.syscalls[0]).toEqual({ names: [...profile.allow], action: 'SCMP_ACT_ALLOW' });
    expect(oci.syscalls).toContainEqual({ names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 });
    expect(oci.syscalls).toContainEqual({ names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0x7e020000, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }] });
    expect(oci.syscalls).toContainEqual({ names: ['socket'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 40, op: 'SCMP_CMP_NE' }] });
    expect(oci.syscalls.filter((s) => s.names[0] === 'personality')).toHaveLength(5);
  });
});

describe('BPF assembler', () => {
  it('refuses jumps a u8 offset cannot hold, and undefined or duplicate labels', () => {
    const far = new BpfProgram().jump(BPF.JMP_JEQ_K, 1, 'end', 0);
    for (let i = 0; i < 300; i++) far.stmt(BPF.LD_IMM, i);
    far.label('end').ret(0);
    expect(() => far.assemble()).toThrow(/spans 300 instructions, more than 255/);
    expect(() => new BpfProgram().jump(BPF.JMP_JEQ_K, 1, 'nowhere', 0).ret(0).assemble()).toThrow(/undefined label nowhere/);
    expect(() => new BpfProgram().label('a').ret(0).label('a').ret(1).assemble()).toThrow(/defined twice/);
    expect(() => new BpfProgram().ret(0).label('dangling').assemble()).toThrow(/names no instruction/);
  });
});

describe('cgroup placement', () => {
  const fake = (files: Record<string, string>) => {
    const root = mkdtempSync(join(tmpdir(), 'skiff-cg-'));
    for (const [f, text] of Object.entries(files)) {
      mkdirSync(join(root, f, '..'), { recursive: true });
      writeFileSync(join(root, f), text);
    }
    return root;
  };

  it('uses cgroup v2 where memory and pids are delegated, writing the limits there', async () => {
    const root = fake({ 'cgroup.controllers': 'cpu memory pids', 'skiff/cgroup.subtree_control': 'cpu memory pids', 'skiff/cgroup.procs': '' });
    try {
      const m = new CgroupManager({ root, selfCgroup: '0::/skiff\n' });
      expect(m.mechanism()).toBe('cgroup-v2');
      const cg = (await m.create('ns.fn.0', { memoryBytes: 32 << 20, pids: 10, cpuMillis: 500 }))!;
      const dir = cg.dirs.unified!;
      expect(dir).toBe(join(root, 'skiff', `skiff-${process.pid}-ns.fn.0`));
      expect(readFileSync(join(dir, 'memory.max'), 'utf8')).toBe(String(32 << 20));
      expect(readFileSync(join(dir, 'pids.max'), 'utf8')).toBe('10');
      expect(readFileSync(join(dir, 'cpu.max'), 'utf8')).toBe('50000 100000');
      expect(cg.procsFiles()).toEqual([join(dir, 'cgroup.procs')]);
      writeFileSync(join(dir, 'memory.events'), 'low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n');
      expect(await cg.oomKills()).toBe(1);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('falls back to cgroup v1 controllers, then to rlimits', async () => {
    const v1 = fake({ 'unified/cgroup.controllers': '', 'memory/a/cgroup.procs': '', 'pids/cgroup.procs': '', 'cpu/cgroup.procs': '' });
    try {
      const m = new CgroupManager({ root: v1, selfCgroup: '4:memory:/a\n8:pids:/\n1:cpu:/\n0::/\n' });
      expect(m.mechanism()).toBe('cgroup-v1');
      const cg = (await m.create('x', {}))!;
      expect(readFileSync(join(cg.dirs.memory!, 'memory.limit_in_bytes'), 'utf8')).toBe(String(256 << 20));
      expect(cg.dirs.memory).toBe(join(v1, 'memory', 'a', `skiff-${process.pid}-x`));
      expect(readFileSync(join(cg.dirs.pids!, 'pids.max'), 'utf8')).toBe('512');
      writeFileSync(join(cg.dirs.memory!, 'memory.oom_control'), 'oom_kill_disable 0\nunder_oom 0\noom_kill 0\n');
      mkdirSync(join(cg.dirs.memory!, 'runc'));
      writeFileSync(join(cg.dirs.memory!, 'runc', 'memory.oom_control'), 'oom_kill_disable 0\nunder_oom 0\noom_kill 2\n');
      expect(await cg.oomKills()).toBe(2);
    } finally {
      rmSync(v1, { recursive: true, force: true });
    }
    const none = fake({ 'nothing-here': '' });
    try {
      const m = new CgroupManager({ root: none, selfCgroup: '0::/\n' });
      expect(m.mechanism()).toBe('rlimit');
      expect(await m.create('x', {})).toBeUndefined();
    } finally {
      rmSync(none, { recursive: true, force: true });
    }
  });
});

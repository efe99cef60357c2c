/**
 * Process bookkeeping for benchmarks that start sandboxes, containers and VMs: the processes a bench
 * started (directly or through Skiff) are recorded while it runs and checked to be gone at the end;
 * memory is read per process (PSS) and per cgroup.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** ProcInfo identifies one process for its lifetime: a pid is reused, a (pid, start time) pair is not. */
export interface ProcInfo {
  pid: number;
  ppid: number;
  /** Start time in clock ticks since boot (field 22 of /proc/PID/stat). */
  start: number;
  comm: string;
}

/** procStat reads /proc/PID/stat, or undefined when the process is gone. */
export function procStat(pid: number): ProcInfo | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // comm is in parentheses and may itself hold spaces or parentheses: split after the last one.
  const close = text.lastIndexOf(')');
  const comm = text.slice(text.indexOf('(') + 1, close);
  const f = text.slice(close + 2).split(' ');
  // f[0] is field 3 (state): ppid is field 4, starttime field 22.
  return { pid, ppid: Number(f[1]), start: Number(f[19]), comm };
}

/** allProcs lists every process on the host. */
export function allProcs(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const p = procStat(Number(name));
    if (p) out.push(p);
  }
  return out;
}

/** descendants lists the processes below `root` (not `root` itself). */
export function descendants(root: number, procs = allProcs()): ProcInfo[] {
  const children = new Map<number, ProcInfo[]>();
  for (const p of procs) {
    const list = children.get(p.ppid);
    if (list) list.push(p);
    else children.set(p.ppid, [p]);
  }
  const out: ProcInfo[] = [];
  const stack = [root];
  while (stack.length) {
    for (const c of children.get(stack.pop()!) ?? []) {
      out.push(c);
      stack.push(c.pid);
    }
  }
  return out;
}

/** cmdline is a process's argv joined with spaces ('' when it is gone or a kernel thread). */
export function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

/** pssBytes is a process's proportional set size (shared pages divided among their users), or 0 when gone. */
export function pssBytes(pid: number): number {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** rssBytes is a process's resident set size, or 0 when gone. */
export function rssBytes(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** A cgroup directory holding a replica, with what it is charged and who is in it. */
export interface CgroupUsage {
  dir: string;
  memoryBytes: number;
  pids: number[];
}

/**
 * memoryCgroupsOf finds the memory cgroups whose name starts with `prefix` directly below the memory
 * cgroup of process `pid` (cgroup v1 `memory` hierarchy, or the v2 unified one), and reads their
 * charge (`memory.usage_in_bytes` / `memory.current`) and member processes.
 */
export function memoryCgroupsOf(pid: number, prefix: string, root = '/sys/fs/cgroup'): CgroupUsage[] {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
  } catch {
    return [];
  }
  const bases: Array<{ dir: string; file: string }> = [];
  for (const line of text.split('\n')) {
    const [, ctrls, path] = line.split(':') as [string, string | undefined, string | undefined];
    if (path === undefined) continue;
    if (ctrls!.split(',').includes('memory')) bases.push({ dir: join(root, 'memory', path), file: 'memory.usage_in_bytes' });
    if (ctrls === '') {
      bases.push({ dir: join(root, path), file: 'memory.current' });
      bases.push({ dir: join(root, 'unified', path), file: 'memory.current' });
    }
  }
  const out: CgroupUsage[] = [];
  for (const b of bases) {
    let names: string[];
    try {
      names = readdirSync(b.dir).filter((n) => n.startsWith(prefix));
    } catch {
      continue;
    }
    for (const n of names) {
      const dir = join(b.dir, n);
      try {
        const memoryBytes = Number(readFileSync(join(dir, b.file), 'utf8').trim());
        const pids = readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
        out.push({ dir, memoryBytes, pids });
      } catch {
        // no memory accounting in this hierarchy, or the cgroup went away meanwhile
      }
    }
  }
  return out;
}

/**
 * ProcessLedger records every process below the bench (Skiff, its replicas, the bare peers) while the
 * bench runs, sampling the tree periodically, so that at the end it can say which of them are still
 * alive. Processes whose command line names `marker` (the bench's temporary directory) count too,
 * even when they were reparented away from the bench's tree between two samples.
 */
export class ProcessLedger {
  private readonly seen = new Map<string, ProcInfo>();
  /** What already ran below the root when the ledger was made (tsx's esbuild service): not the bench's doing. */
  private readonly baseline: Set<string>;
  private timer?: NodeJS.Timeout;

  constructor(private readonly root: number, private readonly marker: string) {
    this.baseline = new Set(descendants(root).map((p) => `${p.pid}/${p.start}`));
  }

  /** start samples the tree every `everyMs` until stop(). */
  start(everyMs = 200): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.sample();
  }

  /** sample records the processes below the root now. */
  sample(): void {
    for (const p of descendants(this.root)) {
      const key = `${p.pid}/${p.start}`;
      if (!this.baseline.has(key)) this.seen.set(key, p);
    }
  }

  /** How many distinct processes were seen. */
  get count(): number {
    return this.seen.size;
  }

  /** leftovers lists recorded processes that still run, and any process naming the marker. */
  leftovers(): Array<ProcInfo & { cmd: string }> {
    const out = new Map<string, ProcInfo & { cmd: string }>();
    for (const p of this.seen.values()) {
      const now = procStat(p.pid);
      if (now && now.start === p.start) out.set(`${p.pid}`, { ...now, cmd: cmdline(p.pid) });
    }
    for (const p of allProcs()) {
      if (p.pid === this.root) continue;
      const cmd = cmdline(p.pid);
      if (cmd.includes(this.marker)) out.set(`${p.pid}`, { ...p, cmd });
    }
    return [...out.values()];
  }
}

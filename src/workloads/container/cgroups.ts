import { accessSync, constants, existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import type { LimitsMechanism, ReplicaResources } from '../types.js';

/** Limits a replica gets when its spec leaves a field out. */
export const DEFAULT_RESOURCES: Required<Omit<ReplicaResources, 'cpuMillis'>> = {
  memoryBytes: 256 * 1024 * 1024,
  pids: 512,
};

const V1_CONTROLLERS = ['memory', 'pids', 'cpu'] as const;
const CFS_PERIOD_US = 100_000;

/** Options of the cgroup placement. */
export interface CgroupOptions {
  /** Where the cgroup file systems are mounted; default `/sys/fs/cgroup`. */
  root?: string;
  /**
   * The cgroup (path inside each hierarchy) under which replica cgroups are made; default this
   * process's own cgroup in each hierarchy, so replicas stay inside whatever limits Skiff itself has.
   */
  parent?: string;
  /** This process's /proc/self/cgroup text (tests pass a fake one with a fake root). */
  selfCgroup?: string;
}

/** What a host offers: which mechanism, and under which directories replica cgroups go. */
interface Layout {
  mechanism: LimitsMechanism;
  /** v2: one base directory; v1: one per controller (memory, pids, cpu). */
  bases: Partial<Record<'unified' | (typeof V1_CONTROLLERS)[number], string>>;
}

/**
 * CgroupManager finds the limits mechanism this host offers (cgroup v2 with the memory and pids
 * controllers delegated, else writable cgroup v1 memory/pids/cpu hierarchies, else none: rlimits)
 * and makes one cgroup per replica. Names carry Skiff's PID so a later Skiff can remove what a
 * killed one left.
 */
export class CgroupManager {
  private readonly root: string;
  private layoutCache?: Layout;
  private swept = false;
  /** This process's cgroup path in each hierarchy, by controller (`''` for cgroup v2). */
  private readonly own = new Map<string, string>();

  constructor(private readonly options: CgroupOptions = {}) {
    this.root = options.root ?? '/sys/fs/cgroup';
  }

  /** mechanism is what replicas started now will get. */
  mechanism(): LimitsMechanism {
    return this.layout().mechanism;
  }

  /**
   * create makes the replica's cgroup with its limits, or returns undefined when the host offers no
   * writable cgroup (the caller then sets rlimits).
   */
  async create(id: string, resources: ReplicaResources): Promise<ReplicaCgroup | undefined> {
    const layout = this.layout();
    if (layout.mechanism !== 'cgroup-v1' && layout.mechanism !== 'cgroup-v2') return undefined;
    if (!this.swept) {
      this.swept = true;
      await this.sweep(layout);
    }
    const name = `skiff-${process.pid}-${id.replace(/[^A-Za-z0-9_.-]/g, '_')}`;
    const memory = resources.memoryBytes ?? DEFAULT_RESOURCES.memoryBytes;
    const pids = resources.pids ?? DEFAULT_RESOURCES.pids;
    const cg = new ReplicaCgroup(layout.mechanism, {});
    try {
      if (layout.mechanism === 'cgroup-v2') {
        const dir = join(layout.bases.unified!, name);
        await mkdir(dir);
        cg.dirs.unified = dir;
        await writeFile(join(dir, 'memory.max'), String(memory));
        if (existsSync(join(dir, 'memory.swap.max'))) await writeFile(join(dir, 'memory.swap.max'), '0');
        await writeFile(join(dir, 'pids.max'), String(pids));
        if (resources.cpuMillis !== undefined) {
          await writeFile(join(dir, 'cpu.max'), `${Math.max(1000, Math.round(resources.cpuMillis * 100))} ${CFS_PERIOD_US}`);
        }
      } else {
        for (const ctrl of V1_CONTROLLERS) {
          const base = layout.bases[ctrl];
          if (!base) continue;
          const dir = join(base, name);
          await mkdir(dir);
          cg.dirs[ctrl] = dir;
        }
        const m = cg.dirs.memory!;
        await writeFile(join(m, 'memory.limit_in_bytes'), String(memory));
        // Without this the limit would cover RAM only and a host with swap would let the replica page out.
        if (existsSync(join(m, 'memory.memsw.limit_in_bytes'))) await writeFile(join(m, 'memory.memsw.limit_in_bytes'), String(memory));
        await writeFile(join(cg.dirs.pids!, 'pids.max'), String(pids));
        if (resources.cpuMillis !== undefined && cg.dirs.cpu) {
          await writeFile(join(cg.dirs.cpu, 'cpu.cfs_period_us'), String(CFS_PERIOD_US));
          await writeFile(join(cg.dirs.cpu, 'cpu.cfs_quota_us'), String(Math.max(1000, Math.round(resources.cpuMillis * 100))));
        }
      }
    } catch (err) {
      await cg.remove();
      throw err;
    }
    return cg;
  }

  private layout(): Layout {
    this.layoutCache ??= this.detect();
    return this.layoutCache;
  }

  private detect(): Layout {
    let self: string;
    try {
      self = this.options.selfCgroup ?? readFileSync('/proc/self/cgroup', 'utf8');
    } catch {
      return { mechanism: 'rlimit', bases: {} };
    }
    const own = this.own;
    for (const line of self.split('\n')) {
      const m = /^\d+:([^:]*):(.*)$/.exec(line);
      if (!m) continue;
      for (const c of m[1]!.split(',')) own.set(c, m[2]!);
    }
    const at = (ctrl: string) => this.options.parent ?? own.get(ctrl) ?? '/';
    for (const mount of [this.root, join(this.root, 'unified')]) {
      const controllers = readOr(join(mount, 'cgroup.controllers'));
      if (controllers === undefined) continue;
      const base = join(mount, at(''));
      const available = (readOr(join(base, 'cgroup.subtree_control')) ?? '').split(/\s+/);
      if (available.includes('memory') && available.includes('pids') && writable(base)) return { mechanism: 'cgroup-v2', bases: { unified: base } };
    }
    const bases: Layout['bases'] = {};
    for (const ctrl of V1_CONTROLLERS) {
      const base = join(this.root, ctrl, at(ctrl));
      if (existsSync(join(base, 'cgroup.procs')) && writable(base)) bases[ctrl] = base;
    }
    if (bases.memory && bases.pids) return { mechanism: 'cgroup-v1', bases };
    return { mechanism: 'rlimit', bases: {} };
  }

  /**
   * sweep removes replica cgroups of Skiff processes that no longer run (killed before cleaning up),
   * in every hierarchy: runc makes its own in controllers Skiff does not use.
   */
  private async sweep(layout: Layout): Promise<void> {
    const bases = new Set(Object.values(layout.bases));
    if (layout.mechanism === 'cgroup-v1') {
      for (const e of readdirOr(this.root)) bases.add(join(this.root, e, this.own.get(e) ?? this.own.get(`name=${e}`) ?? '/'));
    }
    for (const base of bases) {
      for (const name of readdirOr(base)) {
        const m = /^skiff-(\d+)-/.exec(name);
        if (!m || alive(Number(m[1]))) continue;
        // Only pids(), killAll() and remove() are used here, which treat every directory alike.
        const cg = new ReplicaCgroup(layout.mechanism, { unified: join(base, name) });
        await cg.killAll();
        await cg.remove().catch(() => undefined);
      }
    }
  }
}

/** ReplicaCgroup is one replica's cgroup (one directory per v1 controller, or one v2 directory). */
export class ReplicaCgroup {
  constructor(
    readonly mechanism: LimitsMechanism,
    readonly dirs: Partial<Record<'unified' | (typeof V1_CONTROLLERS)[number], string>>,
  ) {}

  /** procsFiles are the files a process writes its PID to in order to join. */
  procsFiles(): string[] {
    return Object.values(this.dirs).map((d) => join(d, 'cgroup.procs'));
  }

  /** Directory holding the memory accounting. */
  private memoryDir(): string | undefined {
    return this.dirs.unified ?? this.dirs.memory;
  }

  /**
   * oomKills counts the processes the kernel killed for exceeding the memory limit, nested cgroups
   * included: cgroup v1 counts a kill only in the victim's own cgroup, which is runc's when runc runs it.
   */
  async oomKills(): Promise<number> {
    const dir = this.memoryDir();
    if (!dir) return 0;
    const file = this.dirs.unified ? 'memory.events' : 'memory.oom_control';
    let total = 0;
    const walk = async (d: string): Promise<void> => {
      const text = await readFile(join(d, file), 'utf8').catch(() => '');
      total += Number(/^oom_kill (\d+)/m.exec(text)?.[1] ?? 0);
      // v2 counts a descendant's kills in its ancestors' memory.events already.
      if (!this.dirs.unified) for (const e of readdirOr(d)) await walk(join(d, e));
    };
    await walk(dir);
    return total;
  }

  /** memoryBytes is the current charge (synchronous: stats() is). */
  memoryBytes(): number | undefined {
    const dir = this.memoryDir();
    if (!dir) return undefined;
    const text = readOr(join(dir, this.dirs.unified ? 'memory.current' : 'memory.usage_in_bytes'));
    return text === undefined ? undefined : Number(text.trim());
  }

  /** pids lists every process in the cgroup, nested cgroups included. */
  async pids(): Promise<number[]> {
    const out = new Set<number>();
    const walk = async (dir: string): Promise<void> => {
      const text = await readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => '');
      for (const p of text.split('\n')) if (p.trim()) out.add(Number(p));
      for (const e of readdirOr(dir)) await walk(join(dir, e));
    };
    for (const d of Object.values(this.dirs)) await walk(d);
    return [...out];
  }

  /** killAll sends SIGKILL to every process left in the cgroup. */
  async killAll(): Promise<void> {
    for (const pid of await this.pids()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }

  /**
   * remove deletes the cgroup (nested ones first, as a runtime may have made some). The kernel
   * refuses (EBUSY) while an exiting process is still accounted, so it retries for a while.
   */
  async remove(): Promise<void> {
    const deadline = Date.now() + 5000;
    const rm = async (dir: string): Promise<void> => {
      for (const e of readdirOr(dir)) await rm(join(dir, e));
      for (;;) {
        try {
          await rmdir(dir);
          return;
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'ENOENT') return;
          if (code !== 'EBUSY' || Date.now() > deadline) throw err;
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    };
    for (const d of Object.values(this.dirs)) await rm(d);
  }
}

function readOr(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** readdirOr lists the sub-cgroups of a cgroup directory (its directories), or nothing. */
function readdirOr(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
  } catch {
    return [];
  }
}

function writable(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK);
    accessSync(join(dir, 'cgroup.procs'), constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * alive says whether a process still runs. A killed process whose parent has not reaped it yet is a
 * zombie: signal 0 still reaches it, but it holds nothing and its cgroups are stale, so it counts as gone.
 */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  const stat = readOr(`/proc/${pid}/stat`);
  // The state follows the command name in parentheses, which may itself contain ") ".
  return stat === undefined || stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
}

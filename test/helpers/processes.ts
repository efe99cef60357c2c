import { readdirSync, readFileSync } from 'node:fs';

/** descendants lists the PIDs of every process under `root` (read from /proc). */
export function descendants(root: number): number[] {
  const parent = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      parent.set(Number(d), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [c, pp] of parent) if (pp === p) {
      out.push(c);
      walk(c);
    }
  };
  walk(root);
  return out;
}

/** alive tells whether a process still runs (a zombie does not count). */
export const alive = (pid: number): boolean => {
  try {
    // A zombie still answers kill(0); /proc/PID/stat's state tells.
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

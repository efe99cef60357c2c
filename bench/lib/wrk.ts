import { execFileSync, spawnSync } from 'node:child_process';

export interface WrkResult {
  rps: number;
  p50_us: number;
  p99_us: number;
}

/** ensureTool returns true when a command exists, installing its Debian package (as root) when absent. */
export function ensureTool(cmd: string, pkg = cmd): boolean {
  const has = () => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
  if (has()) return true;
  if (process.getuid?.() !== 0) return false;
  process.stderr.write(`installing ${pkg} from Debian for the benchmark...\n`);
  spawnSync('sh', ['-c', `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${pkg}`], { stdio: 'inherit' });
  return has();
}

function toUs(v: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(v.trim());
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n : m[2] === 'ms' ? n * 1000 : n * 1e6;
}

/** wrk runs wrk against a loopback URL and parses requests/s and the latency percentiles. */
export function wrk(url: string, opts: { connections?: number; threads?: number; seconds?: number } = {}): WrkResult {
  if (!/^http:\/\/(127\.|\[::1\]|localhost)/.test(url)) throw new Error(`benchmarks only target loopback, not ${url}`);
  const out = execFileSync('wrk', ['-c', String(opts.connections ?? 50), '-t', String(opts.threads ?? 2), '-d', `${opts.seconds ?? 10}s`, '--latency', url], { encoding: 'utf8' });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
  const pct = (p: string) => toUs(new RegExp(`^\\s+${p}%\\s+(\\S+)`, 'm').exec(out)?.[1] ?? '');
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out);
  if (non2xx) process.stderr.write(`warning: ${non2xx[1]} non-2xx responses from ${url}\n`);
  return { rps, p50_us: pct('50'), p99_us: pct('99') };
}

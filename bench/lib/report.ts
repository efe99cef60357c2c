import { writeFileSync } from 'node:fs';

/** Figures maps a figure name carrying its unit (`p99_us`, `rps`, `rss_mb`) to a number. */
export type Figures = Record<string, number>;

/** BenchReport is the JSON shape every benchmark writes with `--json FILE` (see CONTRACTS.md). */
export interface BenchReport {
  name: string;
  figures: Figures;
  peers: Record<string, Figures>;
}

/** percentile returns the p-th percentile (0..100) of already sorted samples. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx]!;
}

/** sampleNs runs fn `iterations` times after `warmup` runs and returns sorted per-call durations in µs. */
export function sampleUs(fn: () => unknown, iterations: number, warmup = Math.min(1000, iterations)): Float64Array {
  for (let i = 0; i < warmup; i++) fn();
  const out = new Float64Array(iterations);
  for (let i = 0; i < iterations; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    out[i] = Number(process.hrtime.bigint() - t0) / 1000;
  }
  return out.sort();
}

/** sampleUsAsync is sampleUs for async work, awaited one call at a time. */
export async function sampleUsAsync(fn: () => Promise<unknown>, iterations: number, warmup = Math.min(200, iterations)): Promise<Float64Array> {
  for (let i = 0; i < warmup; i++) await fn();
  const out = new Float64Array(iterations);
  for (let i = 0; i < iterations; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    out[i] = Number(process.hrtime.bigint() - t0) / 1000;
  }
  return out.sort();
}

/** parseBenchArgs reads the common `--json FILE` option. */
export function parseBenchArgs(argv = process.argv.slice(2)): { json?: string; rest: string[] } {
  const rest: string[] = [];
  let json: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--json') json = argv[++i];
    else rest.push(argv[i]!);
  }
  return { json, rest };
}

/** positiveOption reads `NAME VALUE` from a bench's other arguments: a positive number, else the default. */
export function positiveOption(rest: readonly string[], name: string, dflt: number): number {
  const i = rest.indexOf(name);
  const v = i >= 0 ? Number(rest[i + 1]) : dflt;
  return Number.isFinite(v) && v > 0 ? v : dflt;
}

// Two decimals, but three significant digits below 1: a fraction like 0.0013 must not print as 0.
const round = (n: number) => (!Number.isFinite(n) ? n : Math.abs(n) >= 1 || n === 0 ? Math.round(n * 100) / 100 : Number(n.toPrecision(3)));

/** cleanReport rounds every figure (two decimals, three significant digits below 1), the form the JSON files hold. */
export function cleanReport(report: BenchReport): BenchReport {
  return {
    name: report.name,
    figures: Object.fromEntries(Object.entries(report.figures).map(([k, v]) => [k, round(v)])),
    peers: Object.fromEntries(Object.entries(report.peers).map(([p, f]) => [p, Object.fromEntries(Object.entries(f).map(([k, v]) => [k, round(v)]))])),
  };
}

/** emit prints the human table and, when asked, writes the JSON report. */
export function emit(report: BenchReport, jsonPath?: string): void {
  const rows: Array<[string, string, number]> = [];
  for (const [k, v] of Object.entries(report.figures)) rows.push(['skiff', k, round(v)]);
  for (const [peer, figs] of Object.entries(report.peers)) for (const [k, v] of Object.entries(figs)) rows.push([peer, k, round(v)]);
  const w0 = Math.max(6, ...rows.map((r) => r[0].length));
  const w1 = Math.max(6, ...rows.map((r) => r[1].length));
  process.stdout.write(`\n${report.name}\n${'who'.padEnd(w0)}  ${'figure'.padEnd(w1)}  value\n`);
  for (const [a, b, c] of rows) process.stdout.write(`${a.padEnd(w0)}  ${b.padEnd(w1)}  ${c}\n`);
  if (jsonPath) writeFileSync(jsonPath, JSON.stringify(cleanReport(report), null, 2) + '\n');
}

/**
 * The runtime-classes bench's figures: how samples become figures, and where the report goes (the
 * `--json` file and always `DATA_DIR/bench/runtime-classes.json`, which `skiff advise` reads).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

import { type BenchReport, cleanReport, type Figures, percentile } from './report.js';

/** Summary of a set of timings. */
export interface Summary {
  median: number;
  p90: number;
  min: number;
  max: number;
  n: number;
}

/** summarize sorts samples and reads the median, p90, min and max (all NaN for none). */
export function summarize(samples: readonly number[]): Summary {
  const s = [...samples].sort((a, b) => a - b);
  return { median: percentile(s, 50), p90: percentile(s, 90), min: s[0] ?? NaN, max: s[s.length - 1] ?? NaN, n: s.length };
}

/**
 * putTimings sets `PREFIX_ms` (the median) and `PREFIX_p90_ms` from samples in milliseconds; nothing
 * when there are none, so a class that was not measured has no figure rather than a NaN.
 */
export function putTimings(figures: Figures, prefix: string, samplesMs: readonly number[]): void {
  if (samplesMs.length === 0) return;
  const s = summarize(samplesMs);
  figures[`${prefix}_ms`] = s.median;
  figures[`${prefix}_p90_ms`] = s.p90;
}

/** perGiB is how many things of `bytesEach` fit in a GiB (0 for a non-positive size). */
export function perGiB(bytesEach: number): number {
  return bytesEach > 0 ? Math.floor(2 ** 30 / bytesEach) : 0;
}

/**
 * defaultFiguresPath is where `skiff advise` looks for the bench's figures by default:
 * DATA_DIR/bench/runtime-classes.json, DATA_DIR being $SKIFF_DATA_DIR (as the CLI reads it, against the
 * working directory) or `.skiff` in the repository (where `skiff up` and `skiff advise` run from).
 */
export function defaultFiguresPath(repoRoot: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(env.SKIFF_DATA_DIR ? resolve(env.SKIFF_DATA_DIR) : join(repoRoot, '.skiff'), 'bench', 'runtime-classes.json');
}

/** writeReport writes the report, rounded as `emit` rounds it, to each path (making parent directories); returns the paths. */
export function writeReport(report: BenchReport, paths: ReadonlyArray<string | undefined>): string[] {
  const text = JSON.stringify(cleanReport(report), null, 2) + '\n';
  const written: string[] = [];
  for (const p of new Set(paths.filter((x): x is string => !!x).map((x) => resolve(x)))) {
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, text);
    written.push(p);
  }
  return written;
}

/**
 * Observability benchmark: what it costs to look at Skiff. Each figure has its own step below, run
 * against one `skiff up --demo`; a step adds its figures to the report.
 *
 * - `ui_first_paint_ms`: the dashboard's first paint in chromium (bench/lib/ui-first-paint.ts).
 * - `ui_chart_frame_p99_ms`, `ui_chart_frame_max_ms`, `ui_chart_long_tasks`, `ui_chart_dropped_frames`:
 *   the demo Function's charts in chromium while the stream ticks ten times a second and requests
 *   flow (bench/lib/ui-chart-smoothness.ts).
 * - `metrics_scrape_1000_routes_ms`: the time of one `GET /metrics` (median of several) from a Skiff
 *   with 1,000 Routes that have all had traffic, so every route's series and histogram is rendered.
 *
 *   npm run bench -- observability [--json FILE] [--scrapes N]
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { emit, type Figures, parseBenchArgs, percentile } from './lib/report.js';
import { type BenchSkiff, startBenchSkiff } from './lib/skiff.js';
import { SkiffApi } from './lib/skiff-api.js';
import { uiChartSmoothness } from './lib/ui-chart-smoothness.js';
import { uiFirstPaintMs } from './lib/ui-first-paint.js';

const ROOT = resolve(import.meta.dirname, '..');
const { json, rest } = parseBenchArgs();
const scrapes = Number(rest[rest.indexOf('--scrapes') + 1] ?? 15) || 15;
const ROUTES = 1000;
/** Requests (and applies) in flight at once while the routes are set up and warmed. */
const PARALLEL = 16;

/** A step measures one thing against the running Skiff and returns its figures. */
type Step = (s: BenchSkiff) => Promise<Figures>;

/** inParallel runs `work(i)` for i in [0, n) with at most `width` running at once. */
async function inParallel(n: number, width: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < n) await work(next++);
  }));
}

/** scrapeWith1000Routes applies 1,000 Routes to the demo Function, sends each one request, then times scrapes. */
const scrapeWith1000Routes: Step = async (s) => {
  const api = new SkiffApi(s.api, s.token);
  await inParallel(ROUTES, PARALLEL, async (i) => {
    await api.apply({
      apiVersion: 'skiff.dev/v1',
      kind: 'Route',
      metadata: { name: `bench-${i}`, namespace: 'default' },
      spec: { http: [{ match: [{ uri: { prefix: `/bench-${i}/` } }], route: [{ destination: { function: 'hello' } }] }] },
    });
  });
  // The route controller applies routes in batches: wait until the last one serves.
  const until = Date.now() + 60_000;
  while ((await fetch(`${s.gateway}/bench-${ROUTES - 1}/`)).status !== 200) {
    if (Date.now() > until) throw new Error(`route bench-${ROUTES - 1} did not serve within 60 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
  await inParallel(ROUTES, PARALLEL, async (i) => {
    const r = await fetch(`${s.gateway}/bench-${i}/`);
    await r.arrayBuffer();
    if (r.status !== 200) throw new Error(`GET /bench-${i} answered ${r.status}`);
  });

  const scrape = async () => {
    const t0 = performance.now();
    const r = await fetch(`${s.api}/metrics`, { headers: { authorization: `Bearer ${s.token}` } });
    const body = await r.text();
    const ms = performance.now() - t0;
    if (r.status !== 200) throw new Error(`GET /metrics answered ${r.status}`);
    return { ms, body };
  };
  const first = await scrape();
  const series = first.body.split('\n').filter((l) => l.startsWith('skiff_gateway_requests_total{route="default/bench-')).length;
  if (series !== ROUTES) throw new Error(`the scrape shows ${series} routes with requests, expected ${ROUTES}`);
  for (let i = 0; i < 2; i++) await scrape();
  const times: number[] = [];
  for (let i = 0; i < scrapes; i++) times.push((await scrape()).ms);
  times.sort((a, b) => a - b);
  return {
    metrics_scrape_1000_routes_ms: percentile(times, 50),
    metrics_scrape_1000_routes_p90_ms: percentile(times, 90),
    metrics_scrape_1000_routes_kb: Buffer.byteLength(first.body) / 1024,
  };
};

/** uiFirstPaint: the dashboard's first paint in chromium, on the demo as a newcomer first sees it. */
const uiFirstPaint: Step = async (s) => {
  const { medianMs, samplesMs } = await uiFirstPaintMs({ api: s.api });
  samplesMs.sort((a, b) => a - b);
  return { ui_first_paint_ms: medianMs, ui_first_paint_max_ms: samplesMs[samplesMs.length - 1]! };
};

/** uiChartSmooth: the demo Function's charts at ten updates a second, with requests flowing. */
const uiChartSmooth: Step = async (s) => {
  const r = await uiChartSmoothness({ api: s.api, token: s.token, gateway: s.gateway });
  return {
    ui_chart_frame_p50_ms: r.frameP50Ms,
    ui_chart_frame_p99_ms: r.frameP99Ms,
    ui_chart_frame_max_ms: r.frameMaxMs,
    ui_chart_long_tasks: r.longTasks,
    ui_chart_long_task_ms: r.longTaskMs,
    ui_chart_dropped_frames: r.droppedFrames,
    ui_chart_frames: r.frames,
    ui_chart_updates_per_s: r.updatesPerS,
  };
};

/** The steps, in order; each sees the same Skiff and what the earlier ones left in it (the dashboard's come before the 1,000 routes). */
const STEPS: Step[] = [uiFirstPaint, uiChartSmooth, scrapeWith1000Routes];

async function main(): Promise<void> {
  if (!existsSync(join(ROOT, 'dist', 'cli', 'main.js'))) throw new Error('run `npm run build` first');
  const dataDir = mkdtempSync(join(tmpdir(), 'skiff-bench-obs-'));
  const s = await startBenchSkiff(dataDir, { demo: true });
  const figures: Figures = {};
  try {
    for (const step of STEPS) Object.assign(figures, await step(s));
  } finally {
    s.proc.kill('SIGTERM');
    await new Promise((r) => s.proc.once('exit', r));
    rmSync(dataDir, { recursive: true, force: true });
  }
  emit({ name: 'observability', figures, peers: {} }, json);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(2);
});

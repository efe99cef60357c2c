/**
 * ui_chart_*: how smoothly the dashboard's charts run while they update ten times a second. The page
 * is opened in Debian's chromium at `/ui/?interval=100`, which asks the server's event stream for a
 * tick every 100 ms, on the demo Function's traffic view; real requests go to the Function meanwhile,
 * so each tick carries a point and the page's own path (stream → charts' columns → uPlot `setData`,
 * once per animation frame) does the work. In the page, a requestAnimationFrame loop records frame
 * intervals and a PerformanceObserver records long tasks (main-thread work over 50 ms).
 */
import { chromium, type Page } from 'playwright-core';

import { percentile } from './report.js';

export interface UiChartSmoothnessOptions {
  /** The API URL of a running Skiff (`http://127.0.0.1:PORT`). */
  api: string;
  /** Its bearer token; the page logs in through the `#token=` fragment. */
  token: string;
  /** Its gateway URL: with it, requests go to the demo Function while the charts are measured. */
  gateway?: string;
  /** The stream's tick interval in ms (default 100: ten updates a second). */
  intervalMs?: number;
  /** How long to measure, in ms (default 5000), after the charts have taken a few ticks. */
  durationMs?: number;
  /** Requests per second sent to the demo Function meanwhile (default 100). */
  rps?: number;
  /** Chromium to drive (default Debian's /usr/bin/chromium). */
  executablePath?: string;
}

export interface UiChartSmoothness {
  frameP50Ms: number;
  frameP99Ms: number;
  frameMaxMs: number;
  frames: number;
  /** Frame intervals longer than twice the median. */
  droppedFrames: number;
  longTasks: number;
  longTaskMs: number;
  /** Points the charts took during the measurement, per second (the updates that really happened). */
  updatesPerS: number;
}

/**
 * Run in the page for `ms`: frame intervals, long tasks and how many points the charts took. Passed
 * as source text, since a TypeScript runner (tsx, vitest) may wrap a function argument in helpers the
 * page lacks.
 */
const MEASURE = (ms: number) => `(async () => {
  const charts = document.querySelector('.charts');
  const longTasks = [];
  const obs = new PerformanceObserver((list) => { for (const e of list.getEntries()) longTasks.push(e.duration); });
  obs.observe({ type: 'longtask' });
  const points0 = Number(charts.dataset.points);
  const frames = [];
  const t0 = await new Promise((r) => requestAnimationFrame(r));
  let last = t0;
  await new Promise((resolve) => {
    const step = (now) => {
      frames.push(now - last);
      last = now;
      if (now - t0 < ${ms}) requestAnimationFrame(step);
      else resolve();
    };
    requestAnimationFrame(step);
  });
  obs.disconnect();
  return { frames, longTasks, points: Number(charts.dataset.points) - points0, elapsedMs: last - t0 };
})()`;

/** uiChartSmoothness opens the demo Function's charts with ten ticks a second and measures frames and long tasks. */
export async function uiChartSmoothness(opts: UiChartSmoothnessOptions): Promise<UiChartSmoothness> {
  const intervalMs = opts.intervalMs ?? 100;
  const durationMs = opts.durationMs ?? 5000;
  const rps = opts.rps ?? 100;
  // --no-sandbox: CI runs as root, where chromium refuses its own sandbox.
  const browser = await chromium.launch({ executablePath: opts.executablePath ?? '/usr/bin/chromium', args: ['--no-sandbox'] });
  const traffic = opts.gateway ? sendTraffic(`${opts.gateway}/hello`, rps) : undefined;
  try {
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    await page.goto(`${opts.api}/ui/?interval=${intervalMs}#token=${encodeURIComponent(opts.token)}`, { waitUntil: 'load', timeout: 15_000 });
    await page.waitForSelector('header nav', { timeout: 15_000 });
    await page.evaluate(`location.hash = '#/traffic/function/default/hello'`);
    await until(page, `document.querySelectorAll('.charts canvas').length >= 3`);
    // A few ticks in first, so uPlot, the stream and the JIT are past their first runs.
    const start = Number(await page.getAttribute('.charts', 'data-points'));
    await until(page, `Number(document.querySelector('.charts').dataset.points) >= ${start + 10}`);
    const r = (await page.evaluate(MEASURE(durationMs))) as { frames: number[]; longTasks: number[]; points: number; elapsedMs: number };
    const sorted = r.frames.slice().sort((a, b) => a - b);
    const p50 = percentile(sorted, 50);
    const round = (v: number) => Math.round(v * 10) / 10;
    return {
      frameP50Ms: round(p50),
      frameP99Ms: round(percentile(sorted, 99)),
      frameMaxMs: round(sorted[sorted.length - 1] ?? 0),
      frames: sorted.length,
      droppedFrames: sorted.filter((f) => f > 2 * p50).length,
      longTasks: r.longTasks.length,
      longTaskMs: round(r.longTasks.reduce((a, b) => a + b, 0)),
      updatesPerS: round(r.points / (r.elapsedMs / 1000)),
    };
  } finally {
    await traffic?.stop();
    await browser.close();
  }
}

/**
 * until polls `expr` in the page until it is true; page.waitForFunction would compile it with
 * `new Function`, which the dashboard's CSP (no 'unsafe-eval') refuses.
 */
async function until(page: Page, expr: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await page.evaluate(expr))) {
    if (Date.now() > deadline) throw new Error(`the dashboard did not reach \`${expr}\` within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** sendTraffic sends about `rps` GET requests a second to `url`, in small batches, until stopped. */
function sendTraffic(url: string, rps: number): { stop: () => Promise<void> } {
  const batch = Math.max(1, Math.round(rps / 20));
  let inFlight = Promise.resolve();
  const timer = setInterval(() => {
    inFlight = Promise.all(Array.from({ length: batch }, () => fetch(url).then((r) => r.arrayBuffer(), () => undefined))).then(() => undefined);
  }, 50);
  return {
    stop: async () => {
      clearInterval(timer);
      await inFlight;
    },
  };
}

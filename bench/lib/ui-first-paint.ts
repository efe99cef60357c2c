/**
 * ui_first_paint_ms: how long the dashboard takes to first paint in Debian's chromium on loopback,
 * from navigation start, over fresh browser contexts (a cold cache each time, as a newcomer's first
 * visit). The caller starts Skiff and passes its API URL; the browser is launched and closed here.
 */
import { chromium } from 'playwright-core';

export interface UiFirstPaintOptions {
  /** The API URL of a running Skiff (`http://127.0.0.1:PORT`). */
  api: string;
  /** Page loads measured after one warm-up load (default 7). */
  runs?: number;
  /** Chromium to drive (default Debian's /usr/bin/chromium). */
  executablePath?: string;
}

export interface UiFirstPaint {
  /** Median first paint (ms) of the measured loads. */
  medianMs: number;
  samplesMs: number[];
}

/**
 * Read in the page: the paint entry, or the first one the observer reports. Passed as source text,
 * since a TypeScript runner (tsx, vitest) may wrap a function argument in helpers the page lacks.
 */
const FIRST_PAINT = `new Promise((resolve) => {
  const e = performance.getEntriesByName('first-paint')[0] || performance.getEntriesByName('first-contentful-paint')[0];
  if (e) return resolve(e.startTime);
  new PerformanceObserver((list, obs) => { obs.disconnect(); resolve(list.getEntries()[0].startTime); }).observe({ type: 'paint', buffered: true });
})`;

/** uiFirstPaintMs loads `/ui` in fresh contexts and returns the median `first-paint` time. */
export async function uiFirstPaintMs(opts: UiFirstPaintOptions): Promise<UiFirstPaint> {
  const runs = opts.runs ?? 7;
  if (!Number.isInteger(runs) || runs < 1) throw new RangeError(`runs must be a positive integer, not ${runs}`);
  // --no-sandbox: CI runs as root, where chromium refuses its own sandbox.
  const browser = await chromium.launch({ executablePath: opts.executablePath ?? '/usr/bin/chromium', args: ['--no-sandbox'] });
  const samples: number[] = [];
  try {
    // The first load pays for the browser's own start-up (GPU process, fonts); it is not counted.
    for (let i = 0; i <= runs; i++) {
      const context = await browser.newContext();
      try {
        const page = await context.newPage();
        await page.goto(`${opts.api}/ui`, { waitUntil: 'load', timeout: 15_000 });
        const ms = (await page.evaluate(FIRST_PAINT)) as number;
        if (i > 0) samples.push(ms);
      } finally {
        await context.close();
      }
    }
  } finally {
    await browser.close();
  }
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const medianMs = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { medianMs: Math.round(medianMs * 10) / 10, samplesMs: samples.map((s) => Math.round(s * 10) / 10) };
}

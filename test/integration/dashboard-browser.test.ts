import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import pino from 'pino';
import { type Browser, chromium, type Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';

import { builtinKinds } from '../../src/api/kinds/index.js';
import { ResourceService } from '../../src/api/resources.js';
import { ApiServer } from '../../src/api/server.js';
import { Dashboard, DecisionRing, type ReplicaStat, SampleRing } from '../../src/dashboard/index.js';
import type { GatewayMetrics, TrafficSnapshot } from '../../src/gateway/index.js';
import { MemoryStore } from '../../src/store/index.js';
import { cli, REPO, startSkiff } from '../helpers/skiff-process.js';
import { hasBinary } from '../helpers/system-deps.js';

const CHROMIUM = '/usr/bin/chromium';
/** With SKIFF_SCREENSHOTS=1 the test also writes the docs' screenshots (docs/images/dashboard-*.png). */
const SHOTS = process.env.SKIFF_SCREENSHOTS === '1' ? join(REPO, 'docs', 'images') : undefined;
const WAIT = { timeout: 10_000 };
/** Counts a canvas' pixels painted only by the panic shade (a string: the test compiles without the DOM types). */
const SHADE_PIXELS = `(() => {
  const c = document.querySelector('[data-testid=replicas-chart] canvas');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 25 && d[i + 3] < 60 && d[i] > 150 && d[i + 1] < 100 && d[i + 2] < 100) n++;
  return n;
})()`;

describe.skipIf(!hasBinary('chromium'))('the dashboard in a real browser', () => {
  it('logs in, shows the demo Ready, charts its traffic, follows its log, and shows a broken Function', async () => {
    const s = await startSkiff({ demo: true });
    const dir = mkdtempSync(join(tmpdir(), 'skiff-ui-'));
    let browser: Browser | undefined;
    try {
      // --no-sandbox: CI runs as root, where chromium refuses its own sandbox.
      browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
      const context = await browser.newContext({ viewport: { width: 1280, height: 820 } });
      const page = await context.newPage();
      const problems: string[] = [];
      page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
      page.on('console', (m) => m.type() === 'error' && !/401/.test(m.text()) && problems.push(`console: ${m.text()}`));

      // The shell loads without a token and asks for it.
      await page.goto(`${s.api}/ui`);
      await page.getByLabel('API token').fill('not-the-token');
      await page.getByRole('button', { name: 'Open the dashboard' }).click();
      await page.getByText('The server refused that token.').waitFor(WAIT);
      await page.getByLabel('API token').fill(s.token);
      await page.getByRole('button', { name: 'Open the dashboard' }).click();
      await page.getByRole('heading', { name: 'Overview' }).waitFor(WAIT);
      const functionsCard = page.locator('a.card', { hasText: 'Functions' });
      await expect.poll(() => functionsCard.innerText(), WAIT).toMatch(/1\s+Functions\s+all Ready/);

      // The demo Function, Ready, with its condition and event.
      await page.goto(`${s.api}/ui#/resources/functions.skiff.dev/default/hello`);
      await page.locator('h1 .badge.ok', { hasText: 'Ready' }).waitFor(WAIT);
      await page.locator('section', { hasText: 'Conditions' }).getByText('ModuleLoaded').first().waitFor(WAIT);
      await page.getByText('apiVersion: skiff.dev/v1').waitFor(WAIT);
      expect(await page.locator('pre.yaml').innerText()).not.toContain('managedFields');

      // Traffic moves the chart.
      await page.goto(`${s.api}/ui#/traffic/function/default/hello`);
      await page.locator('figure.chart canvas').first().waitFor(WAIT);
      const peak = page.getByTestId('peak-rps');
      const before = Number(await peak.innerText());
      const sending = (async () => {
        for (let i = 0; i < 40; i++) await fetch(`${s.gateway}/hello`).then((r) => r.arrayBuffer());
      })();
      await expect.poll(async () => Number(await peak.innerText()), { timeout: 15_000 }).toBeGreaterThan(before);
      await sending;
      if (SHOTS) {
        // A picture worth showing needs more than a second of history: a few seconds of uneven load.
        for (let sec = 0; sec < 10; sec++) {
          const until = Date.now() + 1000;
          for (let i = 0; i < 5 + ((sec * 7) % 11) * 4 && Date.now() < until; i++) await fetch(`${s.gateway}/hello`).then((r) => r.arrayBuffer());
          await new Promise((r) => setTimeout(r, Math.max(0, until - Date.now())));
        }
        await shot(page, 'dashboard-function');
      }

      // The log view follows: a request made after it opened shows up.
      await page.goto(`${s.api}/ui#/logs/default/hello`);
      await page.getByText('live').waitFor(WAIT);
      const probe = `probe-${Date.now()}`;
      expect((await fetch(`${s.gateway}/hello/${probe}`)).status).toBe(200);
      await expect.poll(() => page.getByTestId('log').innerText(), { timeout: 10_000 }).toContain(probe);
      if (SHOTS) await shot(page, 'dashboard-logs');

      // Gateway authorization decisions appear with their inputs, credentials masked.
      writeFileSync(
        join(dir, 'guarded.yaml'),
        `apiVersion: skiff.dev/v1
kind: Policy
metadata: { name: http-authz, namespace: default }
spec:
  rego: |
    package http.authz
    default allow := false
    allow if startswith(input.attributes.request.http.path, "/guarded/open")
---
apiVersion: skiff.dev/v1
kind: Route
metadata: { name: guarded, namespace: default }
spec:
  filters: [{ authz: { policy: data.http.authz.allow } }]
  http:
    - match: [{ uri: { prefix: /guarded } }]
      route: [{ destination: { function: hello } }]
`,
      );
      expect((await cli(['apply', '-f', join(dir, 'guarded.yaml')], { skiff: s })).code).toBe(0);
      const secret = 'Bearer s3cret-credential';
      await expect.poll(async () => (await fetch(`${s.gateway}/guarded/open`, { headers: { authorization: secret } })).status, { timeout: 10_000 }).toBe(200);
      expect((await fetch(`${s.gateway}/guarded/closed`, { headers: { authorization: secret } })).status).toBe(403);
      await page.goto(`${s.api}/ui#/decisions`);
      const denied = page.locator('tbody tr', { hasText: 'denied' }).first();
      await denied.waitFor(WAIT);
      expect(await denied.innerText()).toContain('data.http.authz.allow');
      await page.locator('tbody tr', { hasText: 'allowed' }).first().waitFor(WAIT);
      await denied.getByRole('button', { name: 'show' }).click();
      const input = page.locator('pre.yaml').first();
      await input.waitFor(WAIT);
      expect(await input.innerText()).toContain('/guarded/closed');
      expect(await input.innerText()).toContain('**REDACTED**');
      expect(await page.content()).not.toContain('s3cret-credential');
      if (SHOTS) await shot(page, 'dashboard-decisions');

      // A Function with a bad module: Ready=False with the reason, and a Warning event.
      mkdirSync(join(dir, 'fn'));
      writeFileSync(join(dir, 'fn', 'broken.wasm'), 'not a wasm module');
      writeFileSync(join(dir, 'fn', 'broken.yaml'), 'apiVersion: skiff.dev/v1\nkind: Function\nmetadata:\n  name: broken\n  namespace: default\nspec:\n  module: ./broken.wasm\n');
      expect((await cli(['apply', '-f', join(dir, 'fn', 'broken.yaml')], { skiff: s })).code).toBe(0);
      await page.goto(`${s.api}/ui#/overview`);
      const notReady = page.locator('section', { hasText: 'Not Ready' }).locator('tr', { hasText: 'default/broken' });
      await notReady.waitFor(WAIT);
      expect(await notReady.innerText()).toContain('NotWasm');
      if (SHOTS) await shot(page, 'dashboard-overview');
      await notReady.getByRole('link', { name: 'default/broken' }).click();
      await page.locator('h1 .badge.bad', { hasText: 'Not Ready' }).waitFor(WAIT);
      await page.locator('section', { hasText: 'Events' }).locator('tr.warn', { hasText: 'NotWasm' }).waitFor(WAIT);

      // The route graph is a picture: host → route → filters → destination, with the weight.
      await page.goto(`${s.api}/ui#/graph`);
      const svg = page.locator('svg[role=img]');
      await svg.waitFor(WAIT);
      expect(await svg.locator('.node text').allTextContents()).toEqual(expect.arrayContaining(['*', 'default/hello', 'no filters']));
      expect(await svg.locator('.edge text').allTextContents()).toContain('100%');
      if (SHOTS) await shot(page, 'dashboard-route-graph');

      // Keyboard: shortcuts reach each main view and move focus to it; Tab reaches the navigation.
      for (const [key, heading] of [['r', 'Function'], ['t', 'Traffic'], ['l', 'Logs'], ['d', 'Policy decisions'], ['g', 'Route graph'], ['o', 'Overview']] as const) {
        await page.locator('body').press(key);
        await page.locator('main h1').filter({ hasText: heading }).first().waitFor(WAIT);
        await expect.poll(() => page.evaluate('document.activeElement && document.activeElement.id'), WAIT).toBe('main');
      }
      // After a reload (the token is kept for the tab) focus starts at the top of the document.
      await page.reload();
      await page.getByRole('heading', { name: 'Overview' }).waitFor(WAIT);
      await page.keyboard.press('Tab');
      expect(await page.evaluate('document.activeElement.textContent')).toBe('Skip to content');
      await page.keyboard.press('Tab');
      expect(await page.evaluate('document.activeElement.textContent')).toBe('Overview');
      await page.keyboard.press('Tab');
      expect(await page.evaluate('document.activeElement.textContent')).toBe('Resources');
      const outline = await page.evaluate('getComputedStyle(document.activeElement).outlineStyle');
      expect(outline).toBe('solid');

      // The token in the fragment logs in and leaves the address at once; it is kept for the tab only.
      const fresh = await context.newPage();
      await fresh.goto(`${s.api}/ui#token=${encodeURIComponent(s.token)}`);
      await fresh.getByRole('heading', { name: 'Overview' }).waitFor(WAIT);
      expect(fresh.url()).not.toContain(s.token);
      expect(await fresh.evaluate('localStorage.length')).toBe(0);
      expect(problems).toEqual([]);
    } finally {
      await browser?.close();
      await s.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);
});

describe.skipIf(!hasBinary('chromium'))('the replicas chart in a real browser', () => {
  // `skiff up` passes the autoscaler's stats to the ring once the integrator wires it; until then (and to
  // drive panic and cold starts on purpose) this test serves the built page from a Dashboard in this
  // process, over a fake gateway and a fake autoscaler.
  it('charts a Function\'s ready and desired replicas under its traffic, shades panic, marks cold starts, and lists replicas', async () => {
    const TOKEN = 'replicas-token';
    let requests = 0;
    let reads = 0;
    const snapshot = (): TrafficSnapshot => ({ requests, responses: { '2xx': requests }, retries: 0, hedges: 0, ejections: 0, overflows: 0, latencyUs: { buckets: [1_000], counts: [requests, 0], count: requests, sumUs: 0 } });
    const read = (): GatewayMetrics => ((requests += 25), { inFlight: 0, shed: 0, notFound: 0, badPath: 0, badPathByStatus: {}, routes: {}, upstreams: { 'fn:default/busy': snapshot() } });
    // The busy Function scales up in a panic with cold starts, then settles; the idle one is at zero.
    const replicas = (): ReplicaStat[] => {
      reads++;
      const panic = reads >= 3 && reads <= 12;
      const desired = reads < 3 ? 1 : 4;
      return [
        { namespace: 'default', name: 'busy', desired, replicas: desired, ready: Math.min(desired, 1 + Math.floor(reads / 4)), panic, reason: panic ? 'panic' : 'reactive', coldStarts: Math.min(3, Math.floor(reads / 3)), forecastRate: 40 },
        { namespace: 'default', name: 'idle', desired: 0, replicas: 0, ready: 0, panic: false, reason: 'minScale', coldStarts: 0 },
      ];
    };
    const resources = new ResourceService(new MemoryStore(), builtinKinds());
    const dashboard = new Dashboard({ samples: new SampleRing({ read, replicas, intervalMs: 250 }), decisions: new DecisionRing(10), resources });
    const server = new ApiServer({ resources, logger: pino({ level: 'silent' }), version: 't', token: TOKEN, mounts: [dashboard.mount] });
    const { port } = await server.listen('127.0.0.1', 0);
    const base = `http://127.0.0.1:${port}`;
    dashboard.start();
    let browser: Browser | undefined;
    try {
      browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
      const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
      const problems: string[] = [];
      page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
      page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
      await page.goto(`${base}/ui#token=${encodeURIComponent(TOKEN)}`);
      await page.getByRole('heading', { name: 'Overview' }).waitFor(WAIT);

      await page.goto(`${base}/ui#/traffic/function/default/busy`);
      const chart = page.getByTestId('replicas-chart');
      await chart.locator('canvas').waitFor(WAIT);
      // Right below the requests/s chart, on the same time axis (same plot width and left edge).
      const titles = await page.locator('figure.chart figcaption').allInnerTexts();
      expect(titles.slice(0, 2).map((t) => t.split(' (')[0])).toEqual(['Requests per second', 'Replicas']);
      const boxes = await page.locator('figure.chart .u-over').evaluateAll((els) => els.slice(0, 2).map((e) => { const r = e.getBoundingClientRect(); return [Math.round(r.left), Math.round(r.width)]; }));
      expect(boxes[1]).toEqual(boxes[0]);
      expect(await chart.locator('.u-legend').innerText()).toMatch(/ready[\s\S]*desired[\s\S]*cold starts/);
      await expect.poll(() => page.getByTestId('current-replicas').innerText(), { timeout: 15_000 }).toMatch(/4 ready of 4 desired/);
      await expect.poll(async () => Number(await page.getByTestId('cold-starts').innerText()), WAIT).toBe(3);
      // The panic intervals are shaded: count the shade's pixels on the chart's canvas.
      // The panic intervals are shaded: count the shade's pixels (its red at low alpha) on the chart's canvas.
      const shaded = Number(await page.evaluate(SHADE_PIXELS));
      expect(shaded).toBeGreaterThan(1000);
      if (SHOTS) await shot(page, 'dashboard-replicas');

      // A Function at zero with no traffic still has its chart, at zero.
      await page.goto(`${base}/ui#/traffic/function/default/idle`);
      await page.getByTestId('replicas-chart').locator('canvas').waitFor(WAIT);
      await expect.poll(() => page.getByTestId('current-replicas').innerText(), WAIT).toMatch(/0 ready of 0 desired/);

      // The traffic list has ready/desired and the reason per Function.
      await page.goto(`${base}/ui#/traffic`);
      const idle = page.locator('tbody tr', { hasText: 'default/idle' });
      await expect.poll(() => idle.innerText(), WAIT).toMatch(/0\/0\s+minScale/);
      await expect.poll(() => page.locator('tbody tr', { hasText: 'default/busy' }).innerText(), WAIT).toMatch(/4\/4\s+reactive/);
      expect(problems).toEqual([]);
    } finally {
      await browser?.close();
      dashboard.stop();
      await server.close();
    }
  }, 60_000);
});

async function shot(page: Page, name: string): Promise<void> {
  mkdirSync(SHOTS!, { recursive: true });
  // Let the charts and lists settle for one frame so the picture is not caught mid-draw.
  await page.evaluate('new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))');
  await page.screenshot({ path: join(SHOTS!, `${name}.png`) });
}

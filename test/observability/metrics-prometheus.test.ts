import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { parseExposition, type RunningPrometheus, sampleNames, startPrometheus } from '../helpers/prometheus.js';
import { apiFetch, REPO, type RunningSkiff, startSkiff } from '../helpers/skiff-process.js';
import { hasBinary } from '../helpers/system-deps.js';

const RULES = join(REPO, 'deploy', 'prometheus', 'skiff-alerts.yml');
const DASHBOARD = join(REPO, 'deploy', 'grafana', 'skiff-dashboard.json');
const HELLO = 6;
const UNKNOWN = 2;

const haveProm = hasBinary('prometheus') && hasBinary('promtool');

/** metricNames lists the `skiff_...` metric names a PromQL text uses (recording rules are `skiff:...`). */
function metricNames(promql: string): string[] {
  return [...promql.matchAll(/\bskiff_[a-zA-Z0-9_]+/g)].map((m) => m[0]);
}

/** dashboardExprs collects every query of the Grafana dashboard, panels and template variables alike. */
function dashboardExprs(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) for (const x of node) dashboardExprs(x, out);
  else if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if ((k === 'expr' || k === 'definition') && typeof v === 'string') out.push(v);
      else dashboardExprs(v, out);
    }
  }
  return out;
}

describe.skipIf(!haveProm)('a real Prometheus scrapes Skiff', () => {
  let s: RunningSkiff;
  let prom: RunningPrometheus | undefined;

  beforeAll(async () => {
    s = await startSkiff({ demo: true, args: ['--metrics', '127.0.0.1:0'] });
    for (let i = 0; i < HELLO; i++) expect((await fetch(`${s.gateway}/hello`)).status).toBe(200);
    for (let i = 0; i < UNKNOWN; i++) expect((await fetch(`${s.gateway}/nothing-here`)).status).toBe(404);
    const api = new URL(s.api);
    const metrics = new URL(/metrics=(\S+)/.exec(s.readyLine)![1]!);
    prom = await startPrometheus(
      [
        `  - job_name: skiff-api`,
        `    metrics_path: /metrics`,
        `    authorization: { type: Bearer, credentials_file: ${JSON.stringify(join(s.dataDir, 'token'))} }`,
        `    static_configs: [{ targets: ["${api.host}"] }]`,
        `  - job_name: skiff-metrics`,
        `    static_configs: [{ targets: ["${metrics.host}"] }]`,
        '',
      ].join('\n'),
      [RULES],
    );
  }, 40_000);

  afterAll(async () => {
    await prom?.stop();
    await s?.stop();
    if (s) rmSync(s.dataDir, { recursive: true, force: true });
  });

  const scalar = async (q: string): Promise<number | undefined> => {
    const r = await prom!.query(q);
    return r.length === 1 ? Number(r[0]!.value[1]) : undefined;
  };

  it('finds both targets up, with the token on the API listener', async () => {
    await expect.poll(() => scalar('up{job="skiff-api"}'), { timeout: 20_000, interval: 250 }).toBe(1);
    await expect.poll(() => scalar('up{job="skiff-metrics"}'), { timeout: 20_000, interval: 250 }).toBe(1);
  });

  it('answers queries over the scraped series with the exact counts', async () => {
    const job = 'job="skiff-api"';
    await expect.poll(() => scalar(`skiff_gateway_requests_total{${job},route="default/hello",code="2xx"}`), { timeout: 20_000, interval: 250 }).toBe(HELLO);
    expect(await scalar(`skiff_gateway_requests_total{${job},route="",code="404"}`)).toBe(UNKNOWN);
    expect(await scalar(`skiff_gateway_request_duration_seconds_count{${job},route="default/hello"}`)).toBe(HELLO);
    expect(await scalar(`sum(skiff_function_runs_total{${job},function="default/hello",result="ok"})`)).toBe(HELLO);
    expect(await scalar(`sum(skiff_function_starts_total{${job},function="default/hello"})`)).toBe(HELLO);
    // Both listeners expose the same counters.
    expect(await scalar(`skiff_gateway_requests_total{job="skiff-metrics",route="default/hello",code="2xx"}`)).toBe(HELLO);
    const p99 = await scalar(`histogram_quantile(0.99, sum by (le) (skiff_gateway_request_duration_seconds_bucket{${job},route="default/hello"}))`);
    expect(p99).toBeGreaterThan(0);
    expect(await scalar(`skiff_store_revision{${job}} > 0`)).toBeGreaterThan(0);
    expect(await scalar(`count(skiff_nodejs_eventloop_lag_p99_seconds{${job}})`)).toBe(1);
  });

  it('evaluates the shipped recording rules over the real series', async () => {
    await expect.poll(async () => (await prom!.query('skiff:gateway_requests:rate5m{job="skiff-api",route="default/hello"}')).length, { timeout: 20_000, interval: 250 }).toBe(1);
    const rules = (await (await fetch(`${prom!.url}/api/v1/rules`)).json()) as { data: { groups: Array<{ rules: Array<{ name: string; health: string; lastError?: string }> }> } };
    const all = rules.data.groups.flatMap((g) => g.rules);
    expect(all.length).toBeGreaterThan(10);
    await expect.poll(async () => {
      const r = (await (await fetch(`${prom!.url}/api/v1/rules`)).json()) as typeof rules;
      return r.data.groups.flatMap((g) => g.rules).filter((x) => x.health !== 'ok').map((x) => `${x.name}: ${x.health} ${x.lastError ?? ''}`);
    }, { timeout: 10_000, interval: 250 }).toEqual([]);
  });

  it('promtool accepts the rules file and its unit tests pass, and every metric the rules and the dashboard use exists in a real scrape', async () => {
    expect(execFileSync('promtool', ['check', 'rules', RULES], { encoding: 'utf8' })).toMatch(/SUCCESS: \d+ rules found/);
    // The alerts fire (and stay quiet) as their unit tests say: burn rate, circuit open, queue growth.
    expect(execFileSync('promtool', ['test', 'rules', RULES.replace(/\.yml$/, '.test.yml')], { encoding: 'utf8' })).toContain('SUCCESS');
    const scraped = sampleNames(parseExposition(await (await apiFetch(s, '/metrics')).text()));
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: unknown[]; templating: unknown };
    const used = new Set([...metricNames(readFileSync(RULES, 'utf8')), ...dashboardExprs(dashboard).flatMap(metricNames)]);
    expect(used.size).toBeGreaterThan(20);
    expect([...used].filter((n) => !scraped.has(n))).toEqual([]);
  });
});

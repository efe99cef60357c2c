import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Exposition is a parsed Prometheus text scrape: sample values by `name{labels}` and family types by name. */
export interface Exposition {
  /** Keys are `name{a="x",b="y"}` with labels sorted by name (no braces without labels). */
  samples: Map<string, number>;
  types: Map<string, string>;
}

/** seriesKey builds the key {@link parseExposition} uses for a series. */
export function seriesKey(name: string, labels: Record<string, string> = {}): string {
  const l = Object.keys(labels).sort().map((k) => `${k}=${JSON.stringify(labels[k])}`);
  return l.length ? `${name}{${l.join(',')}}` : name;
}

/** parseExposition reads the text format (0.0.4) strictly enough for tests: a line it cannot read throws. */
export function parseExposition(text: string): Exposition {
  const samples = new Map<string, number>();
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ')) continue;
    const t = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (t) {
      types.set(t[1]!, t[2]!);
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/gy;
    const body = m[2] ?? '';
    let l: RegExpExecArray | null;
    let at = 0;
    while ((l = re.exec(body))) {
      labels[l[1]!] = JSON.parse(`"${l[2]!}"`) as string;
      at = re.lastIndex;
    }
    if (at !== body.length) throw new Error(`cannot read the labels of: ${line}`);
    samples.set(seriesKey(m[1]!, labels), Number(m[3]));
  }
  return { samples, types };
}

/** value reads one series from a parsed scrape (0 when absent: counters with no events are left out). */
export function value(e: Exposition, name: string, labels: Record<string, string> = {}): number {
  return e.samples.get(seriesKey(name, labels)) ?? 0;
}

/** sum adds every series of a name whose labels include `match`. */
export function sum(e: Exposition, name: string, match: Record<string, string> = {}): number {
  let total = 0;
  for (const [k, v] of e.samples) {
    if (!(k === name || k.startsWith(`${name}{`))) continue;
    if (Object.entries(match).every(([l, x]) => k.includes(`${l}=${JSON.stringify(x)}`))) total += v;
  }
  return total;
}

/** sampleNames is every metric name a scrape shows: families and their histogram series. */
export function sampleNames(e: Exposition): Set<string> {
  const names = new Set<string>();
  for (const [name, type] of e.types) {
    names.add(name);
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s);
  }
  for (const k of e.samples.keys()) names.add(k.split('{', 1)[0]!);
  return names;
}

/** freePort asks the kernel for a free loopback port. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

export interface RunningPrometheus {
  url: string;
  /** Runs an instant query; resolves with the result vector. */
  query(q: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>>;
  stop(): Promise<void>;
  output(): string;
}

/**
 * startPrometheus runs the Debian `prometheus` on a free loopback port with the given scrape
 * configurations (YAML, the items of `scrape_configs`) and rule files, its TSDB in a temp dir
 * removed on stop.
 */
export async function startPrometheus(scrapeConfigs: string, ruleFiles: string[] = []): Promise<RunningPrometheus> {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-prom-'));
  const port = await freePort();
  const rules = ruleFiles.length ? `rule_files:\n${ruleFiles.map((f) => `  - ${JSON.stringify(f)}\n`).join('')}` : '';
  writeFileSync(join(dir, 'prometheus.yml'), `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n${rules}scrape_configs:\n${scrapeConfigs}`);
  const proc: ChildProcess = spawn('prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    output: () => out,
    async query(q) {
      const r = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(q)}`);
      const body = (await r.json()) as { status: string; error?: string; data: { resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
      if (body.status !== 'success') throw new Error(`query ${q} failed: ${body.error}`);
      return body.data.result;
    },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

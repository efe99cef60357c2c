/**
 * Core benchmark: how fast Skiff starts and how little it needs idle, how fast the gateway serves the
 * demo function (against a bare node:http server returning the same bytes, the floor), how fast
 * `skiff apply` stores objects, and how quickly a change reaches 100 watchers.
 *
 *   npm run bench -- core [--json FILE] [--seconds N]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { startFloorServer } from './lib/floor-server.js';
import { emit, parseBenchArgs } from './lib/report.js';
import { BIN, startBenchSkiff } from './lib/skiff.js';
import { watchFanoutP99 } from './lib/watch-fanout.js';
import { ensureTool, wrk } from './lib/wrk.js';

const ROOT = resolve(import.meta.dirname, '..');
const { json, rest } = parseBenchArgs();
const seconds = Number(rest[rest.indexOf('--seconds') + 1] ?? 10) || 10;

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function main(): Promise<void> {
  if (!existsSync(join(ROOT, 'dist', 'cli', 'main.js'))) throw new Error('run `npm run build` first');
  const figures: Record<string, number> = {};
  const peers: Record<string, Record<string, number>> = {};

  // Start-up and idle memory: the median of three cold starts on fresh data directories.
  const starts: number[] = [];
  let idle = NaN;
  for (let i = 0; i < 3; i++) {
    const s = await startBenchSkiff(mkdtempSync(join(tmpdir(), 'skiff-bench-')), { demo: true });
    starts.push(s.startupMs);
    if (i === 2) {
      await new Promise((r) => setTimeout(r, 2000));
      idle = rssMb(s.proc.pid!);
    }
    s.proc.kill('SIGTERM');
    await new Promise((r) => s.proc.once('exit', r));
  }
  figures.startup_ms = starts.sort((a, b) => a - b)[1]!;
  figures.idle_rss_mb = idle;

  const dataDir = mkdtempSync(join(tmpdir(), 'skiff-bench-'));
  const s = await startBenchSkiff(dataDir, { demo: true });
  try {
    // The gateway serving the demo function, against the floor: node:http answering the same bytes.
    const sample = await fetch(`${s.gateway}/hello`);
    const body = Buffer.from(await sample.arrayBuffer());
    if (ensureTool('wrk')) {
      const floor = await startFloorServer(body, sample.headers.get('content-type') ?? 'text/plain');
      // Both get the same short unmeasured run first: the figures are for a server that has been
      // serving (optimised code, warm caches), not for its first seconds.
      wrk(`${floor.url}/hello`, { seconds: 2 });
      const f = wrk(`${floor.url}/hello`, { seconds });
      floor.stop();
      wrk(`${s.gateway}/hello`, { seconds: 2 });
      const g = wrk(`${s.gateway}/hello`, { seconds });
      figures.hello_rps = g.rps;
      figures.hello_p50_us = g.p50_us;
      figures.hello_p99_us = g.p99_us;
      figures.hello_rps_vs_floor = g.rps / f.rps;
      peers.node_http = { rps: f.rps, p50_us: f.p50_us, p99_us: f.p99_us };
    } else process.stderr.write('wrk is not available: skipping the request figures\n');

    // skiff apply of 1,000 objects (one multi-document file), then listing them.
    const docs = Array.from({ length: 1000 }, (_, i) => `apiVersion: skiff.dev/v1\nkind: Service\nmetadata: { name: bench-${i}, labels: { bench: "yes" } }\nspec:\n  endpoints: [{ address: 127.0.0.1, port: ${20000 + (i % 1000)} }]\n`).join('---\n');
    const file = join(dataDir, 'objects.yaml');
    writeFileSync(file, docs);
    let t0 = performance.now();
    const r = spawnSync(process.execPath, [BIN, 'apply', '-f', file, '--server', s.api], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, env: { ...process.env, SKIFF_DATA_DIR: dataDir } });
    if (r.status !== 0) throw new Error(`apply failed: ${r.stderr}`);
    figures.apply_objects_per_s = 1000 / ((performance.now() - t0) / 1000);
    t0 = performance.now();
    const list = (await (await fetch(`${s.api}/apis/skiff.dev/v1/namespaces/default/services?labelSelector=bench%3Dyes`, { headers: { authorization: `Bearer ${s.token}` } })).json()) as { items: unknown[] };
    figures.list_1000_ms = performance.now() - t0;
    if (list.items.length !== 1000) throw new Error(`listed ${list.items.length} objects, expected 1000`);

    // Watch fan-out: 100 watchers, 200 changes; latency from the write's acknowledgement to each delivery.
    figures.watch_p99_ms = await watchFanoutP99(s, [s], 100, 200);
  } finally {
    s.proc.kill('SIGTERM');
    await new Promise((r) => s.proc.once('exit', r));
  }
  emit({ name: 'core', figures, peers }, json);
}

main().catch((err) => {
  process.stderr.write(`bench core failed: ${err.stack ?? err}\n`);
  process.exit(1);
});

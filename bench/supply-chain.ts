// Supply-chain benchmark: pulling a Wasm module from a loopback docker-registry (cold, cached by
// digest, cached by tag) with skopeo as the peer, and verifying signatures (key, keyless, a cached
// verdict). Every group of figures is a producer in its own file under bench/supply-chain/, listed
// below; they share one registry started for the run. Needs the Debian docker-registry and skopeo
// packages.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { hasRegistryTools, startRegistry } from '../test/helpers/registry.js';

import { type BenchReport, emit, parseBenchArgs } from './lib/report.js';
import { admission } from './supply-chain/admission.js';
import type { FigureProducer } from './supply-chain/context.js';
import { pull } from './supply-chain/pull.js';
import { verify } from './supply-chain/verify.js';

// Add a producer here to add figures to this report.
const producers: FigureProducer[] = [pull, verify, admission];

const { json, rest } = parseBenchArgs();
if (!hasRegistryTools()) {
  process.stderr.write('supply-chain: needs docker-registry and skopeo (Debian packages docker-registry, skopeo)\n');
  process.exit(2);
}
const runs = rest.includes('--quick') ? 3 : 10;
const registry = await startRegistry();
const scratch = mkdtempSync(join(tmpdir(), 'skiff-bench-supply-'));
const report: BenchReport = { name: 'supply-chain', figures: {}, peers: {} };
try {
  for (const p of producers) {
    const out = await p.run({ registry, scratch, runs });
    Object.assign(report.figures, out.figures);
    for (const [peer, figs] of Object.entries(out.peers ?? {})) report.peers[peer] = { ...(report.peers[peer] ?? {}), ...figs };
  }
} finally {
  await registry.stop();
  rmSync(scratch, { recursive: true, force: true });
}
emit(report, json);

import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { wagiWat, wat } from '../../test/helpers/wat.js';
import { BIN, startBenchSkiff } from '../lib/skiff.js';

import type { FigureProducer } from './context.js';

/**
 * admission measures what an ImagePolicy adds to admitting a Function from `oci://`: dry-run creates
 * through the API of a real `skiff up`, first with no ImagePolicy (`admission_without_imagepolicy_p99_ms`),
 * then with one whose key signed the module (`admission_with_imagepolicy_p99_ms`, and p50s of both; after the first
 * request the verdict comes from the cache, as for every later write of the same digest).
 */
export const admission: FigureProducer = {
  name: 'admission',
  async run({ registry, scratch, runs }) {
    const cli = (args: string[]) => {
      const r = spawnSync(BIN, args, { encoding: 'utf8', env: { ...process.env, COSIGN_PASSWORD: '', DOCKER_CONFIG: scratch } });
      if (r.status !== 0) throw new Error(`skiff ${args[0]} failed: ${r.stderr}`);
      return r.stdout;
    };
    const flags = ['--insecure-registry', registry.host];
    writeFileSync(join(scratch, 'adm.wasm'), await wat(wagiWat('Content-Type: text/plain\n\nbench\n')));
    const digest = cli(['push', join(scratch, 'adm.wasm'), `${registry.host}/bench/adm:v1`, ...flags]).trim().split('\n').at(-1)!;
    cli(['generate-key-pair', '--output-key-prefix', join(scratch, 'adm')]);
    cli(['sign', '--key', join(scratch, 'adm.key'), `${registry.host}/bench/adm@${digest}`, ...flags]);

    const skiff = await startBenchSkiff(join(scratch, 'adm-data'), { args: flags });
    const headers = { authorization: `Bearer ${skiff.token}`, 'content-type': 'application/json' };
    const fn = { apiVersion: 'skiff.dev/v1', kind: 'Function', metadata: { name: 'adm' }, spec: { module: `oci://${registry.host}/bench/adm@${digest}` } };
    const admit = async (): Promise<number> => {
      const t0 = performance.now();
      const r = await fetch(`${skiff.api}/apis/skiff.dev/v1/namespaces/default/functions?dryRun=All`, { method: 'POST', headers, body: JSON.stringify(fn) });
      const text = await r.text();
      if (r.status !== 201) throw new Error(`dry-run create answered ${r.status}: ${text}`);
      return performance.now() - t0;
    };
    const measure = async (): Promise<{ p50: number; p99: number }> => {
      for (let i = 0; i < 20; i++) await admit();
      const samples: number[] = [];
      for (let i = 0; i < runs * 30; i++) samples.push(await admit());
      samples.sort((a, b) => a - b);
      const at = (q: number) => samples[Math.min(samples.length - 1, Math.ceil(samples.length * q) - 1)]!;
      return { p50: at(0.5), p99: at(0.99) };
    };
    try {
      const without = await measure();
      const policy = {
        apiVersion: 'skiff.dev/v1',
        kind: 'ImagePolicy',
        metadata: { name: 'bench' },
        spec: { images: [{ glob: `${registry.host}/bench/**` }], authorities: [{ name: 'bench-key', key: { data: readFileSync(join(scratch, 'adm.pub'), 'utf8') } }] },
      };
      const r = await fetch(`${skiff.api}/apis/skiff.dev/v1/imagepolicies`, { method: 'POST', headers, body: JSON.stringify(policy) });
      if (r.status !== 201) throw new Error(`creating the ImagePolicy answered ${r.status}: ${await r.text()}`);
      // the policy reaches admission through an informer: wait until a write is checked against it
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline) {
        const probe = await fetch(`${skiff.api}/apis/skiff.dev/v1/namespaces/default/functions?dryRun=All`, {
          method: 'POST',
          headers,
          body: JSON.stringify({ ...fn, spec: { module: `oci://${registry.host}/bench/unsigned@sha256:${'0'.repeat(64)}` } }),
        });
        await probe.text();
        if (probe.status === 403) break;
        await new Promise((res) => setTimeout(res, 100));
      }
      const withPolicy = await measure();
      return {
        figures: {
          admission_with_imagepolicy_p50_ms: round(withPolicy.p50),
          admission_with_imagepolicy_p99_ms: round(withPolicy.p99),
          admission_without_imagepolicy_p50_ms: round(without.p50),
          admission_without_imagepolicy_p99_ms: round(without.p99),
        },
      };
    } finally {
      skiff.proc.kill('SIGTERM');
      await new Promise((res) => skiff.proc.once('exit', res));
    }
  },
};

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

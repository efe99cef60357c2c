import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';

import { createRegistryClient, OciCache, parseReference, pullWasmModule, pushWasmModule } from '../../src/oci/index.js';
import { UpstreamGuard } from '../../src/security/index.js';

import { type FigureProducer, median } from './context.js';

/** A 2 MB core Wasm module: the header, then one custom section of random bytes (incompressible, like code). */
function module2mb(): Uint8Array {
  const payload = randomBytes(2 * 1024 * 1024 - 32);
  const name = Buffer.from('bench');
  const body = Buffer.concat([Buffer.from([name.length]), name, payload]);
  const size: number[] = [];
  let n = body.length;
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    size.push(b);
  } while (n);
  return new Uint8Array(Buffer.concat([Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 0]), Buffer.from(size), body]));
}

/**
 * pull measures pulling a 2 MB module from the loopback registry: cold (a new client and an empty
 * cache each run: tag resolution, manifest, config-less layer download, digest check, cache write),
 * cached by digest (what a pinned Function does: read and re-hash from the data dir, no network) and
 * cached by tag (a HEAD for the tag, then the cache); and skopeo copying the same artifact to an OCI
 * layout directory as the peer (`pull_cold_ms`, its process start included, as a user would run it).
 */
export const pull: FigureProducer = {
  name: 'pull',
  async run({ registry, scratch, runs }) {
    const guard = UpstreamGuard.permissive();
    const ref = parseReference(`${registry.host}/bench/module:v1`);
    const pusher = createRegistryClient({ upstreams: guard, insecure: [registry.host] });
    const pushed = await pushWasmModule(pusher, ref, module2mb());
    pusher.close();

    const cold: number[] = [];
    const coldCpu: number[] = [];
    for (let i = 0; i < runs; i++) {
      const dir = mkdtempSync(join(scratch, 'cold-'));
      const client = createRegistryClient({ upstreams: guard, insecure: [registry.host], cache: new OciCache({ dataDir: dir }) });
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      await pullWasmModule(client, ref);
      cold.push(performance.now() - t0);
      const cpu = process.cpuUsage(cpu0);
      coldCpu.push((cpu.user + cpu.system) / 1000);
      client.close();
      rmSync(dir, { recursive: true, force: true });
    }

    const dir = mkdtempSync(join(scratch, 'warm-'));
    const client = createRegistryClient({ upstreams: guard, insecure: [registry.host], cache: new OciCache({ dataDir: dir, tagTtlMs: 0 }) });
    await pullWasmModule(client, ref);
    const byDigest = { ...ref, tag: undefined, digest: pushed.manifest.digest };
    const cached: number[] = [];
    const cachedTag: number[] = [];
    for (let i = 0; i < runs * 3; i++) {
      let t0 = performance.now();
      await pullWasmModule(client, byDigest);
      cached.push(performance.now() - t0);
      t0 = performance.now();
      await pullWasmModule(client, ref);
      cachedTag.push(performance.now() - t0);
    }
    client.close();

    const skopeo: number[] = [];
    for (let i = 0; i < runs; i++) {
      const dest = join(scratch, `skopeo-${i}`);
      const t0 = performance.now();
      execFileSync('skopeo', ['--insecure-policy', 'copy', '--quiet', '--src-tls-verify=false', `docker://${registry.host}/bench/module:v1`, `oci:${dest}:v1`], { stdio: 'ignore' });
      skopeo.push(performance.now() - t0);
      rmSync(dest, { recursive: true, force: true });
    }
    return {
      figures: { pull_cold_ms: median(cold), pull_cold_cpu_ms: median(coldCpu), pull_cached_ms: median(cached), pull_cached_tag_ms: median(cachedTag) },
      peers: { skopeo: { pull_cold_ms: median(skopeo) } },
    };
  },
};

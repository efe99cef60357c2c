// Signature verification figures for the supply-chain benchmark: verifying one artifact's cosign key
// signature, one keyless Sigstore bundle referrer (under a generated trusted root), and reusing a
// cached verdict. The caller starts the loopback registry; bench/supply-chain.ts calls this.
import { createRegistryClient, parseReference, pushWasmModule } from '../../src/oci/index.js';
import { UpstreamGuard } from '../../src/security/index.js';
import {
  attachBundle,
  buildStatement,
  compileIdentity,
  generateKeyPair,
  IN_TOTO_PAYLOAD_TYPE,
  loadPrivateKey,
  loadPublicKey,
  parseTrustedRoot,
  SIGN_PREDICATE_TYPE,
  signImage,
  VerdictCache,
  verifyArtifact,
  verifyImage,
} from '../../src/signing/index.js';
import { FakeSigstore } from '../../test/signing/fake-sigstore.js';

import type { Figures } from './report.js';

function median(samples: number[]): number {
  const s = [...samples].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)]! : NaN;
}

/** timed runs fn `runs` times after one warm-up and returns the median wall and CPU milliseconds. */
async function timed(runs: number, fn: () => Promise<void>): Promise<{ wall: number; cpu: number }> {
  await fn();
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < runs; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await fn();
    wall.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  return { wall: median(wall), cpu: median(cpu) };
}

const round = (n: number, digits = 2) => Number(n.toFixed(digits));

/**
 * signingFigures measures, against the registry at `registryHost` (plain HTTP, loopback):
 * `verify_key_ms` — find and check the cosign `.sig` signature of one artifact by digest with a key
 * (manifest, payload blob, ECDSA check); `verify_keyless_ms` — find and check a keyless DSSE bundle
 * referrer (referrers list, manifest, bundle blob, then @sigstore/verify: chain, SCT, SET, inclusion
 * proof, identity); `verify_cached_us` — the same question answered from the verdict cache; and
 * the CPU milliseconds of the first two (quieter than wall time on a shared machine).
 */
export async function signingFigures(opts: { registryHost: string; runs: number }): Promise<Figures> {
  const client = createRegistryClient({ upstreams: UpstreamGuard.permissive(), insecure: [opts.registryHost] });
  try {
    const module = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]);
    const keyRef = parseReference(`${opts.registryHost}/bench/signed:v1`);
    const keyDigest = (await pushWasmModule(client, keyRef, module, { annotations: { n: 'key' } })).manifest.digest;
    const pair = generateKeyPair();
    await signImage(client, keyRef, { key: loadPrivateKey(pair.privatePem, 'bench') });
    const key = { kind: 'key' as const, key: loadPublicKey(pair.publicPem, 'bench') };
    const keyRun = await timed(opts.runs, async () => {
      const v = await verifyImage(client, { ...keyRef, digest: keyDigest }, key);
      if (v.signatures.length !== 1) throw new Error(`key verification failed: ${v.reasons.join('; ')}`);
    });

    const fake = await FakeSigstore.create();
    const root = await parseTrustedRoot(fake.trustedRoot(), 'bench-root');
    const keylessRef = parseReference(`${opts.registryHost}/bench/keyless:v1`);
    const keylessDigest = (await pushWasmModule(client, keylessRef, module, { annotations: { n: 'keyless' } })).manifest.digest;
    const who = { subject: 'https://ci.skiff.test/release', issuer: 'https://token.skiff.test' };
    const statement = buildStatement(`${opts.registryHost}/bench/keyless`, keylessDigest, SIGN_PREDICATE_TYPE, {});
    await attachBundle(client, keylessRef, await client.resolve(keylessRef), await fake.signDsse(IN_TOTO_PAYLOAD_TYPE, statement, who), SIGN_PREDICATE_TYPE);
    const keyless = { kind: 'keyless' as const, trustedRoot: root, identities: [compileIdentity(who)] };
    const keylessRun = await timed(opts.runs, async () => {
      const v = await verifyImage(client, { ...keylessRef, digest: keylessDigest }, keyless);
      if (v.signatures.length !== 1) throw new Error(`keyless verification failed: ${v.reasons.join('; ')}`);
    });

    const cache = new VerdictCache();
    const authorities = [{ name: 'release', key: { data: pair.publicPem } }];
    const pinned = { ...keyRef, digest: keyDigest };
    const first = await verifyArtifact(client, pinned, authorities, { cache, digest: keyDigest });
    if (!first.verified) throw new Error(`verifyArtifact failed: ${first.reasons.join('; ')}`);
    const iterations = Math.max(1000, opts.runs * 100);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) await verifyArtifact(client, pinned, authorities, { cache, digest: keyDigest });
    const cachedUs = Number(process.hrtime.bigint() - t0) / 1000 / iterations;

    return {
      verify_key_ms: round(keyRun.wall),
      verify_key_cpu_ms: round(keyRun.cpu),
      verify_keyless_ms: round(keylessRun.wall),
      verify_keyless_cpu_ms: round(keylessRun.cpu),
      verify_cached_us: round(cachedUs, 1),
    };
  } finally {
    client.close();
  }
}

import pino from 'pino';
import { describe, expect, it } from 'vitest';

import { builtinKinds } from '../../src/api/kinds/index.js';
import { ResourceService } from '../../src/api/resources.js';
import { chainsTo, ClusterAuthority, followCaRotation } from '../../src/cluster/index.js';
import { LazyIdentity, spiffeId, WorkloadIdentity } from '../../src/gateway/index.js';
import { MemoryStore } from '../../src/store/index.js';

const logger = pino({ level: 'silent' });
const TD = 'skiff.local';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** until polls (bounded) for a condition that a timer and an asynchronous signature bring about. */
async function until(ok: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe('followCaRotation', () => {
  it('trusts a new bundle at once, moves the node certificate after the spread, the API certificate when the old root retires', async () => {
    let now = Date.now();
    const resources = new ResourceService(new MemoryStore(), builtinKinds());
    const here = await ClusterAuthority.open({ resources, logger, trustDomain: TD, mode: 'init', pollMs: 0, now: () => now });
    const elsewhere = await ClusterAuthority.open({ resources, logger, trustDomain: TD, mode: 'plain', pollMs: 0, now: () => now });
    const identity = new LazyIdentity(() => WorkloadIdentity.create(here, spiffeId(TD, 'skiff-system', 'n1', 'node'), { ttlMs: 3600_000 }));
    const id = await identity.get();
    const contexts: unknown[] = [];
    id.onRotate((ctx) => contexts.push(ctx));
    const bundles: string[] = [];
    let apiRenewals = 0;
    const stop = followCaRotation({ authority: here, identity, spreadMs: 150, onError: (e) => expect.fail(e.message), renewApiCertificate: async () => void apiRenewals++, bundleChanged: (b) => bundles.push(b) });
    const first = id.certificate.certPem;

    await elsewhere.rotate(60_000);
    await here.refresh();
    // Trusted at once: a new context with the two-root bundle, the same certificate.
    expect(contexts).toHaveLength(1);
    expect(bundles).toEqual([here.certPem]);
    expect(id.serverOptions(true).ca).toBe(here.certPem);
    expect(id.certificate.certPem).toBe(first);
    expect(apiRenewals).toBe(0);
    // After the spread, a certificate from the new root.
    await until(() => id.certificate.certPem !== first, 'the certificate to move to the new root');
    expect(chainsTo(id.certificate.certPem, here.signingCertPem)).toBe(true);
    expect(apiRenewals).toBe(0);
    // The old root retires: the API certificate is renewed, the bundle shrinks.
    now += 61_000;
    await here.refresh();
    expect(apiRenewals).toBe(1);
    expect(bundles.at(-1)).toBe(here.signingCertPem);
    stop();
    identity.close();
  });

  it('moves at once when the current certificate no longer chains to the bundle (an overlap shorter than the spread)', async () => {
    let now = Date.now();
    const resources = new ResourceService(new MemoryStore(), builtinKinds());
    const here = await ClusterAuthority.open({ resources, logger, trustDomain: TD, mode: 'init', pollMs: 0, now: () => now });
    const identity = new LazyIdentity(() => WorkloadIdentity.create(here, spiffeId(TD, 'skiff-system', 'n1', 'node'), { ttlMs: 3600_000 }));
    const id = await identity.get();
    const stop = followCaRotation({ authority: here, identity, spreadMs: 60_000, onError: (e) => expect.fail(e.message), renewApiCertificate: async () => undefined, bundleChanged: () => undefined });
    const first = id.certificate.certPem;
    await here.rotate(10);
    now += 1_000;
    await here.refresh();
    await until(() => id.certificate.certPem !== first, 'the certificate to move at once', 3_000);
    expect(chainsTo(id.certificate.certPem, here.certPem)).toBe(true);
    stop();
    identity.close();
  });
});

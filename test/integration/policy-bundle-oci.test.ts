import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createRegistryClient, descriptorOf, encodeJson, type ImageManifest, MediaTypes, parseReference, type RegistryClient } from '../../src/oci/index.js';
import { readArchive, writeArchive } from '../../src/policy/bundle/index.js';
import { UpstreamGuard } from '../../src/security/index.js';
import { hasRegistryTools, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { apiFetch, cli, type RunningSkiff, startSkiff, waitFor } from '../helpers/skiff-process.js';

const tools = hasRegistryTools();
const LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';

describe.skipIf(!tools)('a PolicyBundle pulled from a real OCI registry', { timeout: 180_000 }, async () => {
  let reg: TestRegistry;
  let client: RegistryClient;
  let s: RunningSkiff;
  let dir: string;
  let keyPath: string;
  let publicPem: string;
  let built = 0;

  /** build runs `skiff policy build` over a directory whose rule data.envoy.authz.allow is `rule`. */
  const build = async (revision: string, rule: string, sign = true): Promise<Buffer> => {
    const src = join(dir, `src-${++built}`);
    mkdirSync(join(src, 'envoy', 'authz'), { recursive: true });
    writeFileSync(join(src, '.manifest'), JSON.stringify({ roots: ['envoy/authz'] }));
    writeFileSync(join(src, 'envoy', 'authz', 'policy.rego'), `package envoy.authz\n\ndefault allow := false\n\n${rule}\n`);
    writeFileSync(join(src, 'envoy', 'authz', 'data.json'), JSON.stringify({ methods: ['GET'] }));
    const out = join(dir, `bundle-${built}.tar.gz`);
    const r = await cli(['policy', 'build', src, '-o', out, '--revision', revision, ...(sign ? ['--signing-key', keyPath] : [])]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    return readFileSync(out);
  };

  /** push uploads the bundle as oras does for OPA: an image config and the bundle as the one tar+gzip layer. */
  const push = async (bytes: Uint8Array, tag = 'v1'): Promise<string> => {
    const ref = parseReference(`${reg.host}/bundles/authz:${tag}`);
    const config = encodeJson({});
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      config: await client.putBlob(ref, config, MediaTypes.ociConfig),
      layers: [{ ...(await client.putBlob(ref, bytes, LAYER)), annotations: { 'org.opencontainers.image.title': 'bundle.tar.gz' } }],
    };
    const body = encodeJson(manifest);
    const pushed = await client.putManifest(ref, body, MediaTypes.ociManifest);
    expect(pushed.digest).toBe(descriptorOf(body, MediaTypes.ociManifest).digest);
    return pushed.digest;
  };

  const status = async () => {
    const r = await apiFetch(s, '/apis/skiff.dev/v1/policybundles/authz');
    return r.ok ? ((await r.json()) as { status?: Record<string, any> }).status : undefined;
  };
  const cond = (st: Record<string, any> | undefined, type: string) => st?.conditions?.find((c: { type: string }) => c.type === type) as { status: string; reason: string; message: string } | undefined;
  const code = async (method: string) => (await fetch(`${s.gateway}/hello`, { method })).status;
  /** refused pushes bytes to the tag and waits until Ready reports `reason` for that manifest. */
  const refused = async (bytes: Uint8Array, reason: string): Promise<string> => {
    const before = cond(await status(), 'Ready')?.message;
    await push(bytes);
    const c = await waitFor(async () => {
      const r = cond(await status(), 'Ready');
      return r?.status === 'False' && r.reason === reason && r.message !== before ? r : undefined;
    }, `Ready False ${reason}`, 20_000).catch(async (err: Error) => {
      throw new Error(`${err.message}; status: ${JSON.stringify(await status())}`);
    });
    return c!.message;
  };

  const manifest = () => `apiVersion: skiff.dev/v1
kind: PolicyBundle
metadata: { name: authz }
spec:
  source: oci://${reg.host}/bundles/authz:v1
  pollingInterval: 1s
  timeout: 5s
  roots: [envoy/authz]
  verification:
    keyId: default
    publicKey: |
${publicPem.trim().split('\n').map((l) => `      ${l}`).join('\n')}
---
apiVersion: skiff.dev/v1
kind: Route
metadata: { name: hello }
spec:
  filters: [{ authz: { policy: data.envoy.authz.allow } }]
  http:
    - match: [{ uri: { prefix: /hello } }]
      route: [{ destination: { function: hello } }]
`;

  beforeAll(async () => {
    reg = await startRegistry();
    dir = mkdtempSync(join(tmpdir(), 'skiff-pb-oci-'));
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    keyPath = join(dir, 'bundle.key');
    writeFileSync(keyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    client = createRegistryClient({ upstreams: UpstreamGuard.permissive(), insecure: [reg.host] });
    s = await startSkiff({ demo: true, args: ['--insecure-registry', reg.host, '--allow-upstream', reg.host] });
  });
  afterAll(async () => {
    if (s) expect(await s.stop()).toBe(0);
    client?.close();
    await reg?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('decides with the pushed bundle, follows the tag to v2, and keeps v2 through tampered and unsigned pushes', async () => {
    const d1 = await push(await build('r1', 'allow if input.attributes.request.http.method in data.envoy.authz.methods'));
    const applied = await cli(['apply', '-f', '-'], { skiff: s, input: manifest() });
    expect(applied.stderr).toBe('');
    expect(applied.code).toBe(0);
    await waitFor(async () => (await code('GET')) === 200, 'GET allowed by revision r1', 20_000);
    expect(await code('POST')).toBe(403);
    const st1 = await waitFor(async () => {
      const x = await status();
      return cond(x, 'Ready')?.reason === 'Activated' ? x : undefined;
    }, 'r1 activated');
    expect(st1).toMatchObject({ revision: 'r1', sourceDigest: d1 });
    expect(cond(st1, 'Verified')).toMatchObject({ status: 'True', reason: 'SignatureVerified' });

    // v2 under the same tag: the next poll sees the new manifest digest and rolls it out
    const d2 = await push(await build('r2', 'allow if input.attributes.request.http.method in {"GET", "POST"}'));
    expect(d2).not.toBe(d1);
    await waitFor(async () => (await code('POST')) === 200, 'POST allowed by revision r2', 20_000);
    const st2 = await waitFor(async () => {
      const x = await status();
      return x?.revision === 'r2' ? x : undefined;
    }, 'status of r2');
    expect(st2).toMatchObject({ sourceDigest: d2 });
    expect(cond(st2, 'Ready')).toMatchObject({ status: 'True', reason: 'Activated' });

    // a signed bundle whose policy was changed after signing
    const good = await readArchive(await build('r3', 'allow := true'), 'r3');
    const tampered = await writeArchive(good.map((e) => ({ name: `/${e.path}`, bytes: e.path.endsWith('.rego') ? Buffer.from('package envoy.authz\n\nallow := true\n') : e.bytes })));
    expect(await refused(tampered, 'VerificationFailed')).toMatch(/envoy\/authz\/policy\.rego: does not match its signed digest.*revision "r2" keeps deciding/);
    expect(cond(await status(), 'Verified')).toMatchObject({ status: 'False', reason: 'VerificationFailed' });
    expect(await code('DELETE')).toBe(403);
    expect(await code('POST')).toBe(200);

    // an unsigned bundle while a signature is required
    expect(await refused(await build('r4', 'allow := true', false), 'VerificationFailed')).toMatch(/has no \.signatures\.json but a signature is required.*revision "r2" keeps deciding/);
    const st4 = await status();
    expect(st4?.revision).toBe('r2');
    expect(st4?.sourceDigest).toBe(d2);
    expect(await code('DELETE')).toBe(403);
  }, 150_000);
});

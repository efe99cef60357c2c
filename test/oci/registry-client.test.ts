import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createRegistryClient, encodeJson, type ImageIndex, type ImageManifest, MediaTypes, OciCache, parseReference, pullWasmModule, pushWasmModule, type RegistryClient, sha256Of } from '../../src/oci/index.js';
import { UpstreamGuard } from '../../src/security/index.js';
import { hasRegistryTools, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { wat } from '../helpers/wat.js';

const tools = hasRegistryTools();

/** A tiny module whose bytes differ by `n`, so each test pushes distinct content. */
function module(n: number): Promise<Uint8Array> {
  return wat(`(module (global i32 (i32.const ${n})) (func (export "_start")))`);
}

describe.skipIf(!tools)('registry client against docker-registry (plain HTTP)', () => {
  let reg: TestRegistry;
  let dir: string;
  let client: RegistryClient;
  let cache: OciCache;

  beforeAll(async () => {
    reg = await startRegistry();
    dir = mkdtempSync(join(tmpdir(), 'skiff-oci-'));
    cache = new OciCache({ dataDir: dir });
    client = createRegistryClient({ upstreams: UpstreamGuard.permissive(), insecure: [reg.host], cache, chunkBytes: 1024 * 1024 });
  });
  afterAll(async () => {
    client?.close();
    await reg?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('pushes a Wasm module and pulls it back by tag and by digest', async () => {
    const ref = parseReference(`${reg.host}/demo/hello:v1`);
    const mod = await module(1);
    const pushed = await pushWasmModule(client, ref, mod);
    expect(pushed.layer.digest).toBe(sha256Of(mod));
    const resolved = await client.resolve(ref);
    expect(resolved.digest).toBe(pushed.manifest.digest);
    expect(resolved.mediaType).toBe(MediaTypes.ociManifest);
    const fresh = createRegistryClient({ upstreams: UpstreamGuard.permissive(), insecure: [reg.host] });
    const pulled = await pullWasmModule(fresh, ref);
    expect(Buffer.from(pulled.bytes).equals(Buffer.from(mod))).toBe(true);
    expect(pulled.manifestDigest).toBe(pushed.manifest.digest);
    const byDigest = await pullWasmModule(fresh, { ...ref, tag: undefined, digest: pushed.manifest.digest });
    expect(byDigest.layer.digest).toBe(pushed.layer.digest);
    fresh.close();
    expect(await client.listTags(ref)).toEqual(['v1']);
  });

  it('pushes a multi-megabyte blob in chunks and reads it back through the cache', async () => {
    const ref = parseReference(`${reg.host}/demo/big:v1`);
    const bytes = new Uint8Array(randomBytes(3 * 1024 * 1024 + 17));
    const desc = await client.putBlob(ref, bytes, 'application/octet-stream');
    expect(desc.size).toBe(bytes.length);
    const other = createRegistryClient({ upstreams: UpstreamGuard.permissive(), insecure: [reg.host], cache: new OciCache({ dataDir: mkdtempSync(join(tmpdir(), 'skiff-oci-')) }) });
    const back = await other.getBlob(ref, desc.digest);
    expect(sha256Of(back)).toBe(desc.digest);
    expect(await other.cache!.has(desc.digest)).toBe(true);
    other.close();
    // Pushing again finds the blob there and uploads nothing.
    await client.putBlob(ref, bytes, 'application/octet-stream');
  });

  it('lists tags page by page', async () => {
    const ref = parseReference(`${reg.host}/demo/tags:a`);
    const mod = await module(2);
    for (const tag of ['a', 'b', 'c']) await pushWasmModule(client, { ...ref, tag }, mod);
    expect((await client.listTags(ref)).sort()).toEqual(['a', 'b', 'c']);
  });

  it('picks a platform out of an image index and reads Docker schema 2 manifests', async () => {
    const ref = parseReference(`${reg.host}/demo/multi:v1`);
    const amd = await pushImage(client, ref, 'amd64', MediaTypes.ociManifest, MediaTypes.ociConfig);
    const arm = await pushImage(client, ref, 'arm64', MediaTypes.dockerManifest, MediaTypes.dockerConfig);
    const list: ImageIndex = {
      schemaVersion: 2,
      mediaType: MediaTypes.dockerManifestList,
      manifests: [
        { ...amd, platform: { os: 'linux', architecture: 'amd64' } },
        { ...arm, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
      ],
    };
    const listDesc = await client.putManifest(ref, encodeJson(list), MediaTypes.dockerManifestList);
    const index = await client.getManifest(ref);
    expect(index.digest).toBe(listDesc.digest);
    expect(index.mediaType).toBe(MediaTypes.dockerManifestList);
    const picked = await client.getManifest(ref, { platform: { os: 'linux', architecture: 'arm64' } });
    expect(picked.digest).toBe(arm.digest);
    expect(picked.mediaType).toBe(MediaTypes.dockerManifest);
    await expect(client.getManifest(ref, { platform: { os: 'windows', architecture: 'amd64' } })).rejects.toMatchObject({ code: 'oci_platform_not_found' });
  });

  it('keeps the referrers tag-schema index when the registry has no referrers API', async () => {
    const ref = parseReference(`${reg.host}/demo/signed:v1`);
    const subject = await pushWasmModule(client, ref, await module(3));
    const empty = await client.putBlob(ref, encodeJson({}), MediaTypes.ociEmpty);
    const sigLayer = await client.putBlob(ref, encodeJson({ note: 'a signature stand-in' }), 'application/vnd.dev.skiff.test+json');
    const referrer: ImageManifest = { schemaVersion: 2, mediaType: MediaTypes.ociManifest, artifactType: 'application/vnd.dev.skiff.test', config: empty, layers: [sigLayer], subject: pushed(subject.manifest) };
    const r = await client.putManifest({ ...ref, tag: undefined }, encodeJson(referrer), MediaTypes.ociManifest);
    const list = await client.referrers(ref, subject.manifest.digest);
    expect(list.map((d) => d.digest)).toEqual([r.digest]);
    expect(list[0]!.artifactType).toBe('application/vnd.dev.skiff.test');
    expect(await client.referrers(ref, subject.manifest.digest, { artifactType: 'application/other' })).toEqual([]);
    expect(await client.referrers(ref, sha256Of(new Uint8Array([1])))).toEqual([]);
  });

  it('names an unknown digest and an unknown tag as not found', async () => {
    const ref = parseReference(`${reg.host}/demo/hello:v1`);
    const missing = sha256Of(new Uint8Array([9, 9, 9]));
    await expect(client.getManifest({ ...ref, tag: undefined, digest: missing })).rejects.toMatchObject({ code: 'oci_not_found', message: expect.stringContaining(missing) });
    await expect(client.resolve({ ...ref, tag: 'nope' })).rejects.toMatchObject({ code: 'oci_not_found', message: expect.stringContaining('demo/hello:nope') });
    await expect(client.getBlob(ref, missing)).rejects.toMatchObject({ code: 'oci_not_found' });
  });

  it('refuses a blob whose bytes on the registry no longer match its digest', async () => {
    const ref = parseReference(`${reg.host}/demo/corrupt:v1`);
    const pushedMod = await pushWasmModule(client, ref, await module(4));
    const path = reg.blobPath(pushedMod.layer.digest);
    const damaged = Buffer.from(await module(4));
    damaged[damaged.length - 1] ^= 0xff;
    writeFileSync(path, damaged);
    const fresh = createRegistryClient({ upstreams: UpstreamGuard.permissive(), insecure: [reg.host], cache: new OciCache({ dataDir: mkdtempSync(join(tmpdir(), 'skiff-oci-')) }) });
    await expect(pullWasmModule(fresh, ref)).rejects.toMatchObject({ code: 'oci_digest_mismatch', message: expect.stringContaining(pushedMod.layer.digest) });
    expect(await fresh.cache!.has(pushedMod.layer.digest)).toBe(false);
    fresh.close();
  });

  it('refuses a manifest over the size limit', async () => {
    const ref = parseReference(`${reg.host}/demo/huge:v1`);
    const config = await client.putBlob(ref, encodeJson({}), MediaTypes.ociEmpty);
    const layers = Array.from({ length: 400 }, (_, i) => ({ ...config, annotations: { n: String(i).padStart(200, '0') } }));
    const bytes = encodeJson({ schemaVersion: 2, mediaType: MediaTypes.ociManifest, config, layers });
    await client.putManifest(ref, bytes, MediaTypes.ociManifest);
    const small = createRegistryClient({ upstreams: UpstreamGuard.permissive(), insecure: [reg.host], maxManifestBytes: 16 * 1024 });
    await expect(small.getManifest(ref)).rejects.toMatchObject({ code: 'oci_too_large' });
    small.close();
  });

  it('refuses a plain-HTTP registry that is not in the insecure list', async () => {
    const strict = createRegistryClient({ upstreams: UpstreamGuard.permissive(), attempts: 1 });
    await expect(strict.resolve(parseReference(`${reg.host}/demo/hello:v1`))).rejects.toMatchObject({ code: 'oci_insecure_refused', message: expect.stringContaining(`--insecure-registry ${reg.host}`) });
    strict.close();
  });

  it('refuses a registry the upstream guard refuses, before connecting', async () => {
    const guarded = createRegistryClient({ upstreams: UpstreamGuard.from([]), insecure: [reg.host], attempts: 1 });
    await expect(guarded.resolve(parseReference(`${reg.host}/demo/hello:v1`))).rejects.toMatchObject({ code: 'oci_upstream_refused', message: expect.stringContaining('--allow-upstream') });
    guarded.close();
  });
});

async function pushImage(client: RegistryClient, ref: ReturnType<typeof parseReference>, arch: string, manifestType: string, configType: string) {
  const config = await client.putBlob(ref, encodeJson({ architecture: arch, os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }), configType);
  const layer = await client.putBlob(ref, encodeJson({ arch }), 'application/vnd.oci.image.layer.v1.tar');
  const m = { schemaVersion: 2, mediaType: manifestType, config, layers: [layer] };
  return client.putManifest({ ...ref, tag: undefined }, encodeJson(m), manifestType);
}

function pushed(d: { mediaType: string; digest: string; size: number }) {
  return { mediaType: d.mediaType, digest: d.digest, size: d.size };
}

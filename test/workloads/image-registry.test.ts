import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createRegistryClient, type Descriptor, encodeJson, MediaTypes, OciCache, parseReference, type Registry, type RegistryClient } from '../../src/oci/index.js';
import { HostDirs, UpstreamGuard } from '../../src/security/index.js';
import { WorkloadError } from '../../src/workloads/errors.js';
import { ImageStore } from '../../src/workloads/image/index.js';
import { buildImage, pushImage } from '../helpers/oci-image.js';
import { hasRegistryTools, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { hasBinary } from '../helpers/system-deps.js';

const tools = hasRegistryTools();

async function rejection(p: Promise<unknown>): Promise<WorkloadError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkloadError);
  return err as WorkloadError;
}

/** counting wraps a Registry and counts blob downloads by digest. */
function counting(inner: Registry): { registry: Registry; blobs: Map<string, number> } {
  const blobs = new Map<string, number>();
  const registry = new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'getBlob') {
        return (ref: Parameters<Registry['getBlob']>[0], digest: string, opts?: { maxBytes?: number }) => {
          blobs.set(digest, (blobs.get(digest) ?? 0) + 1);
          return target.getBlob(ref, digest, opts);
        };
      }
      return Reflect.get(target, prop, receiver) as unknown;
    },
  });
  return { registry, blobs };
}

describe.skipIf(!tools)('ImageStore pulling from docker-registry', () => {
  let reg: TestRegistry;
  let dir: string;
  let client: RegistryClient;
  const dataDir = () => mkdtempSync(join(dir, 'data-'));

  beforeAll(async () => {
    reg = await startRegistry();
    dir = mkdtempSync(join(tmpdir(), 'skiff-image-reg-'));
    client = createRegistryClient({ upstreams: UpstreamGuard.permissive(), insecure: [reg.host], cache: new OciCache({ dataDir: join(dir, 'oci') }) });
  });
  afterAll(async () => {
    client?.close();
    await reg?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('pulls an OCI image by tag and by digest, and pins the tag to the manifest digest', async () => {
    const img = await buildImage(
      [{ entries: [{ name: 'bin/', type: 'directory' }, { name: 'bin/app', content: '#!/bin/sh\necho hi\n', mode: 0o755 }] }, { entries: [{ name: 'www/index.html', content: 'hello' }], compression: hasBinary('zstd') ? 'zstd' : 'gzip' }],
      { config: { config: { Entrypoint: ['/bin/app'], Env: ['PATH=/bin'], ExposedPorts: { '8080/tcp': {} } } } },
    );
    const ref = { registry: reg.host, repository: 'demo/app', tag: 'v1' };
    const pushed = await pushImage(client, ref, img);
    expect(pushed.digest).toBe(img.manifestDesc.digest);
    const fresh = createRegistryClient({ upstreams: UpstreamGuard.permissive(), insecure: [reg.host] });
    const { registry, blobs } = counting(fresh);
    const data = dataDir();
    const store = new ImageStore({ dataDir: data, registry, hostDirs: HostDirs.none() });
    const byTag = await store.prepare(`oci://${reg.host}/demo/app:v1`);
    expect(byTag.digest).toBe(pushed.digest);
    expect(byTag.reference).toBe(`oci://${reg.host}/demo/app:v1@${pushed.digest}`);
    expect(byTag.rootfs).toBe(join(data, 'rootfs', `sha256-${pushed.digest.slice(7)}`, 'root'));
    expect(byTag.config).toEqual({ entrypoint: ['/bin/app'], env: ['PATH=/bin'], exposedPorts: ['8080/tcp'] });
    expect(readFileSync(join(byTag.rootfs, 'www/index.html'), 'utf8')).toBe('hello');
    expect(readFileSync(join(byTag.rootfs, 'bin/app'), 'utf8')).toContain('echo hi');
    const byDigest = await store.prepare(`oci://${reg.host}/demo/app@${pushed.digest}`);
    expect(byDigest.rootfs).toBe(byTag.rootfs);
    expect(byDigest.reference).toBe(`oci://${reg.host}/demo/app@${pushed.digest}`);
    // Each layer was downloaded once: the second prepare found the root file system unpacked.
    for (const l of img.layers) expect(blobs.get(l.desc.digest)).toBe(1);
    fresh.close();
  });

  it('picks linux/amd64 out of an image index and reads Docker schema 2 manifests', async () => {
    const ref = { registry: reg.host, repository: 'demo/multi' };
    const amd = await buildImage([{ entries: [{ name: 'arch', content: 'amd64' }] }], { docker: true, platform: { os: 'linux', architecture: 'amd64' } });
    const arm = await buildImage([{ entries: [{ name: 'arch', content: 'arm64' }] }], { platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } });
    const attestation = await buildImage([{ entries: [{ name: 'x', content: 'x' }] }], { platform: { os: 'unknown', architecture: 'unknown' } });
    const descs: Descriptor[] = [];
    for (const img of [arm, attestation, amd]) {
      const d = await pushImage(client, ref, img);
      descs.push({ ...d, platform: img.manifestDesc.platform });
    }
    const index = encodeJson({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: descs });
    const pushedIndex = await client.putManifest({ ...ref, tag: 'multi' }, index, MediaTypes.ociIndex);
    const store = new ImageStore({ dataDir: dataDir(), registry: client, hostDirs: HostDirs.none() });
    const img = await store.prepare(`oci://${reg.host}/demo/multi@${pushedIndex.digest}`);
    expect(img.digest).toBe(amd.manifestDesc.digest);
    expect(img.reference).toBe(`oci://${reg.host}/demo/multi@${amd.manifestDesc.digest}`);
    expect(readFileSync(join(img.rootfs, 'arch'), 'utf8')).toBe('amd64');
    const armImg = await store.prepare(`oci://${reg.host}/demo/multi:multi`, { platform: { os: 'linux', architecture: 'arm64' } });
    expect(readFileSync(join(armImg.rootfs, 'arch'), 'utf8')).toBe('arm64');
    const err = await rejection(store.prepare(`oci://${reg.host}/demo/multi:multi`, { platform: { os: 'linux', architecture: 'riscv64' } }));
    expect(err.reason).toBe('InvalidImage');
    expect(err.message).toMatch(/no image for linux\/riscv64/);
  });

  it('passes pull credentials to a registry that requires them', async () => {
    const auth = await startRegistry({ basic: { username: 'puller', password: 's3cret' } });
    try {
      const ref = { registry: auth.host, repository: 'private/app', tag: 'v1' };
      const creds = () => ({ username: 'puller', password: 's3cret', source: 'the test' });
      const pusher = createRegistryClient({ upstreams: UpstreamGuard.permissive(), insecure: [auth.host], credentials: creds });
      const img = await buildImage([{ entries: [{ name: 'secret', content: 'ok' }] }]);
      await pushImage(pusher, ref, img);
      pusher.close();
      const anonymous = createRegistryClient({ upstreams: UpstreamGuard.permissive(), insecure: [auth.host] });
      const store = new ImageStore({ dataDir: dataDir(), registry: anonymous, hostDirs: HostDirs.none() });
      const err = await rejection(store.prepare(`oci://${auth.host}/private/app:v1`));
      expect(err.reason).toBe('RegistryUnauthorized');
      const prepared = await store.prepare(`oci://${auth.host}/private/app:v1`, { credentials: (host) => (host === auth.host ? creds() : undefined) });
      expect(readFileSync(join(prepared.rootfs, 'secret'), 'utf8')).toBe('ok');
      anonymous.close();
    } finally {
      await auth.stop();
    }
  });

  it('fails clearly on a layer the registry lost or damaged, and keeps nothing', async () => {
    const ref = { registry: reg.host, repository: 'demo/broken', tag: 'v1' };
    const img = await buildImage([{ entries: [{ name: 'a', content: 'first' }] }, { entries: [{ name: 'b', content: 'second layer' }] }]);
    await pushImage(client, ref, img);
    const layer = img.layers[1]!.desc.digest;
    writeFileSync(reg.blobPath(layer), Buffer.alloc(img.layers[1]!.bytes.length, 0x1f));
    const fresh = createRegistryClient({ upstreams: UpstreamGuard.permissive(), insecure: [reg.host] });
    const data = dataDir();
    const store = new ImageStore({ dataDir: data, registry: fresh, hostDirs: HostDirs.none() });
    const err = await rejection(store.prepare(`oci://${reg.host}/demo/broken:v1`));
    expect(err.reason).toBe('DigestMismatch');
    expect(err.message).toContain(layer);
    expect(readdirSync(join(data, 'rootfs'))).toEqual([]);
    rmSync(reg.blobPath(layer));
    const e2 = await rejection(store.prepare(`oci://${reg.host}/demo/broken@${img.manifestDesc.digest}`));
    expect(e2.reason).toBe('ImageNotFound');
    expect(readdirSync(join(data, 'rootfs'))).toEqual([]);
    const e3 = await rejection(store.prepare(`oci://${reg.host}/demo/nothing:v1`));
    expect(e3.reason).toBe('ImageNotFound');
    expect(e3.message).toContain(`${reg.host}/demo/nothing:v1`);
    fresh.close();
  });

  it('refuses a Wasm module artifact given as a container image', async () => {
    const ref = parseReference(`${reg.host}/demo/wasm:v1`);
    const layer = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]);
    const l = await client.putBlob(ref, layer, 'application/wasm');
    const config = encodeJson({ architecture: 'wasm', os: 'wasip1' });
    const c = await client.putBlob(ref, config, 'application/vnd.wasm.config.v0+json');
    const manifest = encodeJson({ schemaVersion: 2, mediaType: MediaTypes.ociManifest, config: { ...c, mediaType: 'application/vnd.wasm.config.v0+json' }, layers: [l] });
    await client.putManifest(ref, manifest, MediaTypes.ociManifest);
    const store = new ImageStore({ dataDir: dataDir(), registry: client, hostDirs: HostDirs.none() });
    const err = await rejection(store.prepare(`oci://${reg.host}/demo/wasm:v1`));
    expect(err.reason).toBe('InvalidImage');
    expect(err.message).toMatch(/not a container image/);
  });
});

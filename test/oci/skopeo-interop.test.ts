import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createRegistryClient, encodeJson, MediaTypes, parseReference, pullWasmModule, pushWasmModule, type RegistryClient, sha256Of } from '../../src/oci/index.js';
import { UpstreamGuard } from '../../src/security/index.js';
import { hasRegistryTools, skopeo, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { wat } from '../helpers/wat.js';

const tools = hasRegistryTools();

/** layOut writes an OCI image layout holding one manifest (and its blobs) tagged `tag`. */
function layOut(dir: string, tag: string, blobs: Uint8Array[], manifest: Uint8Array): string {
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  for (const b of [...blobs, manifest]) writeFileSync(join(dir, 'blobs', 'sha256', sha256Of(b).slice(7)), b);
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const index = { schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [{ mediaType: MediaTypes.ociManifest, digest: sha256Of(manifest), size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': tag } }] };
  writeFileSync(join(dir, 'index.json'), JSON.stringify(index));
  return sha256Of(manifest);
}

describe.skipIf(!tools)('skopeo and Skiff read what the other pushed', () => {
  let reg: TestRegistry;
  let tls: TestRegistry;
  let work: string;
  let client: RegistryClient;
  let mod: Uint8Array;

  beforeAll(async () => {
    [reg, tls] = await Promise.all([startRegistry(), startRegistry({ tls: true })]);
    work = mkdtempSync(join(tmpdir(), 'skiff-skopeo-'));
    client = createRegistryClient({ upstreams: UpstreamGuard.permissive(), insecure: [reg.host], ca: tls.caPem! });
    mod = await wat('(module (memory 1) (func (export "_start")))');
  });
  afterAll(async () => {
    client?.close();
    await Promise.all([reg?.stop(), tls?.stop()]);
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('skopeo inspects and copies a module Skiff pushed, byte for byte', async () => {
    const ref = parseReference(`${reg.host}/interop/skiff-pushed:v1`);
    const pushed = await pushWasmModule(client, ref, mod);
    const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/interop/skiff-pushed:v1`]);
    expect(sha256Of(new Uint8Array(Buffer.from(raw)))).toBe(pushed.manifest.digest);
    const manifest = JSON.parse(raw) as { config: { mediaType: string }; layers: Array<{ mediaType: string; digest: string }> };
    expect(manifest.config.mediaType).toBe('application/vnd.wasm.config.v0+json');
    expect(manifest.layers.map((l) => l.mediaType)).toEqual(['application/wasm']);
    const dest = join(work, 'copied');
    await skopeo(['copy', '--src-tls-verify=false', `docker://${reg.host}/interop/skiff-pushed:v1`, `oci:${dest}:v1`]);
    const layer = readFileSync(join(dest, 'blobs', 'sha256', pushed.layer.digest.slice(7)));
    expect(Buffer.compare(layer, Buffer.from(mod))).toBe(0);
    const index = JSON.parse(readFileSync(join(dest, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
    expect(index.manifests[0]!.digest).toBe(pushed.manifest.digest);
  });

  it('skopeo copies from a TLS registry with its CA (--src-cert-dir)', async () => {
    const ref = parseReference(`${tls.host}/interop/over-tls:v1`);
    const pushed = await pushWasmModule(client, ref, mod);
    const raw = await skopeo(['inspect', '--raw', '--cert-dir', tls.certDir!, `docker://${tls.host}/interop/over-tls:v1`]);
    expect(sha256Of(new Uint8Array(Buffer.from(raw)))).toBe(pushed.manifest.digest);
  });

  it('Skiff pulls a single-layer Wasm artifact skopeo pushed from an OCI layout', async () => {
    // The variant other tools push: the empty config and the older Wasm layer type.
    const empty = new Uint8Array(Buffer.from('{}'));
    const manifest = encodeJson({
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      artifactType: 'application/vnd.module.wasm.content.layer.v1+wasm',
      config: { mediaType: MediaTypes.ociEmpty, digest: sha256Of(empty), size: empty.length },
      layers: [{ mediaType: 'application/vnd.wasm.content.layer.v1+wasm', digest: sha256Of(mod), size: mod.length, annotations: { 'org.opencontainers.image.title': 'module.wasm' } }],
    });
    const src = join(work, 'layout');
    const digest = layOut(src, 'v2', [empty, mod], manifest);
    await skopeo(['copy', '--dest-tls-verify=false', `oci:${src}:v2`, `docker://${reg.host}/interop/skopeo-pushed:v2`]);
    const pulled = await pullWasmModule(client, parseReference(`${reg.host}/interop/skopeo-pushed:v2`));
    expect(pulled.manifestDigest).toBe(digest);
    expect(Buffer.compare(Buffer.from(pulled.bytes), Buffer.from(mod))).toBe(0);
  });

  it('Skiff refuses an artifact with no Wasm layer, naming what it found', async () => {
    const cfg = encodeJson({ architecture: 'amd64', os: 'linux' });
    const tar = new Uint8Array(Buffer.from('not really a tarball'));
    const manifest = encodeJson({ schemaVersion: 2, mediaType: MediaTypes.ociManifest, config: { mediaType: MediaTypes.ociConfig, digest: sha256Of(cfg), size: cfg.length }, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256Of(tar), size: tar.length }] });
    const src = join(work, 'image');
    layOut(src, 'v1', [cfg, tar], manifest);
    await skopeo(['copy', '--dest-tls-verify=false', `oci:${src}:v1`, `docker://${reg.host}/interop/container:v1`]);
    await expect(pullWasmModule(client, parseReference(`${reg.host}/interop/container:v1`))).rejects.toMatchObject({ code: 'oci_artifact_unsupported', message: expect.stringContaining('application/vnd.oci.image.layer.v1.tar') });
  });
});

import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { BundleSource, type BundleSourceError } from '../../src/controllers/bundle-source.js';
import type { Descriptor, FetchedManifest, ImageReference, Registry } from '../../src/oci/types.js';
import { UpstreamGuard } from '../../src/security/index.js';

const digest = (b: Uint8Array | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** An in-memory Registry (the interface the OCI client implements), holding one manifest per tag. */
class MemoryRegistry implements Registry {
  manifests = new Map<string, Uint8Array>();
  blobs = new Map<string, Uint8Array>();
  blobPulls = 0;
  put(tag: string, manifest: object, blobs: Uint8Array[]): string {
    const bytes = Buffer.from(JSON.stringify(manifest));
    for (const b of blobs) this.blobs.set(digest(b), b);
    this.manifests.set(tag, bytes);
    this.manifests.set(digest(bytes), bytes);
    return digest(bytes);
  }
  async getManifest(ref: ImageReference): Promise<FetchedManifest> {
    const bytes = this.manifests.get(ref.digest ?? ref.tag ?? '');
    if (!bytes) throw new Error(`manifest unknown: ${ref.repository}:${ref.tag}`);
    return { digest: digest(bytes), mediaType: 'application/vnd.oci.image.manifest.v1+json', bytes, manifest: JSON.parse(Buffer.from(bytes).toString()) };
  }
  async getBlob(_ref: ImageReference, d: string): Promise<Uint8Array> {
    this.blobPulls++;
    const b = this.blobs.get(d);
    if (!b) throw new Error(`blob unknown: ${d}`);
    return b;
  }
  resolve(): Promise<Descriptor> {
    throw new Error('not used');
  }
  putBlob(): Promise<Descriptor> {
    throw new Error('not used');
  }
  putManifest(): Promise<Descriptor> {
    throw new Error('not used');
  }
  referrers(): Promise<Descriptor[]> {
    throw new Error('not used');
  }
  listTags(): Promise<string[]> {
    throw new Error('not used');
  }
}

const layer = (b: Uint8Array, mediaType = 'application/vnd.oci.image.layer.v1.tar+gzip') => ({ mediaType, digest: digest(b), size: b.length });
const config = { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digest('{}'), size: 2 };

async function reason(p: Promise<unknown>): Promise<BundleSourceError> {
  try {
    await p;
  } catch (e) {
    return e as BundleSourceError;
  }
  throw new Error('no error');
}

describe('OCI bundle sources', () => {
  it('pull the one tar+gzip layer as oras pushes it, and skip the download when the manifest digest is unchanged', async () => {
    const reg = new MemoryRegistry();
    const bundle = Buffer.from('pretend gzip');
    const d = reg.put('v1', { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config, layers: [layer(bundle)] }, [bundle]);
    const src = new BundleSource({ upstreams: UpstreamGuard.permissive(), registry: reg, maxBytes: 1024 });
    const got = await src.fetch('oci://127.0.0.1:5000/policies/authz:v1');
    expect(got).toMatchObject({ sourceDigest: d });
    expect(Buffer.from((got as { bytes: Uint8Array }).bytes).toString()).toBe('pretend gzip');
    expect(await src.fetch('oci://127.0.0.1:5000/policies/authz:v1', { sourceDigest: d })).toEqual({ unchanged: true });
    expect(reg.blobPulls).toBe(1);
    await expect(src.fetch(`oci://127.0.0.1:5000/policies/authz@${d}`)).resolves.toMatchObject({ sourceDigest: d });
  });

  it('refuse artifacts that are not one bundle layer, a layer over the limit, and a missing client', async () => {
    const reg = new MemoryRegistry();
    const a = Buffer.from('a');
    reg.put('two', { schemaVersion: 2, config, layers: [layer(a), layer(Buffer.from('b'))] }, [a]);
    reg.put('wasm', { schemaVersion: 2, config, layers: [layer(a, 'application/wasm')] }, [a]);
    reg.put('big', { schemaVersion: 2, config, layers: [{ ...layer(a), size: 4096 }] }, [a]);
    const src = new BundleSource({ upstreams: UpstreamGuard.permissive(), registry: reg, maxBytes: 1024 });
    expect((await reason(src.fetch('oci://r:1/p:two'))).message).toContain('has 2 layers of type application/vnd.oci.image.layer.v1.tar+gzip');
    expect((await reason(src.fetch('oci://r:1/p:wasm'))).reason).toBe('ArtifactInvalid');
    expect((await reason(src.fetch('oci://r:1/p:big'))).reason).toBe('BundleTooLarge');
    expect((await reason(src.fetch('oci://r:1/p:gone'))).message).toContain('cannot pull the manifest of r:1/p:gone');
    expect((await reason(new BundleSource({ upstreams: UpstreamGuard.permissive(), maxBytes: 1 }).fetch('oci://r:1/p:v1'))).reason).toBe('OCIUnavailable');
  });

  it('give up on a pull that outlasts spec.timeout', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    // a registry that answers the manifest, then holds the layer until released, then fails
    const slow = new (class extends MemoryRegistry {
      override async getBlob(_ref: ImageReference, d: string): Promise<Uint8Array> {
        await held;
        throw new Error(`late failure of ${d}`);
      }
    })();
    const bundle = Buffer.from('pretend gzip');
    slow.put('v1', { schemaVersion: 2, config, layers: [layer(bundle)] }, [bundle]);
    const src = new BundleSource({ upstreams: UpstreamGuard.permissive(), registry: slow, maxBytes: 1024 });
    const err = await reason(src.fetch('oci://r:1/p:v1', {}, 50));
    expect(err.reason).toBe('DownloadFailed');
    expect(err.message).toBe('pulling the bundle r:1/p:v1 took longer than 50 ms (spec.timeout)');
    // the abandoned pull failing later must not surface as an unhandled rejection
    release();
    await new Promise((r) => setTimeout(r, 10));
  });
});

describe('http bundle sources', () => {
  let server: http.Server;
  let base: string;
  const sockets = new Set<Socket>();
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      if (req.url === '/ok') {
        if (req.headers['if-none-match'] === '"v1"') return void res.writeHead(304).end();
        return void res.writeHead(200, { etag: '"v1"' }).end('bundle bytes');
      }
      if (req.url === '/redirect') return void res.writeHead(302, { location: '/ok' }).end();
      if (req.url === '/fail') return void res.writeHead(500).end();
      if (req.url === '/big') return void res.writeHead(200).end(Buffer.alloc(4096));
      sockets.add(req.socket); // /stall: never answers
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  });

  it('send If-None-Match, follow redirects, and report 500s, stalls, oversized bodies and refused targets', async () => {
    const port = Number(new URL(base).port);
    const src = new BundleSource({ upstreams: UpstreamGuard.from([`127.0.0.1:${port}`]), maxBytes: 1024 });
    expect(await src.fetch(`${base}/ok`)).toMatchObject({ etag: '"v1"' });
    expect(await src.fetch(`${base}/ok`, { etag: '"v1"' })).toEqual({ unchanged: true });
    expect(await src.fetch(`${base}/redirect`)).toMatchObject({ etag: '"v1"' });
    expect((await reason(src.fetch(`${base}/fail`))).message).toContain('answered HTTP 500');
    const stall = await reason(src.fetch(`${base}/stall`, {}, 300));
    expect([stall.reason, stall.message]).toEqual(['DownloadFailed', `fetching the bundle from 127.0.0.1:${port} took longer than 300 ms`]);
    expect((await reason(src.fetch(`${base}/big`))).reason).toBe('BundleTooLarge');
    const refused = await reason(new BundleSource({ upstreams: UpstreamGuard.from([]), maxBytes: 1024 }).fetch(`${base}/ok`));
    expect(refused.reason).toBe('UpstreamRefused');
  });
});

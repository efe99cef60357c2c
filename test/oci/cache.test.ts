import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { encodeJson, MediaTypes, OciCache, sha256Of } from '../../src/oci/index.js';

const dirs: string[] = [];
function cache(): OciCache {
  const d = mkdtempSync(join(tmpdir(), 'skiff-oci-cache-'));
  dirs.push(d);
  return new OciCache({ dataDir: d, tagTtlMs: 50 });
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const bytes = (s: string) => new Uint8Array(Buffer.from(s));

describe('OciCache', () => {
  it('stores by digest under DATA_DIR/oci/blobs/sha256 and refuses content with another digest', async () => {
    const c = cache();
    const b = bytes('hello');
    await c.put(sha256Of(b), b, 'blob x');
    expect(c.pathOf(sha256Of(b))).toMatch(/oci\/blobs\/sha256\/[0-9a-f]{64}$/);
    expect(Buffer.from((await c.get(sha256Of(b)))!).toString()).toBe('hello');
    await expect(c.put(sha256Of(bytes('other')), b, 'blob y')).rejects.toMatchObject({ code: 'oci_digest_mismatch', message: expect.stringContaining('blob y') });
    expect(await c.has(sha256Of(bytes('other')))).toBe(false);
    async function* stream() {
      yield bytes('aaaa');
      yield bytes('bbbb');
    }
    await expect(c.put(sha256Of(bytes('aaaabbbb')), stream(), 'blob z', 6)).rejects.toMatchObject({ code: 'oci_too_large' });
  });

  it('drops an entry damaged on disk instead of returning it', async () => {
    const c = cache();
    const b = bytes('precious');
    await c.put(sha256Of(b), b, 'blob');
    writeFileSync(c.pathOf(sha256Of(b)), 'tampered');
    expect(await c.get(sha256Of(b))).toBeUndefined();
    expect(await c.has(sha256Of(b))).toBe(false);
  });

  it('forgets tag resolutions after the TTL', async () => {
    const c = cache();
    c.rememberTag('r/x:v1', { mediaType: MediaTypes.ociManifest, digest: sha256Of(bytes('m')), size: 1 });
    expect(c.tag('r/x:v1')).toBeDefined();
    expect(c.tag('r/x:v1', Date.now() + 1000)).toBeUndefined();
  });

  it('collects what no kept manifest reaches, after the grace period', async () => {
    const c = cache();
    const layer = bytes('\0asm layer');
    const config = encodeJson({ architecture: 'wasm' });
    const manifest = encodeJson({ schemaVersion: 2, mediaType: MediaTypes.ociManifest, config: { mediaType: 'application/vnd.wasm.config.v0+json', digest: sha256Of(config), size: config.length }, layers: [{ mediaType: 'application/wasm', digest: sha256Of(layer), size: layer.length }] });
    const index = encodeJson({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [{ mediaType: MediaTypes.ociManifest, digest: sha256Of(manifest), size: manifest.length }] });
    const stray = bytes('nobody names me');
    for (const b of [layer, config, manifest, index, stray]) await c.put(sha256Of(b), b, 'entry');
    // Within the grace period nothing goes, named or not.
    expect(await c.gc([sha256Of(index)], 60_000)).toEqual([]);
    const later = statSync(c.pathOf(sha256Of(stray))).mtimeMs + 120_000;
    expect(await c.gc([sha256Of(index)], 60_000, later)).toEqual([sha256Of(stray)]);
    for (const b of [layer, config, manifest, index]) expect(await c.has(sha256Of(b))).toBe(true);
    const removed = await c.gc([], 60_000, later + 120_000);
    expect(removed.sort()).toEqual([layer, config, manifest, index].map(sha256Of).sort());
  });
});

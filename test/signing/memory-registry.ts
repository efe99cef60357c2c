import { createHash } from 'node:crypto';

import type { Descriptor, FetchedManifest, ImageIndex, ImageManifest, ImageReference, Registry } from '../../src/oci/types.js';
import { SkiffError } from '../../src/util/errors.js';

const digestOf = (b: Uint8Array): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/**
 * MemoryRegistry is an in-memory `Registry` for the signing tests: repositories of blobs, manifests
 * and tags, a referrers index built from each manifest's `subject`, and the same `oci_not_found` code
 * the real client raises. It checks digests the way the interface promises. `supportsReferrers: false`
 * makes `referrers` answer only from the `sha256-HEX` tag-schema index, as on a registry without the API.
 */
export class MemoryRegistry implements Registry {
  readonly blobs = new Map<string, Uint8Array>();
  readonly manifests = new Map<string, { bytes: Uint8Array; mediaType: string }>();
  readonly tags = new Map<string, string>();
  /** every call, in order, for tests that count round trips */
  readonly calls: string[] = [];

  constructor(private readonly opts: { supportsReferrers?: boolean } = {}) {}

  private key(ref: ImageReference, what: string): string {
    return `${ref.registry}/${ref.repository}|${what}`;
  }

  private notFound(what: string): never {
    throw new SkiffError('oci_not_found', `${what}: not found`);
  }

  async resolve(ref: ImageReference): Promise<Descriptor> {
    this.calls.push('resolve');
    const m = await this.getManifest(ref);
    return { mediaType: m.mediaType, digest: m.digest, size: m.bytes.length };
  }

  async getManifest(ref: ImageReference): Promise<FetchedManifest> {
    this.calls.push(`getManifest ${ref.tag ?? ref.digest}`);
    const digest = ref.digest ?? this.tags.get(this.key(ref, ref.tag ?? 'latest'));
    if (!digest) return this.notFound(`${ref.registry}/${ref.repository}:${ref.tag}`);
    const m = this.manifests.get(this.key(ref, digest));
    if (!m) return this.notFound(`${ref.registry}/${ref.repository}@${digest}`);
    return { digest, mediaType: m.mediaType, bytes: m.bytes, manifest: JSON.parse(Buffer.from(m.bytes).toString()) as ImageManifest | ImageIndex };
  }

  async getBlob(ref: ImageReference, digest: string, opts: { maxBytes?: number } = {}): Promise<Uint8Array> {
    this.calls.push(`getBlob ${digest}`);
    const b = this.blobs.get(this.key(ref, digest));
    if (!b) return this.notFound(`${ref.registry}/${ref.repository} blob ${digest}`);
    if (opts.maxBytes !== undefined && b.length > opts.maxBytes) throw new SkiffError('oci_too_large', `blob ${digest} is larger than ${opts.maxBytes} bytes`);
    if (digestOf(b) !== digest) throw new SkiffError('oci_digest_mismatch', `blob ${digest} does not match its digest`);
    return b;
  }

  async putBlob(ref: ImageReference, bytes: Uint8Array, mediaType: string): Promise<Descriptor> {
    this.calls.push('putBlob');
    const digest = digestOf(bytes);
    this.blobs.set(this.key(ref, digest), Uint8Array.from(bytes));
    return { mediaType, digest, size: bytes.length };
  }

  async putManifest(ref: ImageReference, bytes: Uint8Array, mediaType: string): Promise<Descriptor> {
    this.calls.push(`putManifest ${ref.tag ?? 'digest'}`);
    const digest = digestOf(bytes);
    this.manifests.set(this.key(ref, digest), { bytes: Uint8Array.from(bytes), mediaType });
    if (ref.tag) this.tags.set(this.key(ref, ref.tag), digest);
    const parsed = JSON.parse(Buffer.from(bytes).toString()) as ImageManifest;
    const desc: Descriptor = { mediaType, digest, size: bytes.length };
    if (parsed.subject && this.opts.supportsReferrers === false) await this.addToTagIndex(ref, parsed, desc);
    return desc;
  }

  /** The referrers tag schema: an index tagged `sha256-HEX` listing the referring manifests. */
  private async addToTagIndex(ref: ImageReference, m: ImageManifest, desc: Descriptor): Promise<void> {
    const tag = m.subject!.digest.replace(':', '-');
    const existing = this.tags.get(this.key(ref, tag));
    const index: ImageIndex = existing
      ? (JSON.parse(Buffer.from(this.manifests.get(this.key(ref, existing))!.bytes).toString()) as ImageIndex)
      : { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [] };
    index.manifests.push({ ...desc, artifactType: m.artifactType ?? m.config.mediaType, annotations: m.annotations });
    const bytes = Buffer.from(JSON.stringify(index));
    const digest = digestOf(bytes);
    this.manifests.set(this.key(ref, digest), { bytes, mediaType: index.mediaType! });
    this.tags.set(this.key(ref, tag), digest);
  }

  async referrers(ref: ImageReference, digest: string, opts: { artifactType?: string } = {}): Promise<Descriptor[]> {
    this.calls.push('referrers');
    let out: Descriptor[] = [];
    if (this.opts.supportsReferrers !== false) {
      for (const [k, m] of this.manifests) {
        if (!k.startsWith(`${ref.registry}/${ref.repository}|`)) continue;
        const parsed = JSON.parse(Buffer.from(m.bytes).toString()) as ImageManifest;
        if (parsed.subject?.digest === digest) out.push({ mediaType: m.mediaType, digest: k.slice(k.indexOf('|') + 1), size: m.bytes.length, artifactType: parsed.artifactType ?? parsed.config?.mediaType, annotations: parsed.annotations });
      }
    } else {
      const idx = this.tags.get(this.key(ref, digest.replace(':', '-')));
      if (idx) out = (JSON.parse(Buffer.from(this.manifests.get(this.key(ref, idx))!.bytes).toString()) as ImageIndex).manifests;
    }
    return opts.artifactType ? out.filter((d) => d.artifactType === opts.artifactType) : out;
  }

  async listTags(ref: ImageReference): Promise<string[]> {
    const prefix = `${ref.registry}/${ref.repository}|`;
    return [...this.tags.keys()].filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length));
  }

  /** pushImage stores a small image (config + one layer) under a tag and returns its manifest digest. */
  async pushImage(ref: ImageReference, content: string): Promise<string> {
    const layer = await this.putBlob(ref, Buffer.from(content), 'application/wasm');
    const config = await this.putBlob(ref, Buffer.from('{}'), 'application/vnd.wasm.config.v0+json');
    const manifest: ImageManifest = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config, layers: [layer] };
    return (await this.putManifest(ref, Buffer.from(JSON.stringify(manifest)), manifest.mediaType!)).digest;
  }
}

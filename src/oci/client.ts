import { chainProviders, type CredentialProvider } from './auth.js';
import { type Actions, Authorizer } from './authorizer.js';
import type { OciCache } from './cache.js';
import { OciDigestMismatchError, OciError, OciManifestError, OciNotFoundError, OciRegistryError, OciTooLargeError } from './errors.js';
import { descriptorOf, encodeJson, isIndex, MANIFEST_MEDIA_TYPES, MediaTypes, parseManifest, selectPlatform, sha256Of } from './manifest.js';
import { formatReference } from './reference.js';
import { Transport, type TransportOptions } from './transport.js';
import { type HttpRequest, type HttpResponse } from './transport.js';
import type { Descriptor, FetchedManifest, ImageIndex, ImageManifest, ImageReference, Platform, Registry } from './types.js';

/** The default manifest size limit: what the distribution spec tells registries to accept at least. */
export const DEFAULT_MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/** The default blob size limit: the module size limit. */
export const DEFAULT_MAX_BLOB_BYTES = 256 * 1024 * 1024;
/** Blobs larger than this are uploaded in PATCH chunks of this size. */
export const DEFAULT_CHUNK_BYTES = 8 * 1024 * 1024;

/** RegistryClientOptions configures `createRegistryClient`. */
export interface RegistryClientOptions extends TransportOptions {
  /** The shared content-addressed cache; without one, nothing is kept between calls. */
  cache?: OciCache;
  /** Where credentials come from, per registry host (a docker config.json, a Secret); anonymous when absent. */
  credentials?: CredentialProvider;
  /** Largest manifest accepted (default 4 MiB). */
  maxManifestBytes?: number;
  /** Largest blob accepted unless a call says otherwise (default 256 MiB). */
  maxBlobBytes?: number;
  /** Blobs above this size are pushed in chunks of it (default 8 MiB). */
  chunkBytes?: number;
}

/**
 * RegistryClient implements `Registry` over the OCI distribution API (spec 1.1; Docker registry v2
 * answers the same requests). Everything read is checked against its digest before it is returned or
 * cached; sizes are bounded; credentials go only to the registry they are for.
 */
export class RegistryClient implements Registry {
  private readonly auth: Authorizer;
  private readonly maxManifest: number;
  private readonly maxBlob: number;
  private readonly chunk: number;

  constructor(
    private readonly opts: RegistryClientOptions,
    private readonly transport: Transport = new Transport(opts),
    auth?: Authorizer,
  ) {
    this.auth = auth ?? new Authorizer(transport, opts.credentials ?? (() => undefined));
    this.maxManifest = opts.maxManifestBytes ?? DEFAULT_MAX_MANIFEST_BYTES;
    this.maxBlob = opts.maxBlobBytes ?? DEFAULT_MAX_BLOB_BYTES;
    this.chunk = Math.max(64 * 1024, opts.chunkBytes ?? DEFAULT_CHUNK_BYTES);
  }

  /** cache is the content-addressed cache this client reads through, if any. */
  get cache(): OciCache | undefined {
    return this.opts.cache;
  }

  /**
   * withCredentials returns a client that tries `credentials` first (a Function's pull secrets), then
   * this client's own, and shares this one's connections, cache and token cache (tokens stay per
   * identity).
   */
  withCredentials(credentials: CredentialProvider): RegistryClient {
    const chained = chainProviders(credentials, this.opts.credentials);
    return new RegistryClient({ ...this.opts, credentials: chained }, this.transport, new Authorizer(this.transport, chained, this.auth.shared));
  }

  /** close drops pooled connections (the CLI calls it before exiting). */
  close(): void {
    this.transport.close();
  }

  async resolve(ref: ImageReference, opts: { fresh?: boolean } = {}): Promise<Descriptor> {
    const what = `manifest ${formatReference(ref)}`;
    if (ref.digest) {
      const cached = await this.opts.cache?.get(ref.digest, this.maxManifest);
      if (cached) return descriptorOf(cached, parseManifest(cached, undefined, formatReference(ref)).mediaType);
    } else {
      const remembered = opts.fresh ? undefined : this.opts.cache?.tag(tagKey(ref));
      if (remembered) return remembered;
    }
    const target = ref.digest ?? ref.tag ?? 'latest';
    const res = await this.send(ref, 'pull', { method: 'HEAD', url: this.url(ref, `manifests/${target}`), what, headers: { accept: MANIFEST_MEDIA_TYPES.join(', ') } });
    const digest = header(res, 'docker-content-digest');
    const type = header(res, 'content-type')?.split(';')[0]?.trim();
    const size = Number(header(res, 'content-length'));
    res.discard();
    if (res.status === 200 && digest && (!ref.digest || digest === ref.digest) && type && MANIFEST_MEDIA_TYPES.includes(type) && Number.isSafeInteger(size)) {
      const desc: Descriptor = { mediaType: type, digest, size };
      if (!ref.digest) this.opts.cache?.rememberTag(tagKey(ref), desc);
      return desc;
    }
    if (res.status !== 200) {
      // A HEAD answer has no body to explain itself; 404 needs none, the rest is retried as a GET.
      if (res.status === 404) throw new OciNotFoundError(`${what} not found: check the repository, tag and digest`);
    }
    const m = await this.getManifest(ref);
    return { mediaType: m.mediaType, digest: m.digest, size: m.bytes.length };
  }

  async getManifest(ref: ImageReference, opts: { platform?: Platform; accept?: string[] } = {}): Promise<FetchedManifest> {
    let fetched = await this.fetchManifest(ref, opts.accept);
    for (let depth = 0; opts.platform && isIndex(fetched.manifest) && depth < 2; depth++) {
      const pick = selectPlatform(fetched.manifest, opts.platform, formatReference(ref));
      fetched = await this.fetchManifest({ registry: ref.registry, repository: ref.repository, digest: pick.digest }, opts.accept);
    }
    return fetched;
  }

  async getBlob(ref: ImageReference, digest: string, opts: { maxBytes?: number } = {}): Promise<Uint8Array> {
    const max = opts.maxBytes ?? this.maxBlob;
    const where = `blob ${ref.registry}/${ref.repository}@${digest}`;
    const cached = await this.opts.cache?.get(digest, max);
    if (cached) return cached;
    const res = await this.send(ref, 'pull', { method: 'GET', url: this.url(ref, `blobs/${digest}`), what: where, followRedirects: true });
    if (res.status !== 200) throw await statusError(res, where);
    const declared = Number(header(res, 'content-length') ?? NaN);
    if (declared > max) {
      res.discard();
      throw new OciTooLargeError(`${where} is ${declared} bytes; the limit is ${max}`);
    }
    if (!this.opts.cache) {
      const bytes = await res.bytes(max);
      if (sha256Of(bytes) !== digest) throw new OciDigestMismatchError(`${where}: the registry sent content whose digest is ${sha256Of(bytes)}, not ${digest}; nothing was used: the registry's copy is damaged or was swapped`);
      return bytes;
    }
    // Written to the cache as it arrives (hashed on the way), and collected for the caller.
    const chunks: Uint8Array[] = [];
    const tee = async function* (src: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
      for await (const c of src) {
        chunks.push(c);
        yield c;
      }
    };
    await this.opts.cache.put(digest, tee(res.stream()), where, max);
    const buf = Buffer.concat(chunks);
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
  }

  async putBlob(ref: ImageReference, bytes: Uint8Array, mediaType: string): Promise<Descriptor> {
    const desc = descriptorOf(bytes, mediaType);
    const where = `blob ${ref.registry}/${ref.repository}@${desc.digest}`;
    const head = await this.send(ref, 'pull,push', { method: 'HEAD', url: this.url(ref, `blobs/${desc.digest}`), what: where });
    head.discard();
    if (head.status !== 200) {
      if (head.status !== 404) throw await statusError(head, where);
      await this.upload(ref, bytes, desc.digest, where);
    }
    await this.opts.cache?.put(desc.digest, bytes, where);
    return desc;
  }

  async putManifest(ref: ImageReference, bytes: Uint8Array, mediaType: string): Promise<Descriptor> {
    const digest = sha256Of(bytes);
    const where = `manifest ${formatReference({ ...ref, digest: undefined })}${ref.tag ? '' : `@${digest}`}`;
    if (bytes.length > this.maxManifest) throw new OciTooLargeError(`${where} is ${bytes.length} bytes; the limit is ${this.maxManifest}`);
    if (ref.digest && ref.digest !== digest) throw new OciDigestMismatchError(`${where}: the manifest's digest is ${digest}, not ${ref.digest} as the reference says`);
    const { manifest } = parseManifest(bytes, mediaType, where);
    const res = await this.send(ref, 'pull,push', { method: 'PUT', url: this.url(ref, `manifests/${ref.tag ?? digest}`), what: where, body: bytes, headers: { 'content-type': mediaType } });
    if (res.status !== 201 && res.status !== 200) throw await statusError(res, where);
    const said = header(res, 'docker-content-digest');
    const subjectSeen = header(res, 'oci-subject');
    res.discard();
    if (said && said !== digest) throw new OciDigestMismatchError(`${where}: the registry stored it as ${said}, but its bytes have digest ${digest}`);
    await this.opts.cache?.put(digest, bytes, where);
    if (ref.tag) this.opts.cache?.forgetTag(tagKey(ref));
    const desc: Descriptor = { mediaType, digest, size: bytes.length };
    if (manifest.artifactType) desc.artifactType = manifest.artifactType;
    // A registry without the referrers API does not index subjects: the client keeps the fallback tag.
    if (manifest.subject && !subjectSeen) await this.addToReferrersTag(ref, manifest.subject.digest, referrerDescriptor(desc, manifest));
    return desc;
  }

  async referrers(ref: ImageReference, digest: string, opts: { artifactType?: string } = {}): Promise<Descriptor[]> {
    const where = `referrers of ${ref.registry}/${ref.repository}@${digest}`;
    const url = this.url(ref, `referrers/${digest}`);
    if (opts.artifactType) url.searchParams.set('artifactType', opts.artifactType);
    const res = await this.send(ref, 'pull', { method: 'GET', url, what: where, headers: { accept: MediaTypes.ociIndex } });
    const filter = (list: Descriptor[]) => (opts.artifactType ? list.filter((d) => d.artifactType === opts.artifactType) : list);
    if (res.status === 200) {
      const bytes = await res.bytes(this.maxManifest);
      const { manifest } = parseManifest(bytes, header(res, 'content-type'), where);
      if (!isIndex(manifest)) throw new OciManifestError(`${where}: the registry answered a manifest, not an index`);
      const applied = (header(res, 'oci-filters-applied') ?? '').split(',').map((s) => s.trim());
      return applied.includes('artifactType') ? manifest.manifests : filter(manifest.manifests);
    }
    if (res.status !== 404 && res.status !== 400 && res.status !== 405) throw await statusError(res, where);
    res.discard();
    const index = await this.referrersTagIndex(ref, digest);
    return filter(index?.manifests ?? []);
  }

  async listTags(ref: ImageReference): Promise<string[]> {
    const where = `tags of ${ref.registry}/${ref.repository}`;
    const out: string[] = [];
    let url: URL | undefined = this.url(ref, 'tags/list');
    url.searchParams.set('n', '1000');
    for (let page = 0; url && page < 1000; page++) {
      const res = await this.send(ref, 'pull', { method: 'GET', url, what: where });
      if (res.status !== 200) throw await statusError(res, where);
      let body: { tags?: unknown };
      try {
        body = JSON.parse(Buffer.from(await res.bytes(this.maxManifest)).toString('utf8')) as { tags?: unknown };
      } catch (err) {
        if (err instanceof OciError) throw err;
        throw new OciRegistryError(`${where}: the registry's tag list is not JSON`, 200);
      }
      if (Array.isArray(body.tags)) for (const t of body.tags) if (typeof t === 'string') out.push(t);
      const next = nextLink(header(res, 'link'));
      url = next ? new URL(next, url) : undefined;
    }
    return out;
  }

  /** fetchManifest GETs a manifest by tag or digest, checking the digest of the exact bytes received. */
  private async fetchManifest(ref: ImageReference, accept?: string[]): Promise<FetchedManifest> {
    const shown = formatReference(ref);
    const byTag = !ref.digest ? this.opts.cache?.tag(tagKey(ref)) : undefined;
    const want = ref.digest ?? byTag?.digest;
    if (want) {
      const cached = await this.opts.cache?.get(want, this.maxManifest);
      if (cached) {
        const parsed = parseManifest(cached, undefined, shown);
        return { digest: want, mediaType: parsed.mediaType, bytes: cached, manifest: parsed.manifest };
      }
    }
    const what = `manifest ${shown}`;
    const res = await this.send(ref, 'pull', { method: 'GET', url: this.url(ref, `manifests/${want ?? ref.tag ?? 'latest'}`), what, headers: { accept: (accept ?? MANIFEST_MEDIA_TYPES).join(', ') } });
    if (res.status !== 200) throw await statusError(res, what);
    const bytes = await res.bytes(this.maxManifest);
    const digest = sha256Of(bytes);
    if (want && digest !== want) throw new OciDigestMismatchError(`${what}: the registry sent a manifest whose digest is ${digest}, not ${want}; it was not used`);
    const said = header(res, 'docker-content-digest');
    if (!want && said && said !== digest) throw new OciDigestMismatchError(`${what}: the registry says the manifest is ${said} but its bytes have digest ${digest}; it was not used`);
    const parsed = parseManifest(bytes, header(res, 'content-type'), shown);
    await this.opts.cache?.put(digest, bytes, what, this.maxManifest);
    if (!ref.digest) this.opts.cache?.rememberTag(tagKey(ref), { mediaType: parsed.mediaType, digest, size: bytes.length });
    return { digest, mediaType: parsed.mediaType, bytes, manifest: parsed.manifest };
  }

  private async upload(ref: ImageReference, bytes: Uint8Array, digest: string, where: string): Promise<void> {
    const start = await this.send(ref, 'pull,push', { method: 'POST', url: this.url(ref, 'blobs/uploads/'), what: where });
    if (start.status !== 202) throw await statusError(start, where);
    let location = this.location(start, where);
    start.discard();
    if (bytes.length > this.chunk) {
      for (let off = 0; off < bytes.length; off += this.chunk) {
        const part = bytes.subarray(off, Math.min(bytes.length, off + this.chunk));
        const res = await this.send(ref, 'pull,push', { method: 'PATCH', url: location, what: `${where} (chunk at ${off})`, body: part, headers: { 'content-type': 'application/octet-stream', 'content-range': `${off}-${off + part.length - 1}` } });
        if (res.status !== 202) throw await statusError(res, where);
        location = this.location(res, where);
        res.discard();
      }
      location.searchParams.set('digest', digest);
      const done = await this.send(ref, 'pull,push', { method: 'PUT', url: location, what: where });
      if (done.status !== 201) throw await statusError(done, where);
      done.discard();
      return;
    }
    location.searchParams.set('digest', digest);
    const done = await this.send(ref, 'pull,push', { method: 'PUT', url: location, what: where, body: bytes, headers: { 'content-type': 'application/octet-stream' } });
    if (done.status !== 201) throw await statusError(done, where);
    done.discard();
  }

  private location(res: HttpResponse, where: string): URL {
    const loc = header(res, 'location');
    if (!loc) throw new OciRegistryError(`${where}: the registry started an upload without a Location to send it to`, res.status);
    const url = new URL(loc, res.url);
    // An upload URL on another host would receive the registry's credentials: refuse it.
    if (url.host !== res.url.host) throw new OciRegistryError(`${where}: the registry sent the upload to another host (${url.host}); Skiff does not send credentials there`, res.status);
    return url;
  }

  private async referrersTagIndex(ref: ImageReference, digest: string): Promise<ImageIndex | undefined> {
    const tag = `sha256-${digest.slice(7)}`;
    try {
      const m = await this.fetchManifest({ registry: ref.registry, repository: ref.repository, tag });
      if (!isIndex(m.manifest)) throw new OciManifestError(`the referrers tag ${tag} of ${ref.registry}/${ref.repository} holds a manifest, not an index`);
      return m.manifest;
    } catch (err) {
      if (err instanceof OciNotFoundError) return undefined;
      throw err;
    }
  }

  private async addToReferrersTag(ref: ImageReference, subject: string, desc: Descriptor): Promise<void> {
    const tag = `sha256-${subject.slice(7)}`;
    const tagRef: ImageReference = { registry: ref.registry, repository: ref.repository, tag };
    this.opts.cache?.forgetTag(tagKey(tagRef));
    const current = await this.referrersTagIndex(ref, subject);
    if (current?.manifests.some((d) => d.digest === desc.digest)) return;
    const index: ImageIndex = { schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [...(current?.manifests ?? []), desc] };
    await this.putManifest(tagRef, encodeJson(index), MediaTypes.ociIndex);
  }

  private send(ref: ImageReference, actions: Actions, req: HttpRequest): Promise<HttpResponse> {
    return this.auth.send(ref.registry, ref.repository, actions, req);
  }

  private url(ref: ImageReference, rest: string): URL {
    return new URL(`v2/${ref.repository}/${rest}`, this.transport.baseUrl(ref.registry));
  }
}

/** createRegistryClient makes a registry client; see RegistryClientOptions. */
export function createRegistryClient(options: RegistryClientOptions): RegistryClient {
  return new RegistryClient(options);
}

function referrerDescriptor(desc: Descriptor, m: ImageManifest | ImageIndex): Descriptor {
  const out: Descriptor = { mediaType: desc.mediaType, digest: desc.digest, size: desc.size };
  const artifactType = m.artifactType ?? (!isIndex(m) ? m.config.mediaType : undefined);
  if (artifactType) out.artifactType = artifactType;
  if (m.annotations && Object.keys(m.annotations).length) out.annotations = m.annotations;
  return out;
}

function tagKey(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}:${ref.tag ?? 'latest'}`;
}

function header(res: HttpResponse, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function nextLink(link: string | undefined): string | undefined {
  if (!link) return undefined;
  const m = /<([^>]+)>\s*;\s*rel="?next"?/i.exec(link);
  return m?.[1];
}

/** statusError turns an unexpected answer into a coded error, with the registry's own error code and message (short). */
async function statusError(res: HttpResponse, what: string): Promise<OciError> {
  const text = res.status === 404 || res.status >= 400 ? await res.text(16 * 1024) : (res.discard(), '');
  let detail = '';
  try {
    const errs = (JSON.parse(text) as { errors?: Array<{ code?: string; message?: string }> }).errors;
    if (errs?.length) detail = ` (${errs.slice(0, 3).map((e) => `${e.code ?? 'ERROR'}: ${String(e.message ?? '').slice(0, 200)}`).join('; ')})`;
  } catch {
    // Not the registry's JSON error shape: the status says enough.
  }
  if (res.status === 404) return new OciNotFoundError(`${what} not found${detail}: check the repository, tag and digest`);
  if (res.status === 413) return new OciTooLargeError(`${what}: the registry refused it as too large${detail}`);
  if (res.status >= 500) return new OciRegistryError(`${what}: the registry failed with HTTP ${res.status}${detail}, also after retrying; try again later`, res.status);
  return new OciRegistryError(`${what}: the registry answered HTTP ${res.status}${detail}`, res.status);
}

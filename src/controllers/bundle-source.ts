import http from 'node:http';
import https from 'node:https';
import type { LookupFunction, Socket } from 'node:net';

import { type ImageManifest, type ImageReference, parseReference, type Registry } from '../oci/index.js';
import { type UpstreamGuard, UpstreamRefusedError } from '../security/index.js';
import { SkiffError } from '../util/errors.js';
import { readBounded } from '../util/read-body.js';

/** BundleSourceError: the bundle could not be fetched; `reason` is the condition reason it becomes. */
export class BundleSourceError extends SkiffError {
  constructor(
    readonly reason: 'DownloadFailed' | 'UpstreamRefused' | 'BundleTooLarge' | 'OCIUnavailable' | 'ArtifactInvalid',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`bundle_source_${reason.toLowerCase()}`, message, options);
  }
}

/** Fetched is a new bundle, or word that the source still serves the one named by `etag`/`sourceDigest`. */
export type Fetched = { unchanged: true } | { unchanged?: false; bytes: Uint8Array; etag?: string; sourceDigest?: string };

export interface BundleSourceOptions {
  upstreams: UpstreamGuard;
  /** the OCI client (oci:// sources fail with OCIUnavailable without one) */
  registry?: Registry;
  /** largest bundle accepted (bytes) */
  maxBytes: number;
  /** deadline for one whole fetch, redirects included (default 30 s) */
  timeoutMs?: number;
  maxRedirects?: number;
}

/** The layer media types a bundle may be pushed as (oras push bundle.tar.gz:application/vnd.oci.image.layer.v1.tar+gzip). */
export const BUNDLE_LAYER_TYPES = ['application/vnd.oci.image.layer.v1.tar+gzip', 'application/vnd.docker.image.rootfs.diff.tar.gzip'];

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** parseOciSource reads `oci://HOST[:PORT]/REPO:TAG` or `oci://HOST[:PORT]/REPO@sha256:HEX` (the OCI area's parser). */
export function parseOciSource(source: string): ImageReference {
  try {
    return parseReference(source);
  } catch (err) {
    throw new BundleSourceError('ArtifactInvalid', `spec.source: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * BundleSource fetches bundles for PolicyBundles: http(s) URLs hop by hop, every hop checked by the
 * operator's upstream guard and connected to only at a checked address (as Function module URLs
 * are), with `If-None-Match` so an unchanged bundle costs a 304; OCI references through the
 * Registry client, skipping the download when the manifest digest is the one already active.
 */
export class BundleSource {
  constructor(private readonly opts: BundleSourceOptions) {}

  /** fetch gets the bundle unless it is the one named by `etag` (http) or `sourceDigest` (OCI). */
  fetch(source: string, known: { etag?: string; sourceDigest?: string } = {}, timeoutMs = this.opts.timeoutMs ?? 30_000): Promise<Fetched> {
    return source.startsWith('oci://') ? this.fetchOci(source, known.sourceDigest, timeoutMs) : this.fetchHttp(new URL(source), known.etag, timeoutMs);
  }

  /**
   * fetchOci holds an OCI pull to spec.timeout as the http path is held: the Registry client has only
   * its own per-request limits, so a registry answering slowly on every request could otherwise keep
   * the poll going far past it. The abandoned pull ends on the client's own timeouts.
   */
  private async fetchOci(source: string, knownDigest: string | undefined, timeoutMs: number): Promise<Fetched> {
    const pull = this.pullOci(source, knownDigest);
    pull.catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new BundleSourceError('DownloadFailed', `pulling the bundle ${source.slice('oci://'.length)} took longer than ${timeoutMs} ms (spec.timeout)`)), timeoutMs);
    });
    try {
      return await Promise.race([pull, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async pullOci(source: string, knownDigest: string | undefined): Promise<Fetched> {
    const registry = this.opts.registry;
    if (!registry) throw new BundleSourceError('OCIUnavailable', `spec.source ${source}: this server has no OCI registry client`);
    const ref = parseOciSource(source);
    const where = `${ref.registry}/${ref.repository}${ref.digest ? `@${ref.digest}` : `:${ref.tag}`}`;
    const fetched = await registry.getManifest(ref).catch((err: unknown) => {
      throw new BundleSourceError('DownloadFailed', `cannot pull the manifest of ${where}: ${(err as Error).message}`, { cause: err });
    });
    if (knownDigest && fetched.digest === knownDigest) return { unchanged: true };
    const manifest = fetched.manifest as ImageManifest;
    if (!Array.isArray(manifest.layers)) throw new BundleSourceError('ArtifactInvalid', `${where} is an image index, not a bundle: push the bundle as one tar+gzip layer (oras push REF bundle.tar.gz:application/vnd.oci.image.layer.v1.tar+gzip)`);
    const layers = manifest.layers.filter((l) => BUNDLE_LAYER_TYPES.includes(l.mediaType));
    if (layers.length !== 1) throw new BundleSourceError('ArtifactInvalid', `${where} has ${layers.length} layers of type ${BUNDLE_LAYER_TYPES[0]}; a bundle artifact has exactly one`);
    const layer = layers[0]!;
    if (layer.size > this.opts.maxBytes) throw new BundleSourceError('BundleTooLarge', `the bundle layer of ${where} is ${layer.size} bytes; the limit is ${this.opts.maxBytes}`);
    const bytes = await registry.getBlob({ ...ref, digest: fetched.digest }, layer.digest, { maxBytes: this.opts.maxBytes }).catch((err: unknown) => {
      throw new BundleSourceError('DownloadFailed', `cannot pull the bundle layer ${layer.digest} of ${where}: ${(err as Error).message}`, { cause: err });
    });
    return { bytes, sourceDigest: fetched.digest };
  }

  private async fetchHttp(start: URL, etag: string | undefined, timeoutMs: number): Promise<Fetched> {
    const signal = AbortSignal.timeout(timeoutMs);
    let url = start;
    for (let hop = 0; ; hop++) {
      const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
      const where = `${url.hostname}:${port}`;
      try {
        await this.opts.upstreams.check(url.hostname, port);
      } catch (err) {
        if (!(err instanceof UpstreamRefusedError)) throw err;
        throw new BundleSourceError('UpstreamRefused', `spec.source: ${hop ? `redirect ${hop} leads to a refused target: ` : ''}${err.message}; nothing was fetched from it`, { cause: err });
      }
      const res = await this.get(url, port, signal, etag).catch((err: unknown) => {
        if (err instanceof BundleSourceError) throw err;
        if (signal.aborted) throw new BundleSourceError('DownloadFailed', `fetching the bundle from ${where} took longer than ${timeoutMs} ms`, { cause: err });
        throw new BundleSourceError('DownloadFailed', `cannot fetch the bundle from ${where}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
      });
      const status = res.statusCode ?? 0;
      if (status === 304) {
        res.resume();
        return { unchanged: true };
      }
      if (REDIRECTS.has(status)) {
        res.destroy();
        if (hop >= (this.opts.maxRedirects ?? 5)) throw new BundleSourceError('DownloadFailed', `fetching the bundle from ${start.hostname} was redirected too many times`);
        const next = res.headers.location ? new URL(res.headers.location, url) : undefined;
        if (!next || (next.protocol !== 'http:' && next.protocol !== 'https:')) throw new BundleSourceError('DownloadFailed', `${where} answered HTTP ${status} without an http(s) Location to follow`);
        url = next;
        continue;
      }
      if (status < 200 || status > 299) {
        res.destroy();
        throw new BundleSourceError('DownloadFailed', `fetching the bundle from ${where} answered HTTP ${status}`);
      }
      const bytes = await this.readBody(res, where, signal, timeoutMs);
      const tag = res.headers.etag;
      return { bytes, ...(typeof tag === 'string' && tag ? { etag: tag } : {}) };
    }
  }

  private get(url: URL, port: number, signal: AbortSignal, etag: string | undefined): Promise<http.IncomingMessage> {
    const guard = this.opts.upstreams;
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    const lib = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = lib.request(
        {
          protocol: url.protocol,
          hostname: host,
          port,
          path: `${url.pathname}${url.search}`,
          method: 'GET',
          agent: false,
          signal,
          lookup: guard.lookup(port) as unknown as LookupFunction,
          headers: { accept: 'application/gzip, application/octet-stream;q=0.9, */*;q=0.1', 'user-agent': 'skiff', ...(etag ? { 'if-none-match': etag } : {}) },
        },
        resolve,
      );
      // A literal address skips lookup: check where the socket actually went as well.
      req.once('socket', (socket: Socket) => {
        socket.once('connect', () => {
          const why = socket.remoteAddress ? guard.checkAddress(host, socket.remoteAddress, port) : 'the connection has no remote address';
          if (why) req.destroy(new BundleSourceError('UpstreamRefused', `spec.source: ${why}; nothing was fetched from it`));
        });
      });
      req.once('error', (err) => reject(err instanceof UpstreamRefusedError ? new BundleSourceError('UpstreamRefused', `spec.source: ${err.message}; nothing was fetched from it`, { cause: err }) : err));
      req.end();
    });
  }

  private async readBody(res: http.IncomingMessage, where: string, signal: AbortSignal, timeoutMs: number): Promise<Uint8Array> {
    const max = this.opts.maxBytes;
    try {
      return await readBounded(res, max, (announced) =>
        announced !== undefined
          ? new BundleSourceError('BundleTooLarge', `the bundle at ${where} is ${announced} bytes; the limit is ${max}`)
          : new BundleSourceError('BundleTooLarge', `the bundle at ${where} is larger than the limit of ${max} bytes`),
      );
    } catch (err) {
      if (err instanceof BundleSourceError) throw err;
      if (signal.aborted) throw new BundleSourceError('DownloadFailed', `fetching the bundle from ${where} took longer than ${timeoutMs} ms`, { cause: err });
      throw new BundleSourceError('DownloadFailed', `the download from ${where} broke off (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err });
    }
  }
}

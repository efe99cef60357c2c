import { createHash } from 'node:crypto';
import { close, fstat, read } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction, Socket } from 'node:net';
import { promisify } from 'node:util';

import { parseModuleRef } from '../api/kinds/module-ref.js';
import { type CredentialProvider, type ImageReference, type RegistryClient } from '../oci/index.js';
import { type HostDirs, HostPathError, type UpstreamGuard,UpstreamRefusedError } from '../security/index.js';
import { BlobError, type BlobStore,DEFAULT_MAX_BLOB_BYTES } from '../store/index.js';

import { ModuleLoadError } from './errors.js';
import { pullOciModule } from './oci-module.js';

const readAsync = promisify(read);
const fstatAsync = promisify(fstat);
const closeAsync = promisify(close);

export interface LoadedModule {
  bytes: Uint8Array;
  /** sha256 of the module bytes: what the compile cache and the invoker key on. */
  digest: string;
  /** For an oci:// module: the reference pinned by the digest it resolved to (`oci://REG/REPO:TAG@sha256:...`). */
  resolved?: string;
}

/** What a Function adds to a load: where its pull secrets live, and the digest an earlier load pinned. */
export interface LoadContext {
  namespace?: string;
  /** Names of `kubernetes.io/dockerconfigjson` Secrets in `namespace` (spec.imagePullSecrets). */
  imagePullSecrets?: string[];
  /** status.resolvedModule from an earlier load: a tag is not resolved again while spec.module names the same tag. */
  pinned?: string;
}

/** PullSecrets reads a Function's pull secrets into credentials (the composition root supplies it). */
export type PullSecrets = (namespace: string, names: string[]) => Promise<CredentialProvider>;

export interface ModuleSourceOptions {
  /** Uploaded modules (`blob:sha256:HEX`). */
  blobs: BlobStore;
  /** The only host directories module files may be read from (`--allow-host-dir`). */
  hostDirs: HostDirs;
  /** Which network targets URL sources may reach, redirects included (`--allow-upstream`). */
  upstreams: UpstreamGuard;
  /** Largest module accepted, in bytes (default 256 MiB). */
  maxBytes?: number;
  /** Deadline for a whole fetch, redirects included (default 30 s). */
  fetchTimeoutMs?: number;
  /** Redirects followed at most (default 5). */
  maxRedirects?: number;
  /** The OCI registry client for oci:// modules (its cache is shared with every other consumer); without it they are refused. */
  registry?: RegistryClient;
  /** Reads spec.imagePullSecrets. */
  pullSecrets?: PullSecrets;
  /**
   * Checks an oci:// module's digest against the ImagePolicies in force before its bytes are used:
   * undefined admits it, a string is why not. Admission checked the reference already; this catches
   * a tag that moved, a policy added since, or a signature that was removed.
   */
  verifyArtifact?: (reference: string, digest: string) => Promise<string | undefined>;
  /**
   * In a cluster, asks the other nodes for an uploaded module this node does not have (the upload
   * reached another node's API): resolves with bytes whose digest the caller checks again, or
   * undefined when no node has it.
   */
  peerBlobs?: (hex: string, maxBytes: number) => Promise<Uint8Array | undefined>;
}

/** sha256Digest renders bytes' digest as `sha256:<hex>`. */
export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/**
 * ModuleSource loads the module a Function names, only from where the operator allowed: the blob store
 * (uploads, verified against their digest), a regular file inside an `--allow-host-dir` (opened so that
 * no symlink or swapped directory leads outside, and FIFOs never block), or an http(s) URL whose every
 * hop, redirects included, passes the upstream guard. Failures are ModuleLoadErrors whose reason and
 * message end up in the Function's Ready condition: they name the field and the flag, never file
 * contents or response bodies.
 */
export class ModuleSource {
  private readonly max: number;

  constructor(private readonly opts: ModuleSourceOptions) {
    this.max = opts.maxBytes ?? DEFAULT_MAX_BLOB_BYTES;
  }

  /** load fetches the module's bytes and checks `expectedDigest` (spec.digest) when one is given. */
  async load(ref: string, expectedDigest?: string, ctx: LoadContext = {}): Promise<LoadedModule> {
    const parsed = parseModuleRef(ref);
    let bytes: Uint8Array;
    let resolved: string | undefined;
    switch (parsed.type) {
      case 'oci':
        ({ bytes, resolved } = await this.loadOci(ref, parsed.ref, ctx));
        break;
      case 'blob':
        bytes = await this.loadBlob(parsed.hex);
        break;
      case 'host':
        bytes = await this.loadHostFile(parsed.path, parsed.absolute);
        break;
      case 'url':
        bytes = await this.fetch(parsed.url);
        break;
      default:
        throw new ModuleLoadError('ModuleRefInvalid', `spec.module ${parsed.message}`);
    }
    const digest = sha256Digest(bytes);
    if (expectedDigest && expectedDigest !== digest) {
      throw new ModuleLoadError('DigestMismatch', `the module has digest ${digest} but spec.digest expects ${expectedDigest}; the module was not loaded`);
    }
    return resolved ? { bytes, digest, resolved } : { bytes, digest };
  }

  private async loadOci(text: string, ref: ImageReference, ctx: LoadContext): Promise<{ bytes: Uint8Array; resolved: string }> {
    const { registry, pullSecrets } = this.opts;
    if (!registry) throw new ModuleLoadError('ModuleRefInvalid', `spec.module ${text}: this server has no OCI registry client`);
    let client = registry;
    if (ctx.imagePullSecrets?.length) {
      if (!pullSecrets || !ctx.namespace) throw new ModuleLoadError('PullSecretInvalid', 'spec.imagePullSecrets: this server cannot read Secrets');
      client = registry.withCredentials(await pullSecrets(ctx.namespace, ctx.imagePullSecrets));
    }
    const pulled = await pullOciModule(client, text, ref, { pinned: ctx.pinned, maxBytes: this.max });
    const digest = /@(sha256:[0-9a-f]{64})$/.exec(pulled.resolved)?.[1];
    if (this.opts.verifyArtifact && digest) {
      const refusal = await this.opts.verifyArtifact(text, digest);
      if (refusal) throw new ModuleLoadError('ImagePolicyDenied', `spec.module ${text}: ${refusal}; the module was pulled but not loaded`);
    }
    return pulled;
  }

  /**
   * watchPath is the host file to watch so that rebuilding it rolls it out: only for a host path the
   * operator allows (a path outside is never looked at, not even watched).
   */
  watchPath(ref: string): string | undefined {
    const parsed = parseModuleRef(ref);
    if (parsed.type !== 'host' || !parsed.absolute) return undefined;
    return this.opts.hostDirs.contains(parsed.path) ? parsed.path : undefined;
  }

  private async loadBlob(hex: string): Promise<Uint8Array> {
    try {
      return await this.opts.blobs.get(hex, { maxBytes: this.max });
    } catch (err) {
      if (!(err instanceof BlobError)) throw err;
      if (err.code === 'blob_not_found' && this.opts.peerBlobs) {
        const fetched = await this.fromPeers(hex);
        if (fetched) return fetched;
      }
      if (err.code === 'blob_not_found') throw new ModuleLoadError('ModuleNotFound', `the uploaded module sha256:${hex} is not in the server's module store; apply the Function again with skiff apply, which uploads it`, err);
      if (err.code === 'blob_corrupt') throw new ModuleLoadError('ModuleCorrupt', `the uploaded module sha256:${hex} is damaged on the server's disk and was discarded; apply the Function again with skiff apply to upload it again`, err);
      if (err.code === 'blob_too_large') throw new ModuleLoadError('ModuleTooLarge', `the uploaded module sha256:${hex} is larger than the limit of ${this.max} bytes`, err);
      throw new ModuleLoadError('ModuleNotReadable', `the uploaded module sha256:${hex} cannot be read from the server's module store (${err.code})`, err);
    }
  }

  /**
   * fromPeers fetches an uploaded module from another node and keeps it in this node's store, which
   * checks its digest as it writes (bytes that are not the digest's are refused, never stored or run).
   */
  private async fromPeers(hex: string): Promise<Uint8Array | undefined> {
    let bytes: Uint8Array | undefined;
    try {
      bytes = await this.opts.peerBlobs!(hex, this.max);
    } catch (err) {
      throw new ModuleLoadError('ModuleNotFound', `the uploaded module sha256:${hex} is not on this node and fetching it from another node failed: ${(err as Error).message}`, err);
    }
    if (!bytes) return undefined;
    try {
      await this.opts.blobs.put(hex, bytes);
    } catch (err) {
      if (err instanceof BlobError && err.code === 'blob_digest_mismatch') throw new ModuleLoadError('ModuleCorrupt', `another node sent bytes for the uploaded module sha256:${hex} that do not have its digest; they were discarded`, err);
      throw err;
    }
    return bytes;
  }

  private async loadHostFile(path: string, absolute: boolean): Promise<Uint8Array> {
    const { hostDirs } = this.opts;
    // Checked before anything touches the path, so a path outside tells nothing about what exists there.
    if (!absolute || !hostDirs.contains(path)) {
      throw new ModuleLoadError('HostPathNotAllowed', `spec.module: ${absolute ? `${path} is outside every directory this server may read (--allow-host-dir)` : `"${path}" is a relative path, which means nothing on the server`}; the module was not read. Apply the Function with skiff apply (it uploads local module files), or start skiff up with --allow-host-dir DIR for a directory that holds it`);
    }
    let fd: number;
    try {
      fd = hostDirs.openFile(path, 'spec.module');
    } catch (err) {
      throw hostError(err, path);
    }
    try {
      const size = (await fstatAsync(fd)).size;
      if (size > this.max) throw new ModuleLoadError('ModuleTooLarge', `spec.module: ${path} is ${size} bytes; the limit is ${this.max}`);
      const buf = Buffer.allocUnsafe(size);
      let off = 0;
      while (off < size) {
        const { bytesRead: n } = await readAsync(fd, buf, off, size - off, off);
        if (n === 0) break;
        off += n;
      }
      return new Uint8Array(buf.buffer, buf.byteOffset, off);
    } catch (err) {
      if (err instanceof ModuleLoadError) throw err;
      throw new ModuleLoadError('ModuleNotReadable', `spec.module: ${path} cannot be read by the Skiff process (${(err as NodeJS.ErrnoException).code ?? 'error'})`, err);
    } finally {
      await closeAsync(fd).catch(() => {});
    }
  }

  /** fetch GETs a URL hop by hop: every target is checked before connecting and connected to only at a checked address. */
  private async fetch(start: URL): Promise<Uint8Array> {
    const signal = AbortSignal.timeout(this.opts.fetchTimeoutMs ?? 30_000);
    const maxRedirects = this.opts.maxRedirects ?? 5;
    let url = start;
    for (let hop = 0; ; hop++) {
      const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
      const where = `${url.hostname}:${port}`;
      try {
        await this.opts.upstreams.check(url.hostname, port);
      } catch (err) {
        if (!(err instanceof UpstreamRefusedError)) throw err;
        throw new ModuleLoadError('UpstreamRefused', `spec.module: ${hop ? `redirect ${hop} leads to a refused target: ` : ''}${err.message}; nothing was fetched from it`, err);
      }
      const res = await this.get(url, port, signal).catch((err: unknown) => {
        if (err instanceof ModuleLoadError) throw err;
        if (signal.aborted) throw new ModuleLoadError('FetchFailed', `fetching the module from ${where} took longer than ${this.opts.fetchTimeoutMs ?? 30_000} ms`, err);
        throw new ModuleLoadError('FetchFailed', `cannot fetch the module from ${where}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, err);
      });
      const status = res.statusCode ?? 0;
      if (REDIRECTS.has(status)) {
        res.destroy();
        if (hop >= maxRedirects) throw new ModuleLoadError('FetchFailed', `fetching the module from ${start.hostname} was redirected more than ${maxRedirects} times`);
        const location = res.headers.location;
        let next: URL | undefined;
        try {
          next = location ? new URL(location, url) : undefined;
        } catch {
          next = undefined;
        }
        if (!next || (next.protocol !== 'http:' && next.protocol !== 'https:')) throw new ModuleLoadError('FetchFailed', `${where} answered HTTP ${status} without an http(s) Location to follow`);
        url = next;
        continue;
      }
      if (status < 200 || status > 299) {
        res.destroy();
        throw new ModuleLoadError('FetchFailed', `fetching the module from ${where} answered HTTP ${status}`);
      }
      return this.readBody(res, where, signal);
    }
  }

  private get(url: URL, port: number, signal: AbortSignal): Promise<http.IncomingMessage> {
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
          headers: { accept: 'application/wasm, application/octet-stream;q=0.9, */*;q=0.1', 'user-agent': 'skiff' },
        },
        resolve,
      );
      // A literal address skips lookup: check where the socket actually went as well.
      req.once('socket', (socket: Socket) => {
        socket.once('connect', () => {
          const why = socket.remoteAddress ? guard.checkAddress(host, socket.remoteAddress, port) : 'the connection has no remote address';
          if (why) req.destroy(new ModuleLoadError('UpstreamRefused', `spec.module: ${why}; nothing was fetched from it`));
        });
      });
      req.once('error', (err) => reject(refusedFromLookup(err)));
      req.end();
    });
  }

  private async readBody(res: http.IncomingMessage, where: string, signal: AbortSignal): Promise<Uint8Array> {
    const declared = Number(res.headers['content-length'] ?? NaN);
    if (declared > this.max) {
      res.destroy();
      throw new ModuleLoadError('ModuleTooLarge', `the module at ${where} is ${declared} bytes; the limit is ${this.max}`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of res as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > this.max) {
          res.destroy();
          throw new ModuleLoadError('ModuleTooLarge', `the module at ${where} is larger than the limit of ${this.max} bytes`);
        }
        chunks.push(chunk);
      }
    } catch (err) {
      if (err instanceof ModuleLoadError) throw err;
      if (signal.aborted) throw new ModuleLoadError('FetchFailed', `fetching the module from ${where} took longer than ${this.opts.fetchTimeoutMs ?? 30_000} ms`, err);
      throw new ModuleLoadError('FetchFailed', `the download from ${where} broke off (${(err as NodeJS.ErrnoException).code ?? 'error'})`, err);
    }
    const buf = Buffer.concat(chunks);
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
  }
}

/** refusedFromLookup turns the guard's refusal (raised inside the connection's lookup) back into a ModuleLoadError. */
function refusedFromLookup(err: unknown): unknown {
  if (err instanceof ModuleLoadError) return err;
  if (err instanceof UpstreamRefusedError) return new ModuleLoadError('UpstreamRefused', `spec.module: ${err.message}; nothing was fetched from it`, err);
  return err;
}

function hostError(err: unknown, path: string): ModuleLoadError {
  if (!(err instanceof HostPathError)) return new ModuleLoadError('ModuleNotReadable', `spec.module: ${path} cannot be read by the Skiff process`, err);
  switch (err.code) {
    case 'host_path_outside':
      return new ModuleLoadError('HostPathNotAllowed', `${err.message}; the module was not read`, err);
    case 'host_path_not_found':
      return new ModuleLoadError('ModuleNotFound', `spec.module: ${path} does not exist; build it or fix spec.module`, err);
    case 'host_path_not_regular':
      return new ModuleLoadError('ModuleNotRegularFile', `spec.module: ${path} is not a regular file`, err);
    case 'host_path_too_large':
      return new ModuleLoadError('ModuleTooLarge', err.message, err);
    default:
      return new ModuleLoadError('ModuleNotReadable', err.message, err);
  }
}

import type http from 'node:http';

import { BlobError, type BlobStore } from '../store/index.js';

import { ApiError } from './errors.js';

export interface BlobEndpointOptions {
  blobs: BlobStore;
}

const UPLOAD_TYPES = new Set(['application/wasm', 'application/octet-stream']);

/**
 * BlobEndpoint serves the module upload API under `/blobs/sha256/HEX`:
 * - `HEAD`: 200 (with the size as Content-Length) when the blob is stored, 404 when not;
 * - `PUT` with an `application/wasm` or `application/octet-stream` body: 201 when stored, 200 when it
 *   already was, 400 when the body's digest is not HEX, 413 beyond the size limit.
 * The API server authenticates every request before it reaches this endpoint.
 *
 * @example
 * curl -X PUT -H "authorization: Bearer $(cat .skiff/token)" -H 'content-type: application/wasm' \
 *   --data-binary @hello.wasm http://127.0.0.1:7070/blobs/sha256/$(sha256sum hello.wasm | cut -c1-64)
 */
export class BlobEndpoint {
  constructor(private readonly opts: BlobEndpointOptions) {}

  /** matches tells whether a request path belongs to this endpoint. */
  matches(path: string): boolean {
    return path === '/blobs' || path.startsWith('/blobs/');
  }

  /** handle answers one request; failures are thrown as ApiErrors for the server to render. */
  async handle(req: http.IncomingMessage, res: http.ServerResponse, path: string): Promise<void> {
    const m = /^\/blobs\/sha256\/([^/]+)$/.exec(path);
    if (!m) throw new ApiError(404, 'NotFound', 'blobs live at /blobs/sha256/HEX (64 lowercase hex digits)');
    const hex = m[1]!;
    if (!/^[0-9a-f]{64}$/.test(hex)) throw new ApiError(400, 'BadRequest', 'a blob is named by its sha256 digest: 64 lowercase hex digits');
    const method = req.method ?? 'GET';
    if (method === 'HEAD') {
      const found = await this.opts.blobs.has(hex);
      if (!found) throw new ApiError(404, 'NotFound', `blob sha256:${hex} is not stored`);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': found.size, 'x-skiff-digest': `sha256:${hex}` });
      res.end();
      return;
    }
    if (method !== 'PUT') throw new ApiError(405, 'MethodNotAllowed', `${method} is not supported on /blobs: use HEAD to ask and PUT to upload`);
    return this.upload(req, res, hex);
  }

  private async upload(req: http.IncomingMessage, res: http.ServerResponse, hex: string): Promise<void> {
    const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (!UPLOAD_TYPES.has(type)) {
      refuseBody(req, res);
      throw new ApiError(415, 'UnsupportedMediaType', `upload module bytes as application/wasm or application/octet-stream, not "${type || 'no Content-Type'}"`);
    }
    const max = this.opts.blobs.maxBytes;
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (declared > max) {
      refuseBody(req, res);
      throw tooLarge(max);
    }
    let out;
    try {
      // Stopping early (too large, wrong digest) must not destroy the request: its socket carries our answer.
      out = await this.opts.blobs.put(hex, req.iterator({ destroyOnReturn: false }) as AsyncIterable<Uint8Array>);
    } catch (err) {
      if (!req.complete) refuseBody(req, res);
      if (err instanceof BlobError) {
        if (err.code === 'blob_too_large') throw tooLarge(max);
        if (err.code === 'blob_digest_mismatch') throw new ApiError(400, 'BadRequest', err.message);
        if (!req.complete) throw new ApiError(400, 'BadRequest', 'the upload ended before its body was complete; nothing was stored');
      }
      throw err;
    }
    const body = JSON.stringify({ digest: `sha256:${hex}`, size: out.size });
    res.writeHead(out.created ? 201 : 200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), location: `/blobs/sha256/${hex}` });
    res.end(body);
  }
}

function tooLarge(max: number): ApiError {
  return new ApiError(413, 'RequestEntityTooLarge', `the module is larger than the limit of ${max} bytes`);
}

/**
 * refuseBody stops storing a body we refuse. The connection closes after the answer, but what the client
 * still sends is read and dropped for a while: closing a socket with unread data resets it, and the
 * client would lose the answer that says why.
 */
function refuseBody(req: http.IncomingMessage, res: http.ServerResponse): void {
  if (req.complete) return;
  res.setHeader('connection', 'close');
  req.resume();
  const socket = req.socket;
  if (!socket) return;
  const timer = setTimeout(() => socket.destroy(), 5000);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}

import { createReadStream, realpathSync, statSync } from 'node:fs';
import type http from 'node:http';
import { extname, join, sep } from 'node:path';

import { ApiError } from '../api/errors.js';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.map': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
};

/**
 * The page runs only the bundle it was served with and talks only to this server: no inline script or
 * style, no other origin, no framing.
 */
export const CONTENT_SECURITY_POLICY = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** esbuild names bundled files `NAME-HASH.EXT` (eight base32 characters): such a file never changes. */
const HASHED = /-[A-Z0-9]{8}\.[a-z0-9]+$/;

/**
 * StaticAssets serves the built page (`dist/web`) read-only: only regular files inside the directory,
 * after symlinks are resolved, with a known content type.
 */
export class StaticAssets {
  private root?: string;

  constructor(private readonly dir: string) {}

  /** serve answers GET or HEAD for `rel` (the URL path below the mount, still percent-encoded). */
  serve(req: http.IncomingMessage, res: http.ServerResponse, rel: string): void {
    const segments = decodeSegments(rel);
    const file = this.resolve(segments.length ? segments : ['index.html']);
    const type = CONTENT_TYPES[extname(file).toLowerCase()];
    if (!type) throw notFound(rel);
    const st = statSync(file);
    const hashed = HASHED.test(file);
    res.writeHead(200, {
      'content-type': type,
      'content-length': st.size,
      'cache-control': hashed ? 'public, max-age=31536000, immutable' : 'no-cache',
      'content-security-policy': CONTENT_SECURITY_POLICY,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'x-frame-options': 'DENY',
      ...(hashed ? {} : { 'last-modified': st.mtime.toUTCString() }),
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    createReadStream(file).pipe(res);
  }

  private resolve(segments: string[]): string {
    let root: string;
    try {
      root = this.root ??= realpathSync(this.dir);
    } catch {
      throw new ApiError(503, 'ServiceUnavailable', `the dashboard is not built (no ${this.dir}); run npm run build`);
    }
    let real: string;
    try {
      real = realpathSync(join(root, ...segments));
    } catch {
      throw notFound(segments.join('/'));
    }
    // A symlink inside the directory may point anywhere: what counts is where it leads.
    if (!real.startsWith(root + sep) || !statSync(real).isFile()) throw notFound(segments.join('/'));
    return real;
  }
}

/** decodeSegments splits a path below the mount into decoded segments, refusing any that could climb out. */
function decodeSegments(rel: string): string[] {
  const out: string[] = [];
  for (const raw of rel.split('/')) {
    if (raw === '') continue;
    let seg: string;
    try {
      seg = decodeURIComponent(raw);
    } catch {
      throw new ApiError(400, 'BadRequest', `the path segment "${raw}" is not valid percent-encoding`);
    }
    if (seg === '.' || seg === '..' || /[/\\\0]/.test(seg)) throw notFound(rel);
    out.push(seg);
  }
  return out;
}

function notFound(what: string): ApiError {
  return new ApiError(404, 'NotFound', `the dashboard has no file ${what}`);
}

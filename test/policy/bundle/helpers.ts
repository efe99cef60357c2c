import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { gzipSync } from 'node:zlib';

import { CompactSign } from 'jose';
import tar from 'tar-stream';

/** An entry of a hand-made tarball: any tar header type, so tests can build what no writer should. */
export interface RawEntry {
  name: string;
  body?: string | Buffer;
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'fifo';
  linkname?: string;
}

/** tarGz packs entries exactly as given (names, types), gzipped. */
export async function tarGz(entries: RawEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of pack) chunks.push(c);
  })();
  for (const e of entries) {
    const body = e.body === undefined ? Buffer.alloc(0) : Buffer.from(e.body);
    const type = e.type ?? 'file';
    await new Promise<void>((resolve, reject) =>
      pack.entry({ name: e.name, type, size: type === 'file' ? body.length : 0, mode: 0o600, linkname: e.linkname, mtime: new Date(0) }, type === 'file' ? body : undefined, (err) => (err ? reject(err) : resolve())),
    );
  }
  pack.finalize();
  await done;
  return gzipSync(Buffer.concat(chunks));
}

export const sha256 = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex');

export function keys(kind: 'ec' | 'rsa' | 'ed25519', curve = 'P-256'): { privateKey: KeyObject; publicPem: string } {
  const pair = kind === 'ec' ? generateKeyPairSync('ec', { namedCurve: curve }) : kind === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ed25519');
  return { privateKey: pair.privateKey, publicPem: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

/** jws signs a payload object as a compact JWS with a hand-picked header. */
export function jws(payload: unknown, key: KeyObject, header: Record<string, unknown>): Promise<string> {
  return new CompactSign(Buffer.from(JSON.stringify(payload))).setProtectedHeader(header as { alg: string }).sign(key);
}

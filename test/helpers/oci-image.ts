import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

import tar from 'tar-stream';

import { type Descriptor, MediaTypes, type Platform, type Registry } from '../../src/oci/index.js';

/** One tar entry of a test layer; `content` makes a regular file unless `type` says otherwise. */
export interface TarEntry {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'block-device' | 'fifo';
  mode?: number;
  content?: string | Buffer;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  mtime?: Date;
}

/** tarOf writes entries, in order and exactly as given (no name clean-up), as an uncompressed tar. */
export async function tarOf(entries: TarEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of pack) chunks.push(c);
  })();
  for (const e of entries) {
    const type = e.type ?? (e.content !== undefined ? 'file' : 'directory');
    const body = type === 'file' ? Buffer.from(e.content ?? '') : undefined;
    await new Promise<void>((resolve, reject) => {
      const header = { name: e.name, type, mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644), mtime: e.mtime ?? new Date(0), uid: 0, gid: 0, linkname: e.linkname, devmajor: e.devmajor, devminor: e.devminor, size: body?.length ?? 0 };
      pack.entry(header, body ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve()));
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

export type Compression = 'gzip' | 'zstd' | 'none';

/** compress compresses a tar (zstd through the `zstd` tool). */
export function compress(tarBytes: Buffer, c: Compression): Buffer {
  if (c === 'gzip') return gzipSync(tarBytes);
  if (c === 'zstd') return execFileSync('zstd', ['-q', '-c', '-3'], { input: tarBytes, maxBuffer: 1 << 30 });
  return tarBytes;
}

export const LAYER_TYPES: Record<Compression, string> = {
  gzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  zstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  none: 'application/vnd.oci.image.layer.v1.tar',
};

export function digestOf(b: Uint8Array): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

/** A built image: its blobs by digest and the manifest's descriptor. */
export interface BuiltImage {
  manifest: Buffer;
  manifestDesc: Descriptor;
  config: Buffer;
  layers: Array<{ bytes: Buffer; desc: Descriptor }>;
}

export interface LayerSpec {
  entries?: TarEntry[];
  /** Raw layer bytes as stored (already compressed or deliberately damaged), instead of entries. */
  raw?: Buffer;
  /** The uncompressed digest to list in rootfs.diff_ids (computed from entries when absent). */
  diffId?: string;
  compression?: Compression;
  mediaType?: string;
}

/** buildImage assembles an image: layers, a configuration (`config` merged over the defaults) and a manifest. */
export async function buildImage(layers: LayerSpec[], opts: { config?: Record<string, unknown>; platform?: Platform; docker?: boolean; diffIds?: boolean } = {}): Promise<BuiltImage> {
  const built: BuiltImage['layers'] = [];
  const diffIds: string[] = [];
  for (const l of layers) {
    const c = l.compression ?? 'gzip';
    let bytes: Buffer;
    if (l.raw) {
      bytes = l.raw;
      diffIds.push(l.diffId ?? digestOf(bytes));
    } else {
      const t = await tarOf(l.entries ?? []);
      diffIds.push(l.diffId ?? digestOf(t));
      bytes = compress(t, c);
    }
    const mediaType = l.mediaType ?? (opts.docker ? 'application/vnd.docker.image.rootfs.diff.tar.gzip' : LAYER_TYPES[c]);
    built.push({ bytes, desc: { mediaType, digest: digestOf(bytes), size: bytes.length } });
  }
  const platform = opts.platform ?? { os: 'linux', architecture: 'amd64' };
  const configDoc: Record<string, unknown> = { architecture: platform.architecture, os: platform.os, config: { Cmd: ['/bin/true'] }, ...(opts.config ?? {}) };
  if (opts.diffIds !== false && !('rootfs' in configDoc)) configDoc.rootfs = { type: 'layers', diff_ids: diffIds };
  const config = Buffer.from(JSON.stringify(configDoc));
  const configType = opts.docker ? MediaTypes.dockerConfig : MediaTypes.ociConfig;
  const manifestType = opts.docker ? MediaTypes.dockerManifest : MediaTypes.ociManifest;
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: manifestType, config: { mediaType: configType, digest: digestOf(config), size: config.length }, layers: built.map((l) => l.desc) }));
  return { manifest, manifestDesc: { mediaType: manifestType, digest: digestOf(manifest), size: manifest.length, platform }, config, layers: built };
}

/** writeLayout writes images into an OCI image layout directory (one index.json entry per image). */
export function writeLayout(dir: string, images: BuiltImage[], opts: { platforms?: boolean } = {}): void {
  const blobs = join(dir, 'blobs', 'sha256');
  mkdirSync(blobs, { recursive: true });
  const put = (b: Buffer) => writeFileSync(join(blobs, digestOf(b).slice(7)), b);
  for (const img of images) {
    put(img.manifest);
    put(img.config);
    for (const l of img.layers) put(l.bytes);
  }
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const manifests = images.map((i) => {
    const { platform, ...rest } = i.manifestDesc;
    return opts.platforms === false ? rest : { ...rest, platform };
  });
  writeFileSync(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests }));
}

/** pushImage uploads an image's blobs and manifest with the OCI client, under `tag` or by digest. */
export async function pushImage(client: Registry, ref: { registry: string; repository: string; tag?: string }, img: BuiltImage): Promise<Descriptor> {
  for (const l of img.layers) await client.putBlob(ref, l.bytes, l.desc.mediaType);
  await client.putBlob(ref, img.config, 'application/octet-stream');
  return client.putManifest(ref, img.manifest, img.manifestDesc.mediaType);
}

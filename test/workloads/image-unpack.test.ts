import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

import type { Logger } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import type { Registry } from '../../src/oci/index.js';
import { HostDirs } from '../../src/security/index.js';
import { WorkloadError } from '../../src/workloads/errors.js';
import { ImageStore, type ImageStoreOptions } from '../../src/workloads/image/index.js';
import { buildImage, type BuiltImage, digestOf, type LayerSpec, type TarEntry, tarOf, writeLayout } from '../helpers/oci-image.js';
import { hasBinary } from '../helpers/system-deps.js';

const hasZstd = hasBinary('zstd');

/** A registry that must not be used: these tests read local layouts only. */
const noRegistry = new Proxy({}, { get: () => () => Promise.reject(new Error('no registry in this test')) }) as Registry;

let base: string;
let layouts: string;
let data: string;
let outside: string;

beforeEach(() => {
  // The root being unpacked is BASE/data/rootfs/.tmp-X/root: four levels below BASE, so a name that
  // climbs four levels would land in BASE, where the test looks for it.
  base = mkdtempSync(join(tmpdir(), 'skiff-image-'));
  layouts = join(base, 'layouts');
  data = join(base, 'data');
  outside = join(base, 'outside');
  mkdirSync(layouts);
  mkdirSync(outside);
  writeFileSync(join(outside, 'passwd'), 'root:x:0:0\n');
});

afterEach(() => {
  rmSync(base, { recursive: true, force: true });
});

function store(opts: Partial<ImageStoreOptions> = {}): ImageStore {
  return new ImageStore({ dataDir: data, registry: noRegistry, hostDirs: HostDirs.from([layouts]), ...opts });
}

let seq = 0;
async function layout(layers: LayerSpec[], opts: Parameters<typeof buildImage>[1] = {}): Promise<{ dir: string; img: BuiltImage }> {
  const img = await buildImage(layers, opts);
  const dir = join(layouts, `img${++seq}`);
  writeLayout(dir, [img]);
  return { dir, img };
}

async function rejection(p: Promise<unknown>): Promise<WorkloadError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkloadError);
  return err as WorkloadError;
}

/** Nothing prepared and nothing temporary remains under DATA_DIR/rootfs. */
function assertNoRootfs(): void {
  const dir = join(data, 'rootfs');
  expect(existsSync(dir) ? readdirSync(dir) : []).toEqual([]);
}

async function refused(entries: TarEntry[], reason: string, mentions: RegExp, lower: TarEntry[] = []): Promise<WorkloadError> {
  const layers: LayerSpec[] = lower.length ? [{ entries: lower }, { entries }] : [{ entries }];
  const { dir } = await layout(layers);
  const err = await rejection(store().prepare(dir));
  expect(err.reason).toBe(reason);
  expect(err.message).toMatch(mentions);
  expect(err.message).toContain(dir);
  expect(err.message).toMatch(/layer \d \(sha256:[0-9a-f]{64}\)/);
  assertNoRootfs();
  expect(readdirSync(base).sort()).toEqual(['data', 'layouts', 'outside']);
  expect(readFileSync(join(outside, 'passwd'), 'utf8')).toBe('root:x:0:0\n');
  expect(readdirSync(outside)).toEqual(['passwd']);
  return err;
}

describe('layer attacks are refused and leave nothing behind', () => {
  it('a name with ".." components', async () => {
    await refused([{ name: '../../../../escaped', content: 'x' }], 'LayerEscapesRoot', /"\.\.\/\.\.\/\.\.\/\.\.\/escaped".*"\.\."/);
    await refused([{ name: 'ok/../../../../../escaped', content: 'x' }], 'LayerEscapesRoot', /escaped/);
  });

  it('an absolute name that climbs after normalisation', async () => {
    await refused([{ name: '/abs/../../../../../escaped', content: 'x' }], 'LayerEscapesRoot', /\/abs\/\.\./);
  });

  it('a symlink to a host directory, then a file through it', async () => {
    await refused([{ name: 'evil', type: 'symlink', linkname: outside }, { name: 'evil/passwd', content: 'pwned' }], 'LayerEscapesRoot', /"evil\/passwd".*parent "evil" is a symbolic link/);
    // The same with /etc itself: the name is one no host has, so a failure of this test harms nothing.
    const name = `skiff-test-${process.pid}-${Date.now()}`;
    await refused([{ name: 'evil', type: 'symlink', linkname: '/etc' }, { name: `evil/${name}`, content: 'pwned' }], 'LayerEscapesRoot', /symbolic link/);
    expect(existsSync(join('/etc', name))).toBe(false);
  });

  it('a symlink made by a lower layer is not followed by a later one', async () => {
    await refused([{ name: 'evil/passwd', content: 'pwned' }], 'LayerEscapesRoot', /layer 2 .*symbolic link/, [{ name: 'evil', type: 'symlink', linkname: outside }]);
    await refused([{ name: 'evil/sub/', type: 'directory' }], 'LayerEscapesRoot', /symbolic link/, [{ name: 'evil', type: 'symlink', linkname: outside }]);
  });

  it('chains of symlinks to ".."', async () => {
    await refused(
      [
        { name: 'up', type: 'symlink', linkname: '..' },
        { name: 'up2', type: 'symlink', linkname: 'up/../..' },
        { name: 'up2/up/escaped', content: 'x' },
      ],
      'LayerEscapesRoot',
      /"up2" is a symbolic link/,
    );
    await refused([{ name: 'd/', type: 'directory' }, { name: 'd/up', type: 'symlink', linkname: '../../../../..' }, { name: 'd/up/escaped', content: 'x' }], 'LayerEscapesRoot', /"d\/up" is a symbolic link/);
  });

  it('hard links to host files and through links', async () => {
    await refused([{ name: 'shadow', type: 'link', linkname: '/etc/shadow' }], 'InvalidImage', /hard link to "\/etc\/shadow", which no earlier entry/);
    await refused([{ name: 'shadow', type: 'link', linkname: '../../../../outside/passwd' }], 'LayerEscapesRoot', /"\.\."/);
    await refused([{ name: 'evil', type: 'symlink', linkname: outside }, { name: 'pw', type: 'link', linkname: 'evil/passwd' }], 'LayerEscapesRoot', /parent "evil" is a symbolic link/);
    await refused([{ name: 'd/', type: 'directory' }, { name: 'dl', type: 'link', linkname: 'd' }], 'InvalidImage', /hard link to the directory/);
  });

  it('device nodes and FIFOs', async () => {
    await refused([{ name: 'dev/', type: 'directory' }, { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3 }], 'LayerEscapesRoot', /"dev\/null" is a character device \(1:3\)/);
    await refused([{ name: 'sda', type: 'block-device', devmajor: 8, devminor: 0 }], 'LayerEscapesRoot', /block device/);
    await refused([{ name: 'pipe', type: 'fifo' }], 'InvalidImage', /FIFO/);
  });

  it('a whiteout of ".."', async () => {
    await refused([{ name: 'a/.wh...', content: '' }], 'LayerEscapesRoot', /whiteout of "\.\."/);
  });
});

describe('corrupt and oversized layers', () => {
  it('a layer blob whose bytes do not have its digest', async () => {
    const { dir, img } = await layout([{ entries: [{ name: 'hello', content: 'hi' }], compression: 'none' }]);
    const good = img.layers[0]!;
    const blob = join(dir, 'blobs', 'sha256', good.desc.digest.slice(7));
    // Same size, one byte of file content changed: a valid tar, only the digest tells.
    const swapped = await tarOf([{ name: 'hello', content: 'ho' }]);
    expect(swapped.length).toBe(good.bytes.length);
    writeFileSync(blob, swapped);
    const err = await rejection(store().prepare(dir));
    expect(err.reason).toBe('DigestMismatch');
    expect(err.message).toContain(good.desc.digest);
    expect(err.message).toMatch(/has digest sha256:/);
    assertNoRootfs();
    // A blob of another size is refused before it is read.
    writeFileSync(blob, Buffer.concat([swapped, Buffer.alloc(512)]));
    const e2 = await rejection(store().prepare(dir));
    expect(e2.reason).toBe('DigestMismatch');
    expect(e2.message).toMatch(/bytes on disk but its descriptor says/);
    assertNoRootfs();
  });

  it('a missing layer blob', async () => {
    const { dir, img } = await layout([{ entries: [{ name: 'hello', content: 'hi' }] }]);
    rmSync(join(dir, 'blobs', 'sha256', img.layers[0]!.desc.digest.slice(7)));
    const err = await rejection(store().prepare(dir));
    expect(err.reason).toBe('InvalidImage');
    expect(err.message).toMatch(/missing/);
    assertNoRootfs();
  });

  it('a truncated gzip layer (with a digest that matches the truncated bytes)', async () => {
    const full = gzipSync(await tarOf([{ name: 'big', content: Buffer.alloc(200_000, 7) }, { name: 'after', content: 'x' }]));
    const { dir } = await layout([{ raw: full.subarray(0, full.length - 40), diffId: digestOf(Buffer.alloc(1)) }]);
    const err = await rejection(store().prepare(dir));
    expect(err.reason).toBe('InvalidImage');
    expect(err.message).toMatch(/not a valid gzip stream/);
    assertNoRootfs();
  });

  it('a layer whose uncompressed digest is not the one rootfs.diff_ids promises', async () => {
    const { dir } = await layout([{ entries: [{ name: 'a', content: 'a' }], diffId: digestOf(Buffer.from('other')) }]);
    const err = await rejection(store().prepare(dir));
    expect(err.reason).toBe('InvalidImage');
    expect(err.message).toMatch(/rootfs\.diff_ids/);
    assertNoRootfs();
  });

  it('an image that unpacks past maxImageBytes', async () => {
    const { dir } = await layout([{ entries: [{ name: 'a', content: Buffer.alloc(600_000) }] }, { entries: [{ name: 'b', content: Buffer.alloc(600_000) }] }]);
    const err = await rejection(store({ maxImageBytes: 1_000_000 }).prepare(dir));
    expect(err.reason).toBe('ImageTooLarge');
    expect(err.message).toMatch(/limit of 1000000 bytes.*"b"/);
    assertNoRootfs();
  });

  it('a layer over maxLayerBytes compressed is refused before it is read', async () => {
    const { dir } = await layout([{ entries: [{ name: 'a', content: randomBytes(50_000) }] }]);
    const err = await rejection(store({ maxLayerBytes: 10_000 }).prepare(dir));
    expect(err.reason).toBe('ImageTooLarge');
    expect(err.message).toMatch(/layer limit is 10000/);
    assertNoRootfs();
  });

  it('a tar bomb of many entries', async () => {
    const entries: TarEntry[] = Array.from({ length: 3000 }, (_, i) => ({ name: `f${i}`, content: '' }));
    const { dir } = await layout([{ entries }]);
    const err = await rejection(store({ maxEntries: 1000 }).prepare(dir));
    expect(err.reason).toBe('ImageTooLarge');
    expect(err.message).toMatch(/more than 1000 entries/);
    assertNoRootfs();
  });

  it('a decompression bomb: zeros after the end of the archive', async () => {
    const tarBytes = await tarOf([{ name: 'a', content: 'a' }]);
    const bomb = gzipSync(Buffer.concat([tarBytes, Buffer.alloc(48 * 1024 * 1024)]));
    expect(bomb.length).toBeLessThan(200_000);
    const { dir } = await layout([{ raw: bomb }], { diffIds: false });
    const err = await rejection(store().prepare(dir));
    expect(err.reason).toBe('ImageTooLarge');
    expect(err.message).toMatch(/decompression bomb/);
    assertNoRootfs();
  });

  it.skipIf(!hasZstd)('a truncated zstd layer', async () => {
    const { img } = await layout([{ entries: [{ name: 'z', content: Buffer.alloc(300_000, 1) }], compression: 'zstd' }]);
    const raw = img.layers[0]!.bytes;
    const { dir } = await layout([{ raw: raw.subarray(0, raw.length - 30), mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd' }], { diffIds: false });
    const err = await rejection(store().prepare(dir));
    expect(err.reason).toBe('InvalidImage');
    expect(err.message).toMatch(/not a valid zstd stream/);
    assertNoRootfs();
  });
});

describe('layer semantics', () => {
  it('applies whiteouts and opaque directories to lower layers only', async () => {
    const { dir } = await layout([
      {
        entries: [
          { name: 'a/', type: 'directory' },
          { name: 'a/x', content: 'x' },
          { name: 'a/y', content: 'y' },
          { name: 'b/', type: 'directory' },
          { name: 'b/z', content: 'z' },
          { name: 'b/deep/', type: 'directory' },
          { name: 'b/deep/old', content: 'old' },
          { name: 'c', content: 'c' },
          { name: 'e/', type: 'directory' },
          { name: 'e/old', content: 'old' },
          { name: 'gone/', type: 'directory' },
          { name: 'gone/inner', content: 'i' },
        ],
      },
      {
        entries: [
          { name: 'a/.wh.x', content: '' },
          { name: '.wh.c', content: '' },
          { name: '.wh.gone', content: '' },
          { name: 'b/.wh..wh..opq', content: '' },
          { name: 'b/new', content: 'new' },
          { name: 'b/deep/fresh', content: 'fresh' },
          // The opaque marker after a sibling of the same layer still keeps that sibling.
          { name: 'e/fresh', content: 'fresh' },
          { name: 'e/.wh..wh..opq', content: '' },
          // A whiteout never hides an entry of its own layer.
          { name: 'f', content: 'f' },
          { name: '.wh.f', content: '' },
          { name: '.wh.never-existed', content: '' },
        ],
      },
    ]);
    const img = await store().prepare(dir);
    const r = img.rootfs;
    expect(readdirSync(join(r, 'a'))).toEqual(['y']);
    expect(existsSync(join(r, 'c'))).toBe(false);
    expect(existsSync(join(r, 'gone'))).toBe(false);
    expect(readdirSync(join(r, 'b')).sort()).toEqual(['deep', 'new']);
    expect(readdirSync(join(r, 'b', 'deep'))).toEqual(['fresh']);
    expect(readdirSync(join(r, 'e'))).toEqual(['fresh']);
    expect(readFileSync(join(r, 'f'), 'utf8')).toBe('f');
    expect(readdirSync(r).filter((n) => n.startsWith('.wh.'))).toEqual([]);
  });

  it('hard links share an inode; a later layer replaces a file without writing through its links', async () => {
    const { dir } = await layout([
      { entries: [{ name: 'bin/busybox', content: 'v1', mode: 0o755 }, { name: 'bin/sh', type: 'link', linkname: 'bin/busybox' }, { name: '/bin/ash', type: 'link', linkname: '/bin/busybox' }] },
      { entries: [{ name: 'usr/bin/x', type: 'link', linkname: './bin/busybox' }, { name: 'bin/busybox', content: 'v2', mode: 0o755 }] },
    ]);
    const img = await store().prepare(dir);
    const r = img.rootfs;
    expect(statSync(join(r, 'bin/sh')).ino).toBe(statSync(join(r, 'bin/ash')).ino);
    expect(statSync(join(r, 'usr/bin/x')).ino).toBe(statSync(join(r, 'bin/sh')).ino);
    expect(readFileSync(join(r, 'bin/sh'), 'utf8')).toBe('v1');
    expect(readFileSync(join(r, 'bin/busybox'), 'utf8')).toBe('v2');
    expect(statSync(join(r, 'bin/busybox')).ino).not.toBe(statSync(join(r, 'bin/sh')).ino);
    // Two inodes of 2 bytes each.
    expect(img.sizeBytes).toBe(4);
  });

  it('replaces files, directories and symlinks across layers without following a link', async () => {
    const { dir } = await layout([
      {
        entries: [
          { name: 'p', content: 'file' },
          { name: 'q/', type: 'directory' },
          { name: 'q/child', content: 'c' },
          { name: 's', type: 'symlink', linkname: join(outside, 'passwd') },
          { name: 'd', type: 'symlink', linkname: outside },
        ],
      },
      { entries: [{ name: 'p/', type: 'directory' }, { name: 'p/in', content: 'in' }, { name: 'q', content: 'now a file' }, { name: 's', content: 'mine' }, { name: 'd/', type: 'directory' }, { name: 'd/x', content: 'x' }] },
    ]);
    const img = await store().prepare(dir);
    const r = img.rootfs;
    expect(readFileSync(join(r, 'p/in'), 'utf8')).toBe('in');
    expect(readFileSync(join(r, 'q'), 'utf8')).toBe('now a file');
    expect(lstatSync(join(r, 's')).isFile()).toBe(true);
    expect(readFileSync(join(r, 's'), 'utf8')).toBe('mine');
    expect(lstatSync(join(r, 'd')).isDirectory()).toBe(true);
    expect(readFileSync(join(outside, 'passwd'), 'utf8')).toBe('root:x:0:0\n');
    expect(readdirSync(outside)).toEqual(['passwd']);
  });

  it('keeps symlinks as content, strips setuid, setgid, sticky and group/other write bits', async () => {
    const { dir } = await layout([
      {
        entries: [
          { name: './', type: 'directory', mode: 0o755 },
          { name: 'bin/su', content: 'su', mode: 0o4755 },
          { name: 'bin/sg', content: 'sg', mode: 0o2775 },
          { name: 'etc/shared', content: 'w', mode: 0o666 },
          { name: 'tmp/', type: 'directory', mode: 0o1777 },
          { name: 'etc/localtime', type: 'symlink', linkname: '/usr/share/zoneinfo/UTC' },
          { name: 'up', type: 'symlink', linkname: '../../../..' },
          { name: 'ro/', type: 'directory', mode: 0o555 },
          { name: 'ro/f', content: 'f', mode: 0o444 },
        ],
      },
    ]);
    const img = await store().prepare(dir);
    const r = img.rootfs;
    const mode = (p: string) => lstatSync(join(r, p)).mode & 0o7777;
    expect(mode('bin/su')).toBe(0o755);
    expect(mode('bin/sg')).toBe(0o755);
    expect(mode('etc/shared')).toBe(0o644);
    expect(mode('tmp')).toBe(0o755);
    expect(mode('ro')).toBe(0o755);
    expect(mode('ro/f')).toBe(0o444);
    expect(readlinkSync(join(r, 'etc/localtime'))).toBe('/usr/share/zoneinfo/UTC');
    expect(readlinkSync(join(r, 'up'))).toBe('../../../..');
    expect(statSync(join(data, 'rootfs')).mode & 0o777).toBe(0o700);
    expect(r).toBe(join(data, 'rootfs', img.digest.replace(':', '-'), 'root'));
  });

  it.skipIf(!hasZstd)('unpacks zstd, gzip and uncompressed layers and reads the image configuration', async () => {
    const { dir, img: built } = await layout(
      [
        { entries: [{ name: 'one', content: 'zstd' }, { name: 'big', content: Buffer.alloc(5_000_000, 3) }], compression: 'zstd' },
        { entries: [{ name: 'two', content: 'gzip' }], compression: 'gzip' },
        { entries: [{ name: 'three', content: 'tar' }], compression: 'none' },
      ],
      { config: { config: { Entrypoint: ['/bin/sh', '-c'], Cmd: ['exec httpd'], Env: ['PATH=/bin', 'A=b=c'], WorkingDir: '/www', User: '1000:1000', ExposedPorts: { '8080/tcp': {} } } } },
    );
    const img = await store().prepare(dir);
    expect(img.digest).toBe(built.manifestDesc.digest);
    expect(img.reference).toBe(dir);
    expect(img.config).toEqual({ entrypoint: ['/bin/sh', '-c'], cmd: ['exec httpd'], env: ['PATH=/bin', 'A=b=c'], workingDir: '/www', user: '1000:1000', exposedPorts: ['8080/tcp'] });
    for (const [f, c] of [['one', 'zstd'], ['two', 'gzip'], ['three', 'tar']]) expect(readFileSync(join(img.rootfs, f!), 'utf8')).toBe(c);
    expect(statSync(join(img.rootfs, 'big')).size).toBe(5_000_000);
    expect(img.sizeBytes).toBe(5_000_000 + 11);
  });
});

describe('the store', () => {
  it('picks the platform out of a layout index with several images', async () => {
    const amd = await buildImage([{ entries: [{ name: 'arch', content: 'amd64' }] }], { platform: { os: 'linux', architecture: 'amd64' } });
    const arm = await buildImage([{ entries: [{ name: 'arch', content: 'arm64' }] }], { platform: { os: 'linux', architecture: 'arm64' } });
    const dir = join(layouts, 'multi');
    writeLayout(dir, [arm, amd]);
    const s = store();
    const img = await s.prepare(dir, { platform: { os: 'linux', architecture: 'amd64' } });
    expect(img.digest).toBe(amd.manifestDesc.digest);
    expect(readFileSync(join(img.rootfs, 'arch'), 'utf8')).toBe('amd64');
    const other = await s.prepare(dir, { platform: { os: 'linux', architecture: 'arm64' } });
    expect(readFileSync(join(other.rootfs, 'arch'), 'utf8')).toBe('arm64');
    const err = await rejection(s.prepare(dir, { platform: { os: 'linux', architecture: 's390x' } }));
    expect(err.reason).toBe('InvalidImage');
    expect(err.message).toMatch(/no image for linux\/s390x.*linux\/arm64, linux\/amd64/);
    // A single image for another architecture is refused by its configuration.
    const single = join(layouts, 'single-arm');
    writeLayout(single, [arm]);
    const e2 = await rejection(s.prepare(single, { platform: { os: 'linux', architecture: 'amd64' } }));
    expect(e2.message).toMatch(/built for arm64, not amd64/);
  });

  it('refuses a layout outside the operator\'s grants, and a blob that links out of them', async () => {
    const img = await buildImage([{ entries: [{ name: 'a', content: 'a' }] }]);
    const dir = join(outside, 'img');
    writeLayout(dir, [img]);
    const err = await rejection(store().prepare(dir));
    expect(err.reason).toBe('HostPathNotAllowed');
    expect(err.message).toMatch(/--allow-host-dir/);
    const inside = join(layouts, 'linked');
    writeLayout(inside, [img]);
    const blob = join(inside, 'blobs', 'sha256', img.layers[0]!.desc.digest.slice(7));
    rmSync(blob);
    symlinkSync(join(dir, 'blobs', 'sha256', img.layers[0]!.desc.digest.slice(7)), blob);
    const e2 = await rejection(store().prepare(inside));
    expect(e2.reason).toBe('HostPathNotAllowed');
    const e3 = await rejection(store().prepare('./relative/layout'));
    expect(e3.reason).toBe('InvalidImage');
    assertNoRootfs();
  });

  it('refuses an artifact that is not a container image', async () => {
    const img = await buildImage([{ entries: [{ name: 'a', content: 'a' }] }]);
    const manifest = JSON.parse(img.manifest.toString());
    manifest.config.mediaType = 'application/vnd.wasm.config.v0+json';
    const bytes = Buffer.from(JSON.stringify(manifest));
    const dir = join(layouts, 'wasm');
    writeLayout(dir, [{ ...img, manifest: bytes, manifestDesc: { ...img.manifestDesc, digest: digestOf(bytes), size: bytes.length } }]);
    const err = await rejection(store().prepare(dir));
    expect(err.reason).toBe('InvalidImage');
    expect(err.message).toMatch(/not a container image.*wasm/);
  });

  it('unpacks an image once for concurrent prepares and reuses it afterwards', async () => {
    const { dir } = await layout([{ entries: [{ name: 'a', content: 'a' }] }, { entries: [{ name: 'b', content: 'b' }] }]);
    const unpacked: unknown[] = [];
    const logger = { info: (o: unknown, msg: string) => msg === 'image unpacked' && unpacked.push(o), debug: () => {}, warn: () => {} } as unknown as Logger;
    const s = store({ logger });
    const all = await Promise.all([s.prepare(dir), s.prepare(dir), s.prepare(dir)]);
    expect(new Set(all.map((i) => i.rootfs)).size).toBe(1);
    expect(unpacked).toHaveLength(1);
    // Another store over the same data directory (a restart) finds it unpacked.
    const again = await store({ logger }).prepare(dir);
    expect(again).toEqual(all[0]);
    expect(unpacked).toHaveLength(1);
    expect(readdirSync(join(data, 'rootfs'))).toEqual([all[0]!.digest.replace(':', '-')]);
  });

  it('ignores what a crash left: a temporary directory and a prepared directory without its record', async () => {
    const { dir, img } = await layout([{ entries: [{ name: 'a', content: 'a' }] }]);
    const rootfs = join(data, 'rootfs');
    mkdirSync(join(rootfs, '.tmp-sha256-0123456789abcdef-XYZ', 'root'), { recursive: true });
    writeFileSync(join(rootfs, '.tmp-sha256-0123456789abcdef-XYZ', 'root', 'partial'), 'p');
    const final = join(rootfs, img.manifestDesc.digest.replace(':', '-'));
    mkdirSync(join(final, 'root'), { recursive: true });
    writeFileSync(join(final, 'root', 'half-written'), 'h');
    const s = store();
    const prepared = await s.prepare(dir);
    expect(readdirSync(prepared.rootfs)).toEqual(['a']);
    expect(await s.gc(new Set([prepared.digest]), { graceMs: 0 })).toEqual({ removed: 0, bytes: 0 });
    expect(readdirSync(rootfs)).toEqual([final.slice(rootfs.length + 1)]);
  });

  it('gc removes images not kept, after the grace period', async () => {
    const one = await layout([{ entries: [{ name: 'a', content: 'aaaa' }] }]);
    const two = await layout([{ entries: [{ name: 'b', content: 'bb' }] }]);
    const s = store();
    const a = await s.prepare(one.dir);
    const b = await s.prepare(two.dir);
    expect(await s.gc(new Set([a.digest]))).toEqual({ removed: 0, bytes: 0 });
    expect(await s.gc(new Set([a.digest]), { graceMs: 0 })).toEqual({ removed: 1, bytes: 2 });
    expect(existsSync(b.rootfs)).toBe(false);
    expect(existsSync(a.rootfs)).toBe(true);
    // Prepared again after gc: unpacked afresh.
    const b2 = await s.prepare(two.dir);
    expect(readFileSync(join(b2.rootfs, 'b'), 'utf8')).toBe('bb');
    expect(await store().gc(new Set(), { graceMs: 0 })).toEqual({ removed: 2, bytes: 6 });
    expect(readdirSync(join(data, 'rootfs'))).toEqual([]);
  });
});

describe('directories a layer does not list', () => {
  it('are created readable by everyone whatever the umask', async () => {
    const { dir } = await layout([{ entries: [{ name: 'deep/er/file', content: 'x' }] }]);
    const old = process.umask(0o077);
    try {
      const img = await store().prepare(dir);
      expect(statSync(join(img.rootfs, 'deep')).mode & 0o777).toBe(0o755);
      expect(statSync(join(img.rootfs, 'deep/er')).mode & 0o777).toBe(0o755);
      expect(statSync(img.rootfs).mode & 0o777).toBe(0o755);
      expect(statSync(join(img.rootfs, 'deep/er/file')).mode & 0o777).toBe(0o644);
    } finally {
      process.umask(old);
    }
  });
});

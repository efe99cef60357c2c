import { mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

import tar from 'tar-stream';
import { afterEach, describe, expect, it } from 'vitest';

import { ArtifactMissingError } from '../../src/gitops/artifact.js';
import { ArtifactStore, safePath, selectTree } from '../../src/gitops/source/artifacts.js';
import type { TreeEntry } from '../../src/gitops/source/git.js';

const dirs: string[] = [];
function store(limits?: { maxFiles?: number; maxBytes?: number }): ArtifactStore {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-artifacts-'));
  dirs.push(dir);
  return new ArtifactStore({ dir, limits });
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined) => new TextDecoder().decode(b);

/** A tar.gz with arbitrary entries, as a tampered artifact would be. */
async function rawTarGz(entries: Array<{ name: string; type?: 'file' | 'symlink' | 'directory'; body?: string; linkname?: string }>): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise((r) => pack.on('end', r));
  for (const e of entries) pack.entry({ name: e.name, type: e.type ?? 'file', linkname: e.linkname }, e.body ?? '');
  pack.finalize();
  await done;
  return gzipSync(Buffer.concat(chunks));
}

async function plant(s: ArtifactStore, bytes: Buffer): Promise<string> {
  const { createHash } = await import('node:crypto');
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  writeFileSync(s.pathOf(digest), bytes);
  return digest;
}

describe('ArtifactStore', () => {
  it('gives the same digest for the same tree, whatever the order, and a different one for a change', async () => {
    const s = store();
    const a = await s.put([{ path: 'b/x.yaml', data: enc('x') }, { path: 'a.yaml', data: enc('a') }]);
    const b = await s.put([{ path: 'a.yaml', data: enc('a') }, { path: 'b/x.yaml', data: enc('x') }]);
    const other = store();
    const c = await other.put([{ path: 'a.yaml', data: enc('a') }, { path: 'b/x.yaml', data: enc('x') }]);
    expect(a.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(b.digest).toBe(a.digest);
    expect(c.digest).toBe(a.digest);
    const d = await s.put([{ path: 'a.yaml', data: enc('A') }, { path: 'b/x.yaml', data: enc('x') }]);
    expect(d.digest).not.toBe(a.digest);
    const files = await s.read(a.digest);
    expect([...files.keys()]).toEqual(['a.yaml', 'b/x.yaml']);
    expect(dec(files.get('b/x.yaml'))).toBe('x');
    expect(readdirSync(s.dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('answers ArtifactMissingError for an unknown digest', async () => {
    await expect(store().read(`sha256:${'0'.repeat(64)}`)).rejects.toBeInstanceOf(ArtifactMissingError);
    await expect(store().read('sha256:../../etc')).rejects.toBeInstanceOf(ArtifactMissingError);
  });

  it('refuses to read entries that leave the artifact or are not plain files', async () => {
    const s = store();
    for (const bad of [
      [{ name: '../escape.yaml', body: 'x' }],
      [{ name: '/etc/passwd', body: 'x' }],
      [{ name: 'a/../../b', body: 'x' }],
      [{ name: 'link', type: 'symlink' as const, linkname: '/etc/passwd' }],
      [{ name: 'dir/', type: 'directory' as const }],
      [{ name: 'a.yaml', body: 'x' }, { name: 'a.yaml', body: 'y' }],
    ]) {
      const digest = await plant(s, await rawTarGz(bad));
      await expect(s.read(digest), JSON.stringify(bad)).rejects.toMatchObject({ code: 'artifact_corrupt' });
    }
  });

  it('holds reads to the file count and byte limits', async () => {
    const s = store({ maxFiles: 2, maxBytes: 10 });
    await expect(s.put([{ path: 'a', data: enc('1') }, { path: 'b', data: enc('2') }, { path: 'c', data: enc('3') }])).rejects.toMatchObject({ code: 'artifact_too_large' });
    await expect(s.put([{ path: 'a', data: enc('x'.repeat(11)) }])).rejects.toMatchObject({ code: 'artifact_too_large' });
    const many = await plant(s, await rawTarGz([{ name: 'a' }, { name: 'b' }, { name: 'c' }]));
    await expect(s.read(many)).rejects.toMatchObject({ code: 'artifact_corrupt' });
    const big = await plant(s, await rawTarGz([{ name: 'a', body: 'x'.repeat(100) }]));
    await expect(s.read(big)).rejects.toMatchObject({ code: 'artifact_corrupt' });
  });

  it('refuses a file whose bytes do not match its digest', async () => {
    const s = store();
    const { digest } = await s.put([{ path: 'a', data: enc('a') }]);
    writeFileSync(s.pathOf(digest), await rawTarGz([{ name: 'a', body: 'b' }]));
    await expect(store().read(digest)).rejects.toBeInstanceOf(ArtifactMissingError);
    const again = new ArtifactStore({ dir: s.dir });
    await expect(again.read(digest)).rejects.toMatchObject({ code: 'artifact_corrupt' });
  });

  it('collects what nothing references once past the grace period', async () => {
    const s = store();
    const keep = await s.put([{ path: 'a', data: enc('a') }]);
    const old = await s.put([{ path: 'b', data: enc('b') }]);
    const held = await s.put([{ path: 'c', data: enc('c') }]);
    const young = await s.put([{ path: 'd', data: enc('d') }]);
    for (const d of [keep, old, held]) utimesSync(s.pathOf(d.digest), new Date(0), new Date(0));
    s.addReferences(() => [held.digest]);
    expect(s.gc([keep.digest], 60_000)).toBe(1);
    expect(s.has(keep.digest)).toBe(true);
    expect(s.has(old.digest)).toBe(false);
    expect(s.has(held.digest)).toBe(true);
    expect(s.has(young.digest)).toBe(true);
  });
});

describe('selectTree', () => {
  const entry = (path: string, mode = '100644', type: TreeEntry['type'] = 'blob'): TreeEntry => ({ path, mode, type, sha: 'a'.repeat(40), size: 1 });
  it('leaves out symlinks, submodules and ignored paths, and names them', () => {
    const sel = selectTree([entry('deploy/app.yaml'), entry('README.md'), entry('docs/guide.yaml'), entry('deploy/link', '120000'), entry('vendor/lib', '160000', 'commit'), entry('deploy/run.sh', '100755')], '*.md\n/docs/\n');
    expect(sel.files.map((f) => f.path)).toEqual(['deploy/app.yaml', 'deploy/run.sh']);
    expect(sel.symlinks).toEqual(['deploy/link']);
    expect(sel.submodules).toEqual(['vendor/lib']);
    expect(sel.ignored).toBe(2);
  });

  it('keeps negated patterns as .gitignore does', () => {
    const sel = selectTree([entry('a.yaml'), entry('b.yaml')], '*.yaml\n!b.yaml');
    expect(sel.files.map((f) => f.path)).toEqual(['b.yaml']);
  });
});

describe('safePath', () => {
  it('accepts normalised relative paths only', () => {
    expect(safePath('a/b.yaml')).toBe(true);
    for (const p of ['', '/a', 'a/../b', './a', 'a//b', 'a/', 'a\\b', '..']) expect(safePath(p), p).toBe(false);
  });
});

import { existsSync,linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { HostFs } from '../../src/runtime/fs/host-fs.js';
import { E, OFLAGS, R } from '../../src/runtime/wasi/constants.js';

import { Guest } from './helpers/guest.js';

const DIR = 3;

describe('escapes from a host preopen', () => {
  let base: string;
  let root: string;
  let g: Guest;
  beforeEach(async () => {
    base = mkdtempSync(join(tmpdir(), 'skiff-escape-'));
    root = join(base, 'root');
    mkdirSync(join(root, 'sub'), { recursive: true });
    writeFileSync(join(base, 'secret.txt'), 'top secret');
    writeFileSync(join(root, 'inside.txt'), 'inside');
    symlinkSync('/etc', join(root, 'etc-link'));
    symlinkSync('../secret.txt', join(root, 'rel-out'));
    symlinkSync('sub/../../secret.txt', join(root, 'sneaky'));
    symlinkSync('loop-b', join(root, 'loop-a'));
    symlinkSync('loop-a', join(root, 'loop-b'));
    symlinkSync('hop2', join(root, 'hop1'));
    symlinkSync('hop3', join(root, 'hop2'));
    symlinkSync('../secret.txt', join(root, 'hop3'));
    symlinkSync('inside.txt', join(root, 'ok-link'));
    g = await Guest.create({ mounts: [{ guest: '/', backend: new HostFs(root, false), readOnly: false }] });
  });
  afterEach(() => rmSync(base, { recursive: true, force: true }));

  it('refuses ".." above the preopen with EPERM and logs it', () => {
    expect(g.open(DIR, '../secret.txt')[0]).toBe(E.PERM);
    expect(g.open(DIR, 'sub/../../secret.txt')[0]).toBe(E.PERM);
    expect(g.open(DIR, 'sub/../inside.txt')[0]).toBe(E.SUCCESS);
    expect(g.host.state.notes.some((n) => n.includes('..'))).toBe(true);
  });

  it('refuses absolute paths', () => {
    expect(g.open(DIR, '/etc/passwd')[0]).toBe(E.PERM);
  });

  it('refuses a symlink to /etc and relative symlinks that climb out', () => {
    expect(g.open(DIR, 'etc-link/passwd')[0]).toBe(E.PERM);
    expect(g.open(DIR, 'rel-out')[0]).toBe(E.PERM);
    expect(g.open(DIR, 'sneaky')[0]).toBe(E.PERM);
    expect(g.open(DIR, 'hop1')[0]).toBe(E.PERM);
    expect(g.open(DIR, 'ok-link')[0]).toBe(E.SUCCESS);
  });

  it('stops symlink loops with ELOOP', () => {
    expect(g.open(DIR, 'loop-a')[0]).toBe(E.LOOP);
    const [p, l] = g.str('loop-a/x');
    expect(g.call('path_filestat_get', DIR, 1, p, l, g.alloc(64))).toBe(E.LOOP);
  });

  it('refuses hard links and renames that leave the preopen', () => {
    const link = (from: string, to: string, follow = 0) => {
      const [a, al] = g.str(from);
      const [b, bl] = g.str(to);
      return g.call('path_link', DIR, follow, a, al, DIR, b, bl);
    };
    expect(link('../secret.txt', 'stolen')).toBe(E.PERM);
    expect(link('rel-out', 'stolen', 1)).toBe(E.PERM);
    expect(link('inside.txt', '../planted')).toBe(E.PERM);
    expect(existsSync(join(base, 'planted'))).toBe(false);
    const [a, al] = g.str('inside.txt');
    const [b, bl] = g.str('../moved.txt');
    expect(g.call('path_rename', DIR, a, al, DIR, b, bl)).toBe(E.PERM);
    expect(readFileSync(join(root, 'inside.txt'), 'utf8')).toBe('inside');
  });

  it('a hard link planted by the host is inside by path and stays readable, but cannot be used to write outside the tree', () => {
    linkSync(join(base, 'secret.txt'), join(root, 'hardlink.txt'));
    // Like openat2(RESOLVE_BENEATH), a hard link is a name inside the tree: the host chose to put it there.
    expect(g.open(DIR, 'hardlink.txt')[0]).toBe(E.SUCCESS);
  });

  it('a node swapped for a symlink after resolution is caught at open (rename race)', () => {
    // Resolution handed out a path beneath the root; then the host swapped a component for a symlink
    // that points outside. The kernel's view of the opened file (/proc/self/fd) gives the game away.
    const fs = new HostFs(root, false);
    expect(() => fs.open(join(fs.root, 'etc-link', 'passwd'), { read: true, write: false, truncate: false })).toThrow(
      expect.objectContaining({ errno: E.PERM }),
    );
    expect(() => fs.open(join(fs.root, 'inside.txt'), { read: true, write: false, truncate: false }).close()).not.toThrow();
  });

  it('refuses to write to a read-only preopen', async () => {
    const ro = await Guest.create({ mounts: [{ guest: '/data', backend: new HostFs(root, true), readOnly: true }] });
    expect(ro.open(DIR, 'inside.txt', { rights: R.FD_WRITE })[0]).toBe(E.PERM);
    expect(ro.open(DIR, 'new.txt', { oflags: OFLAGS.CREAT })[0]).toBe(E.PERM);
    expect(ro.pathCall('path_unlink_file', DIR, 'inside.txt')).toBe(E.PERM);
    // Even a descriptor that claims write rights is stopped by the backend.
    const [e, fd] = ro.open(DIR, 'inside.txt', { rights: R.FD_READ });
    expect(e).toBe(E.SUCCESS);
    expect(ro.write(fd, 'x')[0]).toBe(E.BADF);
    expect(readFileSync(join(root, 'inside.txt'), 'utf8')).toBe('inside');
    expect(existsSync(join(root, 'new.txt'))).toBe(false);
  });

  it('refuses descriptor numbers that were never opened', () => {
    expect(g.read(17, 4)[0]).toBe(E.BADF);
    expect(g.write(4096, 'x')[0]).toBe(E.BADF);
    expect(g.call('fd_close', -1)).toBe(E.BADF);
    expect(g.open(99, 'inside.txt')[0]).toBe(E.BADF);
  });

  it('enforces the descriptor quota with EMFILE', async () => {
    const q = await Guest.create({ mounts: [{ guest: '/', backend: new HostFs(root, false), readOnly: false }], maxOpenFds: 6 });
    expect(q.open(DIR, 'inside.txt')[0]).toBe(E.SUCCESS);
    expect(q.open(DIR, 'inside.txt')[0]).toBe(E.SUCCESS);
    expect(q.open(DIR, 'inside.txt')[0]).toBe(E.MFILE);
  });

  it('enforces the bytes-written quota with EDQUOT', async () => {
    const q = await Guest.create({ mounts: [{ guest: '/', backend: new HostFs(root, false), readOnly: false }], maxWriteBytes: 10 });
    const [, fd] = q.open(DIR, 'big', { oflags: OFLAGS.CREAT });
    expect(q.write(fd, '0123456789abc')).toEqual([E.SUCCESS, 10]);
    expect(q.write(fd, 'x')[0]).toBe(E.DQUOT);
    expect(q.call('fd_filestat_set_size', fd, 1000n)).toBe(E.DQUOT);
  });
});

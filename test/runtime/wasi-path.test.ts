import { afterEach, describe, expect, it } from 'vitest';

import { E, FILETYPE, FSTFLAGS, OFLAGS, R } from '../../src/runtime/wasi/constants.js';

import { Guest } from './helpers/guest.js';
import { backendCases } from './helpers/mounts.js';

const DIR = 3;
const FOLLOW = 1;

describe.each(backendCases)('path_* on $name', (bc) => {
  let cleanup = () => {};
  afterEach(() => cleanup());
  const setup = async (readOnly = false) => {
    const m = bc.make(readOnly);
    cleanup = m.cleanup;
    return Guest.create({ mounts: [m.mount] });
  };
  const touch = (g: Guest, path: string, content = '') => {
    const [e, fd] = g.open(DIR, path, { oflags: OFLAGS.CREAT });
    expect(e).toBe(E.SUCCESS);
    if (content) g.write(fd, content);
    g.call('fd_close', fd);
  };
  const stat = (g: Guest, path: string, flags = 0): [number, number, bigint] => {
    const [p, l] = g.str(path);
    const out = g.alloc(64);
    const e = g.call('path_filestat_get', DIR, flags, p, l, out);
    return [e, g.u8at(out + 16), g.u64(out + 32)];
  };
  const symlink = (g: Guest, target: string, path: string) => {
    const [tp, tl] = g.str(target);
    const [p, l] = g.str(path);
    return g.call('path_symlink', tp, tl, DIR, p, l);
  };

  it('path_create_directory creates, and refuses existing names and missing parents', async () => {
    const g = await setup();
    expect(g.pathCall('path_create_directory', DIR, 'd')).toBe(E.SUCCESS);
    expect(g.pathCall('path_create_directory', DIR, 'd/e/')).toBe(E.SUCCESS);
    expect(stat(g, 'd/e')[1]).toBe(FILETYPE.DIRECTORY);
    expect(g.pathCall('path_create_directory', DIR, 'd')).toBe(E.EXIST);
    expect(g.pathCall('path_create_directory', DIR, '.')).toBe(E.EXIST);
    expect(g.pathCall('path_create_directory', DIR, 'x/y')).toBe(E.NOENT);
    expect(g.pathCall('path_create_directory', DIR, '')).toBe(E.NOENT);
    expect(g.pathCall('path_create_directory', 1, 'z')).toBe(E.NOTDIR);
  });

  it('path_filestat_get stats with and without following symlinks', async () => {
    const g = await setup();
    touch(g, 'f', 'hello');
    expect(symlink(g, 'f', 'l')).toBe(E.SUCCESS);
    expect(stat(g, 'f')).toEqual([E.SUCCESS, FILETYPE.REGULAR_FILE, 5n]);
    expect(stat(g, 'l')[1]).toBe(FILETYPE.SYMBOLIC_LINK);
    expect(stat(g, 'l', FOLLOW)).toEqual([E.SUCCESS, FILETYPE.REGULAR_FILE, 5n]);
    expect(stat(g, 'missing')[0]).toBe(E.NOENT);
    expect(stat(g, 'f/')[0]).toBe(E.NOTDIR);
    expect(stat(g, 'f/x')[0]).toBe(E.NOTDIR);
  });

  it('path_filestat_set_times sets nanosecond times on the file or the link', async () => {
    const g = await setup();
    touch(g, 'f');
    const t = 1_500_000_000_987_654_321n;
    const [p, l] = g.str('f');
    expect(g.call('path_filestat_set_times', DIR, 0, p, l, t, t, FSTFLAGS.ATIM | FSTFLAGS.MTIM)).toBe(E.SUCCESS);
    const out = g.alloc(64);
    g.call('path_filestat_get', DIR, 0, p, l, out);
    expect(g.u64(out + 48)).toBe(t);
    // Setting only mtime to a microsecond value leaves atime alone.
    const t2 = t - 100n;
    expect(g.call('path_filestat_set_times', DIR, 0, p, l, 0n, 1_000_000n, FSTFLAGS.MTIM)).toBe(E.SUCCESS);
    g.call('path_filestat_get', DIR, 0, p, l, out);
    expect(g.u64(out + 48)).toBe(1_000_000n);
    expect(g.u64(out + 40)).toBe(t);
    expect(g.call('path_filestat_set_times', DIR, 0, p, l, t2, 0n, FSTFLAGS.ATIM)).toBe(E.SUCCESS);
    g.call('path_filestat_get', DIR, 0, p, l, out);
    expect(g.u64(out + 40)).toBe(t2);
    expect(g.call('path_filestat_set_times', DIR, 0, p, l, 0n, 0n, FSTFLAGS.ATIM | FSTFLAGS.ATIM_NOW)).toBe(E.INVAL);
    const [mp, ml] = g.str('nope');
    expect(g.call('path_filestat_set_times', DIR, 0, mp, ml, 0n, 0n, FSTFLAGS.MTIM_NOW)).toBe(E.NOENT);
  });

  it('path_link makes hard links to files, never to directories', async () => {
    const g = await setup();
    touch(g, 'f', 'data');
    const [a, al] = g.str('f');
    const [b, bl] = g.str('g');
    expect(g.call('path_link', DIR, 0, a, al, DIR, b, bl)).toBe(E.SUCCESS);
    expect(stat(g, 'g')[2]).toBe(4n);
    const out = g.alloc(64);
    g.call('path_filestat_get', DIR, 0, a, al, out);
    expect(g.u64(out + 24)).toBe(2n);
    expect(g.call('path_link', DIR, 0, a, al, DIR, b, bl)).toBe(E.EXIST);
    g.pathCall('path_create_directory', DIR, 'd');
    const [d, dl] = g.str('d');
    const [e, el] = g.str('e');
    expect(g.call('path_link', DIR, 0, d, dl, DIR, e, el)).toBe(E.PERM);
    const [m, ml] = g.str('missing');
    expect(g.call('path_link', DIR, 0, m, ml, DIR, e, el)).toBe(E.NOENT);
  });

  it('path_open opens, creates, truncates and checks flags', async () => {
    const g = await setup();
    touch(g, 'f', 'hello');
    let [e, fd] = g.open(DIR, 'f');
    expect(e).toBe(E.SUCCESS);
    expect(g.read(fd, 10)).toEqual([E.SUCCESS, 'hello']);
    expect(g.open(DIR, 'f', { oflags: OFLAGS.CREAT | OFLAGS.EXCL })[0]).toBe(E.EXIST);
    [e, fd] = g.open(DIR, 'f', { oflags: OFLAGS.TRUNC });
    expect(e).toBe(E.SUCCESS);
    expect(stat(g, 'f')[2]).toBe(0n);
    expect(g.open(DIR, 'missing')[0]).toBe(E.NOENT);
    expect(g.open(DIR, 'f', { oflags: OFLAGS.DIRECTORY })[0]).toBe(E.NOTDIR);
    expect(g.open(DIR, 'f/')[0]).toBe(E.NOTDIR);
    expect(g.open(DIR, 'new/', { oflags: OFLAGS.CREAT })[0]).toBe(E.ISDIR);
    expect(g.open(DIR, 'f', { oflags: 0x10 })[0]).toBe(E.INVAL);
    expect(g.open(DIR, 'f', { fdflags: 0x40 })[0]).toBe(E.INVAL);
    // A directory opens as a directory descriptor that resolves beneath itself.
    g.pathCall('path_create_directory', DIR, 'd');
    touch(g, 'd/inner', 'in');
    const [de, dfd] = g.open(DIR, 'd', { oflags: OFLAGS.DIRECTORY, rights: R.PATH_OPEN | R.FD_READDIR | R.FD_READ });
    expect(de).toBe(E.SUCCESS);
    const [ie, ifd] = g.open(dfd, 'inner');
    expect(ie).toBe(E.SUCCESS);
    expect(g.read(ifd, 5)).toEqual([E.SUCCESS, 'in']);
    expect(g.open(dfd, '../f')[0]).toBe(E.PERM);
    expect(g.open(DIR, 'd', { oflags: OFLAGS.TRUNC })[0]).toBe(E.ISDIR);
    // Paths with a trailing NUL, or invalid UTF-8, are refused.
    expect(g.open(DIR, 'f\0')[0]).toBe(E.ILSEQ);
    const [bp, bl] = g.str(new Uint8Array([0x66, 0xff]));
    expect(g.call('path_open', DIR, 0, bp, bl, 0, 0n, 0n, 0, g.alloc(4))).toBe(E.ILSEQ);
    // '.' opens the directory itself.
    expect(g.open(DIR, '.', { rights: R.FD_READDIR })[0]).toBe(E.SUCCESS);
  });

  it('path_open with O_NOFOLLOW fails on a final symlink with ELOOP', async () => {
    const g = await setup();
    touch(g, 'f', 'x');
    symlink(g, 'f', 'l');
    expect(g.open(DIR, 'l', { lookup: 0 })[0]).toBe(E.LOOP);
    expect(g.open(DIR, 'l', { lookup: FOLLOW })[0]).toBe(E.SUCCESS);
  });

  it('path_readlink reads targets and truncates to a short buffer', async () => {
    const g = await setup();
    touch(g, 'target-file');
    symlink(g, 'target-file', 'l');
    const [p, l] = g.str('l');
    const buf = g.alloc(64), used = g.alloc(4);
    expect(g.call('path_readlink', DIR, p, l, buf, 64, used)).toBe(E.SUCCESS);
    expect(g.text(buf, g.u32(used))).toBe('target-file');
    expect(g.call('path_readlink', DIR, p, l, buf, 4, used)).toBe(E.SUCCESS);
    expect(g.u32(used)).toBe(4);
    expect(g.text(buf, 4)).toBe('targ');
    const [f, fl] = g.str('target-file');
    expect(g.call('path_readlink', DIR, f, fl, buf, 64, used)).toBe(E.INVAL);
    const [m, ml] = g.str('missing');
    expect(g.call('path_readlink', DIR, m, ml, buf, 64, used)).toBe(E.NOENT);
  });

  it('path_remove_directory removes empty directories only', async () => {
    const g = await setup();
    g.pathCall('path_create_directory', DIR, 'd');
    touch(g, 'd/f');
    touch(g, 'f');
    expect(g.pathCall('path_remove_directory', DIR, 'd')).toBe(E.NOTEMPTY);
    expect(g.pathCall('path_remove_directory', DIR, 'f')).toBe(E.NOTDIR);
    expect(g.pathCall('path_remove_directory', DIR, '.')).toBe(E.INVAL);
    expect(g.pathCall('path_remove_directory', DIR, 'nope')).toBe(E.NOENT);
    expect(g.pathCall('path_unlink_file', DIR, 'd/f')).toBe(E.SUCCESS);
    expect(g.pathCall('path_remove_directory', DIR, 'd/')).toBe(E.SUCCESS);
    expect(stat(g, 'd')[0]).toBe(E.NOENT);
  });

  it('path_rename moves files and directories with POSIX semantics', async () => {
    const g = await setup();
    touch(g, 'a', 'A');
    touch(g, 'b', 'B');
    g.pathCall('path_create_directory', DIR, 'd');
    g.pathCall('path_create_directory', DIR, 'e');
    touch(g, 'e/x');
    const rn = (x: string, y: string) => {
      const [p, l] = g.str(x);
      const [q, m] = g.str(y);
      return g.call('path_rename', DIR, p, l, DIR, q, m);
    };
    expect(rn('a', 'b')).toBe(E.SUCCESS);
    expect(stat(g, 'a')[0]).toBe(E.NOENT);
    expect(stat(g, 'b')[2]).toBe(1n);
    expect(rn('b', 'd')).toBe(E.ISDIR);
    expect(rn('d', 'b')).toBe(E.NOTDIR);
    expect(rn('d', 'e')).toBe(E.NOTEMPTY);
    expect(rn('d', 'd/sub')).toBe(E.INVAL);
    expect(rn('missing', 'z')).toBe(E.NOENT);
    expect(rn('b', 'z/')).toBe(E.NOTDIR);
    expect(rn('d', 'moved')).toBe(E.SUCCESS);
    expect(stat(g, 'moved')[1]).toBe(FILETYPE.DIRECTORY);
  });

  it('path_symlink creates relative links and refuses absolute targets', async () => {
    const g = await setup();
    expect(symlink(g, 'dangling', 'l')).toBe(E.SUCCESS);
    expect(stat(g, 'l')[1]).toBe(FILETYPE.SYMBOLIC_LINK);
    expect(symlink(g, 'x', 'l')).toBe(E.EXIST);
    expect(symlink(g, '/etc/passwd', 'abs')).toBe(E.PERM);
    expect(g.open(DIR, 'l', { lookup: FOLLOW })[0]).toBe(E.NOENT);
  });

  it('path_unlink_file removes files and links, never directories', async () => {
    const g = await setup();
    touch(g, 'f');
    symlink(g, 'f', 'l');
    g.pathCall('path_create_directory', DIR, 'd');
    expect(g.pathCall('path_unlink_file', DIR, 'l')).toBe(E.SUCCESS);
    expect(stat(g, 'f')[0]).toBe(E.SUCCESS);
    expect(g.pathCall('path_unlink_file', DIR, 'd')).toBe(E.ISDIR);
    expect(g.pathCall('path_unlink_file', DIR, 'f/')).toBe(E.NOTDIR);
    expect(g.pathCall('path_unlink_file', DIR, 'f')).toBe(E.SUCCESS);
    expect(g.pathCall('path_unlink_file', DIR, 'f')).toBe(E.NOENT);
  });

  it('a read-only preopen refuses every change with EPERM (and writes through a descriptor with EBADF)', async () => {
    const g0 = await setup();
    touch(g0, 'f', 'keep');
    g0.pathCall('path_create_directory', DIR, 'd');
    const m = g0.host.state.fds.get(DIR);
    const g = await Guest.create({ mounts: [{ ...(m as { mount: import('../../src/runtime/wasi/fd-table.js').Mount }).mount, readOnly: true }] });
    // Reading still works.
    const [e, fd] = g.open(DIR, 'f', { rights: R.FD_READ });
    expect(e).toBe(E.SUCCESS);
    expect(g.read(fd, 4)).toEqual([E.SUCCESS, 'keep']);
    expect(g.open(DIR, 'f', { rights: R.FD_WRITE })[0]).toBe(E.PERM);
    expect(g.open(DIR, 'new', { oflags: OFLAGS.CREAT })[0]).toBe(E.PERM);
    expect(g.open(DIR, 'f', { oflags: OFLAGS.TRUNC })[0]).toBe(E.PERM);
    expect(g.pathCall('path_create_directory', DIR, 'x')).toBe(E.PERM);
    expect(g.pathCall('path_unlink_file', DIR, 'f')).toBe(E.PERM);
    expect(g.pathCall('path_remove_directory', DIR, 'd')).toBe(E.PERM);
    expect(symlink(g, 'f', 'l')).toBe(E.PERM);
    expect(g.write(fd, 'x')[0]).toBe(E.BADF);
  });
});

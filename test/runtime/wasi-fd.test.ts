import { afterEach, describe, expect, it } from 'vitest';

import { DIRENT, E, FDFLAGS, FILETYPE, FSTFLAGS, OFLAGS, R, WHENCE } from '../../src/runtime/wasi/constants.js';

import { Guest } from './helpers/guest.js';
import { backendCases } from './helpers/mounts.js';

const DIR = 3;

describe.each(backendCases)('fd_* on $name', (bc) => {
  let cleanup = () => {};
  afterEach(() => cleanup());
  const setup = async (readOnly = false) => {
    const m = bc.make(readOnly);
    cleanup = m.cleanup;
    return Guest.create({ mounts: [m.mount] });
  };
  const file = (g: Guest, name = 'f.txt', content = 'hello world') => {
    const [e, fd] = g.open(DIR, name, { oflags: OFLAGS.CREAT });
    expect(e).toBe(E.SUCCESS);
    if (content) expect(g.write(fd, content)).toEqual([E.SUCCESS, content.length]);
    expect(g.call('fd_seek', fd, 0n, WHENCE.SET, g.alloc(8))).toBe(E.SUCCESS);
    return fd;
  };

  it('fd_advise accepts valid advice and rejects bad input', async () => {
    const g = await setup();
    const fd = file(g);
    expect(g.call('fd_advise', fd, 0n, 10n, 2)).toBe(E.SUCCESS);
    expect(g.call('fd_advise', fd, 0n, 10n, 6)).toBe(E.INVAL);
    expect(g.call('fd_advise', fd, -1n, 10n, 0)).toBe(E.INVAL);
    expect(g.call('fd_advise', DIR, 0n, 0n, 0)).toBe(E.ISDIR);
    expect(g.call('fd_advise', 99, 0n, 0n, 0)).toBe(E.BADF);
  });

  it('fd_allocate grows the file', async () => {
    const g = await setup();
    const fd = file(g, 'f', '');
    expect(g.call('fd_allocate', fd, 0n, 100n)).toBe(E.SUCCESS);
    const st = g.alloc(64);
    g.call('fd_filestat_get', fd, st);
    expect(g.u64(st + 32)).toBe(100n);
    expect(g.call('fd_allocate', fd, 0n, 0n)).toBe(E.INVAL);
    expect(g.call('fd_allocate', DIR, 0n, 1n)).toBe(E.BADF);
  });

  it('fd_close closes once', async () => {
    const g = await setup();
    const fd = file(g);
    expect(g.call('fd_close', fd)).toBe(E.SUCCESS);
    expect(g.call('fd_close', fd)).toBe(E.BADF);
    expect(g.read(fd, 4)[0]).toBe(E.BADF);
  });

  it('fd_datasync and fd_sync flush files and refuse streams', async () => {
    const g = await setup();
    const fd = file(g);
    expect(g.call('fd_datasync', fd)).toBe(E.SUCCESS);
    expect(g.call('fd_sync', fd)).toBe(E.SUCCESS);
    expect(g.call('fd_sync', 1)).toBe(E.BADF);
    expect(g.call('fd_datasync', 77)).toBe(E.BADF);
  });

  it('fd_fdstat_get reports type, flags and rights', async () => {
    const g = await setup();
    const out = g.alloc(24);
    expect(g.call('fd_fdstat_get', DIR, out)).toBe(E.SUCCESS);
    expect(g.u8at(out)).toBe(FILETYPE.DIRECTORY);
    expect(g.u64(out + 8) & R.PATH_OPEN).toBe(R.PATH_OPEN);
    const [, fd] = g.open(DIR, 'a', { oflags: OFLAGS.CREAT, fdflags: FDFLAGS.APPEND });
    g.call('fd_fdstat_get', fd, out);
    expect(g.u8at(out)).toBe(FILETYPE.REGULAR_FILE);
    expect(g.u16(out + 2)).toBe(FDFLAGS.APPEND);
    g.call('fd_fdstat_get', 1, out);
    expect(g.u8at(out)).toBe(FILETYPE.UNKNOWN);
    expect(g.call('fd_fdstat_get', 50, out)).toBe(E.BADF);
    expect(g.call('fd_fdstat_get', DIR, 0xfffffff0)).toBe(E.FAULT);
  });

  it('fd_fdstat_set_flags switches append mode', async () => {
    const g = await setup();
    const fd = file(g, 'f', 'abc');
    expect(g.call('fd_fdstat_set_flags', fd, FDFLAGS.APPEND)).toBe(E.SUCCESS);
    g.write(fd, 'def');
    const out = g.alloc(8);
    g.call('fd_tell', fd, out);
    expect(g.u64(out)).toBe(6n);
    expect(g.call('fd_fdstat_set_flags', fd, 0x100)).toBe(E.INVAL);
  });

  it('fd_fdstat_set_rights only drops rights', async () => {
    const g = await setup();
    const fd = file(g);
    expect(g.call('fd_fdstat_set_rights', fd, R.FD_READ | R.FD_SEEK, 0n)).toBe(E.SUCCESS);
    expect(g.write(fd, 'x')[0]).toBe(E.BADF);
    expect(g.call('fd_fdstat_set_rights', fd, R.FD_READ | R.FD_WRITE, 0n)).toBe(E.NOTCAPABLE);
  });

  it('fd_filestat_get reports size and type', async () => {
    const g = await setup();
    const fd = file(g, 'f', 'hello');
    const st = g.alloc(64);
    expect(g.call('fd_filestat_get', fd, st)).toBe(E.SUCCESS);
    expect(g.u8at(st + 16)).toBe(FILETYPE.REGULAR_FILE);
    expect(g.u64(st + 32)).toBe(5n);
    expect(g.u64(st + 24)).toBe(1n);
    expect(g.call('fd_filestat_get', DIR, st)).toBe(E.SUCCESS);
    expect(g.u8at(st + 16)).toBe(FILETYPE.DIRECTORY);
    expect(g.call('fd_filestat_get', 42, st)).toBe(E.BADF);
  });

  it('fd_filestat_set_size truncates and extends', async () => {
    const g = await setup();
    const fd = file(g, 'f', 'hello');
    expect(g.call('fd_filestat_set_size', fd, 2n)).toBe(E.SUCCESS);
    expect(g.read(fd, 10)).toEqual([E.SUCCESS, 'he']);
    expect(g.call('fd_filestat_set_size', fd, 4n)).toBe(E.SUCCESS);
    expect(g.call('fd_filestat_set_size', fd, -1n)).toBe(E.INVAL);
    expect(g.call('fd_filestat_set_size', DIR, 0n)).toBe(E.BADF);
  });

  it('fd_filestat_set_times sets times and validates flags', async () => {
    const g = await setup();
    const fd = file(g);
    const t = 1_600_000_000_123_456_789n;
    expect(g.call('fd_filestat_set_times', fd, t, t, FSTFLAGS.ATIM | FSTFLAGS.MTIM)).toBe(E.SUCCESS);
    const st = g.alloc(64);
    g.call('fd_filestat_get', fd, st);
    expect(g.u64(st + 48)).toBe(t);
    expect(g.u64(st + 40)).toBe(t);
    expect(g.call('fd_filestat_set_times', fd, 0n, 0n, FSTFLAGS.ATIM | FSTFLAGS.ATIM_NOW)).toBe(E.INVAL);
    expect(g.call('fd_filestat_set_times', fd, 0n, 0n, FSTFLAGS.MTIM | FSTFLAGS.MTIM_NOW)).toBe(E.INVAL);
    expect(g.call('fd_filestat_set_times', fd, 0n, 0n, 0x10)).toBe(E.INVAL);
    expect(g.call('fd_filestat_set_times', fd, 0n, 0n, FSTFLAGS.MTIM_NOW)).toBe(E.SUCCESS);
  });

  it('fd_pread reads at an offset without moving the position', async () => {
    const g = await setup();
    const fd = file(g, 'f', 'hello world');
    const [iov, n, ptrs] = g.iovs([5]);
    const out = g.alloc(4);
    expect(g.call('fd_pread', fd, iov, n, 6n, out)).toBe(E.SUCCESS);
    expect(g.text(ptrs[0]!, g.u32(out))).toBe('world');
    expect(g.read(fd, 5)).toEqual([E.SUCCESS, 'hello']);
    expect(g.call('fd_pread', fd, iov, n, 100n, out)).toBe(E.SUCCESS);
    expect(g.u32(out)).toBe(0);
    expect(g.call('fd_pread', 0, iov, n, 0n, out)).toBe(E.BADF);
    expect(g.call('fd_pread', fd, iov, n, -1n, out)).toBe(E.INVAL);
  });

  it('fd_pwrite writes at an offset without moving the position', async () => {
    const g = await setup();
    const fd = file(g, 'f', 'hello world');
    const [iov, n] = g.iovs(['WORLD']);
    const out = g.alloc(4);
    expect(g.call('fd_pwrite', fd, iov, n, 6n, out)).toBe(E.SUCCESS);
    expect(g.u32(out)).toBe(5);
    expect(g.read(fd, 20)).toEqual([E.SUCCESS, 'hello WORLD']);
    expect(g.call('fd_pwrite', 1, iov, n, 0n, out)).toBe(E.BADF);
  });

  it('fd_prestat_get and fd_prestat_dir_name describe preopens only', async () => {
    const g = await setup();
    const out = g.alloc(8);
    expect(g.call('fd_prestat_get', DIR, out)).toBe(E.SUCCESS);
    expect(g.u8at(out)).toBe(0);
    expect(g.u32(out + 4)).toBe(8);
    const name = g.alloc(16);
    expect(g.call('fd_prestat_dir_name', DIR, name, 16)).toBe(E.SUCCESS);
    expect(g.text(name, 8)).toBe('/sandbox');
    expect(g.call('fd_prestat_dir_name', DIR, name, 3)).toBe(E.NAMETOOLONG);
    expect(g.call('fd_prestat_get', 1, out)).toBe(E.BADF);
    expect(g.call('fd_prestat_get', DIR + 1, out)).toBe(E.BADF);
    const fd = file(g);
    expect(g.call('fd_prestat_get', fd, out)).toBe(E.BADF);
  });

  it('fd_read reads sequentially into several buffers', async () => {
    const g = await setup();
    const fd = file(g, 'f', 'abcdefgh');
    const [iov, n, ptrs] = g.iovs([3, 0, 3]);
    const out = g.alloc(4);
    expect(g.call('fd_read', fd, iov, n, out)).toBe(E.SUCCESS);
    expect(g.u32(out)).toBe(6);
    expect(g.text(ptrs[0]!, 3) + g.text(ptrs[2]!, 3)).toBe('abcdef');
    expect(g.read(fd, 10)).toEqual([E.SUCCESS, 'gh']);
    expect(g.read(fd, 10)).toEqual([E.SUCCESS, '']);
    expect(g.read(DIR, 10)[0]).toBe(E.BADF);
    expect(g.read(1, 10)[0]).toBe(E.BADF);
    expect(g.call('fd_read', fd, 0xfffffff8, 2, out)).toBe(E.FAULT);
  });

  it('fd_readdir lists . and .. first, honours cookies and truncates at the buffer end', async () => {
    const g = await setup();
    for (const n of ['a', 'bb', 'ccc']) g.call('fd_close', file(g, n, ''));
    g.pathCall('path_create_directory', DIR, 'sub');
    const buf = g.alloc(512), used = g.alloc(4);
    expect(g.call('fd_readdir', DIR, buf, 512, 0n, used)).toBe(E.SUCCESS);
    const names: Array<[string, number, bigint]> = [];
    let off = 0;
    while (off < g.u32(used)) {
      const len = g.u32(buf + off + DIRENT.NAMLEN);
      names.push([g.text(buf + off + DIRENT.SIZE, len), g.u8at(buf + off + DIRENT.TYPE), g.u64(buf + off)]);
      off += DIRENT.SIZE + len;
    }
    expect(names.slice(0, 2).map((n) => n[0])).toEqual(['.', '..']);
    expect(names.map((n) => n[0]).sort()).toEqual(['.', '..', 'a', 'bb', 'ccc', 'sub']);
    expect(names.find((n) => n[0] === 'sub')![1]).toBe(FILETYPE.DIRECTORY);
    // Resume after the third entry.
    expect(g.call('fd_readdir', DIR, buf, 512, names[2]![2], used)).toBe(E.SUCCESS);
    const first = g.text(buf + DIRENT.SIZE, g.u32(buf + DIRENT.NAMLEN));
    expect(first).toBe(names[3]![0]);
    // A small buffer is filled completely (bufused == buf_len means "call again").
    expect(g.call('fd_readdir', DIR, buf, 30, 0n, used)).toBe(E.SUCCESS);
    expect(g.u32(used)).toBe(30);
    const fd = file(g, 'x', '');
    expect(g.call('fd_readdir', fd, buf, 512, 0n, used)).toBe(E.BADF);
    expect(g.call('fd_readdir', 99, buf, 512, 0n, used)).toBe(E.BADF);
  });

  it('fd_renumber moves a descriptor over another', async () => {
    const g = await setup();
    const a = file(g, 'a', 'AAA');
    const b = file(g, 'b', 'BBB');
    expect(g.call('fd_renumber', a, b)).toBe(E.SUCCESS);
    expect(g.read(b, 3)).toEqual([E.SUCCESS, 'AAA']);
    expect(g.read(a, 3)[0]).toBe(E.BADF);
    expect(g.call('fd_renumber', b, 99)).toBe(E.BADF);
    expect(g.call('fd_renumber', 99, b)).toBe(E.BADF);
  });

  it('fd_seek moves the position and rejects bad whence and negative results', async () => {
    const g = await setup();
    const fd = file(g, 'f', 'hello');
    const out = g.alloc(8);
    expect(g.call('fd_seek', fd, -2n, WHENCE.END, out)).toBe(E.SUCCESS);
    expect(g.u64(out)).toBe(3n);
    expect(g.call('fd_seek', fd, 1n, WHENCE.CUR, out)).toBe(E.SUCCESS);
    expect(g.u64(out)).toBe(4n);
    expect(g.call('fd_seek', fd, -10n, WHENCE.CUR, out)).toBe(E.INVAL);
    expect(g.call('fd_seek', fd, 0n, 3, out)).toBe(E.INVAL);
    expect(g.call('fd_seek', 1, 0n, WHENCE.SET, out)).toBe(E.BADF);
    // Directories cannot seek: EBADF, as the official wasi-testsuite expects.
    expect(g.call('fd_seek', DIR, 0n, WHENCE.SET, out)).toBe(E.BADF);
    expect(g.call('fd_tell', DIR, out)).toBe(E.BADF);
  });

  it('fd_tell reports the position', async () => {
    const g = await setup();
    const fd = file(g, 'f', 'hello');
    g.read(fd, 2);
    const out = g.alloc(8);
    expect(g.call('fd_tell', fd, out)).toBe(E.SUCCESS);
    expect(g.u64(out)).toBe(2n);
    expect(g.call('fd_tell', 1, out)).toBe(E.BADF);
    expect(g.call('fd_tell', 64, out)).toBe(E.BADF);
  });

  it('fd_write writes files and stdio, and refuses read-only descriptors', async () => {
    const chunks: string[] = [];
    const m = bc.make();
    cleanup = m.cleanup;
    const g = await Guest.create({ mounts: [m.mount], stdout: { write: (b) => (chunks.push(new TextDecoder().decode(b)), b.length) } });
    expect(g.write(1, 'to stdout')).toEqual([E.SUCCESS, 9]);
    expect(chunks.join('')).toBe('to stdout');
    const fd = file(g, 'f', 'x');
    expect(g.write(fd, 'yz')).toEqual([E.SUCCESS, 2]);
    expect(g.write(0, 'no')[0]).toBe(E.BADF);
    expect(g.write(DIR, 'no')[0]).toBe(E.BADF);
    expect(g.write(1234, 'no')[0]).toBe(E.BADF);
  });
});

describe('bounds on what one call may ask of the host', () => {
  it('refuses more than IOV_MAX iovecs and more than 4096 poll subscriptions', async () => {
    const g = await Guest.create();
    const out = g.alloc(4);
    expect(g.call('fd_write', 1, g.alloc(8), 1025, out)).toBe(E.INVAL);
    expect(g.call('poll_oneoff', g.alloc(48), g.alloc(32), 4097, out)).toBe(E.INVAL);
  });
});

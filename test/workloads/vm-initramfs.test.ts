import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ConsoleWatcher } from '../../src/workloads/vm/console.js';
import { CpioWriter } from '../../src/workloads/vm/cpio.js';
import { encodeConfig, InitramfsCache } from '../../src/workloads/vm/initramfs.js';
import { hasPvhNote, lz4Block } from '../../src/workloads/vm/kernel.js';
import { resolveModules } from '../../src/workloads/vm/modules.js';
import { hasBinary } from '../helpers/system-deps.js';

/** listCpio reads a newc archive back: name, mode and content of each member (an independent reader). */
function listCpio(buf: Buffer): { name: string; mode: number; data: Buffer }[] {
  const out: { name: string; mode: number; data: Buffer }[] = [];
  let p = 0;
  const align = (n: number) => (n + 3) & ~3;
  while (p < buf.length) {
    if (buf.toString('latin1', p, p + 6) !== '070701') {
      if (buf[p] === 0) {
        p++;
        continue;
      }
      throw new Error(`bad magic at ${p}`);
    }
    const field = (i: number) => parseInt(buf.toString('latin1', p + 6 + i * 8, p + 14 + i * 8), 16);
    const mode = field(1);
    const size = field(6);
    const namesize = field(11);
    const name = buf.toString('utf8', p + 110, p + 110 + namesize - 1);
    const dataAt = align(p + 110 + namesize);
    out.push({ name, mode, data: buf.subarray(dataAt, dataAt + size) });
    p = align(dataAt + size);
  }
  return out;
}

describe('vm initramfs pieces', () => {
  let work: string;
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'skiff-vm-unit-'));
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('writes newc archives that busybox cpio reads back', async () => {
    const path = join(work, 'a.cpio');
    const w = await CpioWriter.create(path);
    await w.directory({ name: 'bin', mode: 0o755 });
    await w.file({ name: 'bin/hello', mode: 0o4755 }, Buffer.from('#!/bin/sh\necho hi\n'));
    await w.symlink({ name: 'bin/hi', mode: 0o777 }, 'hello');
    await w.charDevice({ name: 'console', mode: 0o600, rdevMajor: 5, rdevMinor: 1 });
    await w.close();
    const members = listCpio(readFileSync(path));
    expect(members.map((m) => [m.name, m.mode.toString(8)])).toEqual([
      ['bin', '40755'],
      ['bin/hello', '104755'],
      ['bin/hi', '120777'],
      ['console', '20600'],
      ['TRAILER!!!', '0'],
    ]);
    expect(members[1]!.data.toString()).toBe('#!/bin/sh\necho hi\n');
    expect(members[2]!.data.toString()).toBe('hello');
    if (hasBinary('busybox')) {
      const listed = execFileSync('busybox', ['cpio', '-t'], { input: readFileSync(path), encoding: 'utf8', stdio: ['pipe', 'pipe', 'ignore'] });
      expect(listed.trim().split('\n')).toEqual(['bin', 'bin/hello', 'bin/hi', 'console']);
    }
  });

  it('refuses member names that are absolute or hold a NUL', async () => {
    const w = await CpioWriter.create(join(work, 'bad.cpio'));
    await expect(w.file({ name: '/etc/passwd', mode: 0o644 }, Buffer.alloc(0))).rejects.toThrow(/relative/);
    await w.abort();
  });

  it('builds the image part once per key, copying the image without touching it, and appends the config per replica', async () => {
    const rootfs = join(work, 'rootfs');
    mkdirSync(join(rootfs, 'etc'), { recursive: true });
    writeFileSync(join(rootfs, 'etc', 'motd'), 'hi\n');
    symlinkSync('/etc/motd', join(rootfs, 'motd'));
    chmodSync(rootfs, 0o555);
    const init = join(work, 'init');
    writeFileSync(init, 'INIT');
    const modDir = join(work, 'modules');
    mkdirSync(join(modDir, 'kernel'), { recursive: true });
    writeFileSync(join(modDir, 'kernel', 'a.ko'), 'A');
    writeFileSync(join(modDir, 'modules.dep'), 'kernel/a.ko:\n');
    const modules = await resolveModules(modDir, ['a']);
    const cache = new InitramfsCache(join(work, 'cache'));
    const inputs = { digest: 'sha256:abc', rootfs, kernelVersion: '6.1.0-test', initBinary: init, modules };
    const [first, second] = await Promise.all([cache.imagePart(inputs), cache.imagePart(inputs)]);
    expect(first.path).toBe(second.path);
    expect((await cache.imagePart(inputs)).cached).toBe(true);
    const other = await cache.imagePart({ ...inputs, kernelVersion: '6.1.0-other' });
    expect(other.path).not.toBe(first.path);

    const out = join(work, 'replica.cpio');
    await cache.replicaInitrd(first.path, { token: 'ab12', argv: ['/bin/sh', '-c', 'echo $X'], env: { X: 'a b=c' }, cwd: '/etc', port: 8080, controlPort: 1023 }, out);
    const members = listCpio(readFileSync(out));
    const names = members.map((m) => m.name);
    expect(names).toEqual(['etc', 'etc/motd', 'motd', 'dev', 'proc', 'sys', 'tmp', 'dev/console', '.skiff', '.skiff/init', '.skiff/modules', '.skiff/modules/00-a.ko', 'TRAILER!!!', '.skiff/config', 'TRAILER!!!']);
    expect(members.find((m) => m.name === 'motd')!.data.toString()).toBe('/etc/motd');
    const config = members.find((m) => m.name === '.skiff/config')!.data.toString().split('\0');
    expect(config).toEqual(['skiff-vminit-config-v1', 'token', 'ab12', 'cwd', '/etc', 'port', '8080', 'control-port', '1023', 'arg', '/bin/sh', 'arg', '-c', 'arg', 'echo $X', 'env', 'X=a b=c', '']);
    expect(readFileSync(join(rootfs, 'etc', 'motd'), 'utf8')).toBe('hi\n');
    chmodSync(rootfs, 0o755);
  });

  it('refuses a config with a NUL byte or a bad variable name', () => {
    const base = { token: 't', argv: ['/x'], env: {}, cwd: '/', port: 1, controlPort: 2 };
    expect(() => encodeConfig({ ...base, argv: ['/x\0y'] })).toThrow(/NUL/);
    expect(() => encodeConfig({ ...base, env: { 'A=B': 'c' } })).toThrow(/variable name/);
  });

  it('orders modules from modules.dep, dependencies first, skipping built-ins, and names what is missing', async () => {
    const dir = join(work, 'mods2');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'modules.dep'),
      [
        'kernel/drivers/net/virtio_net.ko.xz: kernel/drivers/net/net_failover.ko.xz kernel/net/core/failover.ko.xz kernel/drivers/virtio/virtio.ko.xz kernel/drivers/virtio/virtio_ring.ko.xz',
        'kernel/drivers/net/net_failover.ko.xz: kernel/net/core/failover.ko.xz',
        'kernel/net/core/failover.ko.xz:',
        'kernel/drivers/virtio/virtio_mmio.ko.zst: kernel/drivers/virtio/virtio.ko.xz kernel/drivers/virtio/virtio_ring.ko.xz',
        'kernel/drivers/virtio/virtio.ko.xz: kernel/drivers/virtio/virtio_ring.ko.xz',
        '',
      ].join('\n'),
    );
    writeFileSync(join(dir, 'modules.builtin'), 'kernel/drivers/virtio/virtio_ring.ko\n');
    for (const f of ['drivers/net/virtio_net.ko.xz', 'drivers/net/net_failover.ko.xz', 'net/core/failover.ko.xz', 'drivers/virtio/virtio_mmio.ko.zst', 'drivers/virtio/virtio.ko.xz']) {
      mkdirSync(join(dir, 'kernel', f, '..'), { recursive: true });
      writeFileSync(join(dir, 'kernel', f), '');
    }
    const mods = await resolveModules(dir);
    expect(mods.map((m) => m.name)).toEqual(['virtio', 'virtio_mmio', 'failover', 'net_failover', 'virtio_net']);
    await expect(resolveModules(dir, ['virtio_blk'])).rejects.toThrow(/no virtio_blk/);
  });

  it('decodes LZ4 blocks, overlapping matches included, and refuses a bad offset', () => {
    // "ab", then a 6-byte match at distance 2 (overlapping), then the literal "c".
    const block = Buffer.from([0x22, 0x61, 0x62, 0x02, 0x00, 0x10, 0x63]);
    const out = Buffer.alloc(16);
    const n = lz4Block(block, out, 0);
    expect(out.toString('latin1', 0, n)).toBe('ababababc');
    expect(() => lz4Block(Buffer.from([0x10, 0x61, 0x05, 0x00]), Buffer.alloc(16), 0)).toThrow(/offset/);
    expect(hasPvhNote(Buffer.from('not an elf at all, not an elf at all, not an elf at all, not an elf'))).toBe(false);
  });

  it('reads the init markers only with this boot token, and spots panics and OOM kills', () => {
    const lines: string[] = [];
    let started = 0;
    const w = new ConsoleWatcher('c0ffee', (l) => lines.push(l), () => started++);
    w.feed('skiff-vminit: deadbeef exit 0\r\nskiff-vminit: c0ffee started 12 1.5\r\nhello\r\n[ 1.0] Out of memory: Killed process 12 (sh)\r\n');
    w.feed('skiff-vminit: c0ffee sig');
    w.feed('nal 9\r\n[ 2.0] Kernel panic - not syncing: Fatal exception\r\npartial');
    w.end();
    expect(started).toBe(1);
    expect(w.state).toMatchObject({ exitSignal: 9, oomKill: true, panic: 'Fatal exception' });
    expect(w.state.exitCode).toBeUndefined();
    expect(lines).toContain('hello');
    expect(lines[lines.length - 1]).toBe('partial');
  });
});

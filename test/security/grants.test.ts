import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { HostDirs, HostPathError, parseFunctionMaxima,UpstreamGuard } from '../../src/security/index.js';

describe('HostDirs (--allow-host-dir)', () => {
  const base = mkdtempSync(join(tmpdir(), 'skiff-hostdirs-'));
  const allowed = join(base, 'allowed');
  const outside = join(base, 'outside');
  mkdirSync(allowed);
  mkdirSync(outside);
  writeFileSync(join(allowed, 'ok.txt'), 'inside');
  writeFileSync(join(outside, 'secret.txt'), 'TOP SECRET');
  symlinkSync(join(outside, 'secret.txt'), join(allowed, 'link-to-secret'));
  symlinkSync(outside, join(allowed, 'dir-link'));
  execFileSync('mkfifo', [join(allowed, 'fifo')]);
  const dirs = HostDirs.from([allowed]);

  it('refuses / and directories that do not exist', () => {
    expect(() => HostDirs.from(['/'])).toThrow(/whole host file system/);
    expect(() => HostDirs.from([join(base, 'nope')])).toThrow(HostPathError);
  });

  it('contains paths inside, lexically and after symlinks', () => {
    expect(dirs.contains(join(allowed, 'ok.txt'))).toBe(true);
    expect(dirs.contains(join(allowed, 'new', 'file'))).toBe(true);
    expect(dirs.contains(join(allowed, '..', 'outside', 'secret.txt'))).toBe(false);
    expect(dirs.contains(join(allowed, 'dir-link', 'secret.txt'))).toBe(false);
    expect(dirs.contains(join(allowed, 'link-to-secret'))).toBe(false);
    expect(dirs.contains('relative/path')).toBe(false);
    expect(dirs.contains(allowed + '-sibling/x')).toBe(false);
    expect(HostDirs.none().contains(join(allowed, 'ok.txt'))).toBe(false);
  });

  it('reads regular files inside and refuses symlinks out, FIFOs and big files without quoting contents', () => {
    expect(dirs.readFile(join(allowed, 'ok.txt'), { maxBytes: 100 }).toString()).toBe('inside');
    for (const p of [join(allowed, 'link-to-secret'), join(allowed, 'dir-link', 'secret.txt'), join(outside, 'secret.txt')]) {
      const err = (() => {
        try {
          dirs.readFile(p, { maxBytes: 100, field: 'spec.jwksFile' });
        } catch (e) {
          return e as HostPathError;
        }
        throw new Error('expected a refusal');
      })();
      expect(err.code).toBe('host_path_outside');
      expect(err.message).toContain('spec.jwksFile');
      expect(err.message).toContain('--allow-host-dir');
      expect(err.message).not.toContain('TOP SECRET');
    }
    expect(() => dirs.readFile(join(allowed, 'fifo'), { maxBytes: 100 })).toThrow(/not a regular file/);
    expect(() => dirs.readFile(join(allowed, 'ok.txt'), { maxBytes: 2 })).toThrow(/limit/);
    expect(() => dirs.readFile(join(allowed, 'missing'), { maxBytes: 2 })).toThrow(/does not exist/);
  });
});

describe('UpstreamGuard (--allow-upstream)', () => {
  it('refuses loopback, link-local, unspecified and mapped forms by default and allows the rest', async () => {
    const g = UpstreamGuard.from([]);
    for (const ip of ['127.0.0.1', '127.9.9.9', '::1', '0.0.0.0', '::', '169.254.169.254', 'fe80::1', '::ffff:127.0.0.1', '::ffff:7f00:1', '[::1]']) {
      expect(g.checkAddress(ip, ip, 80), ip).toMatch(/--allow-upstream|own listeners/);
    }
    expect(g.checkAddress('10.1.2.3', '10.1.2.3', 80)).toBeUndefined();
    expect(g.checkAddress('example.test', '93.184.216.34', 443)).toBeUndefined();
    await expect(g.check('localhost', 80)).rejects.toThrow(/loopback/);
    expect(g.checkLiteral('localhost', 80)).toMatch(/loopback/);
    expect(g.checkLiteral('svc.example', 80)).toBeUndefined();
  });

  it('allows by CIDR, by address and by HOST:PORT, but never Skiff\'s own listeners', async () => {
    const g = UpstreamGuard.from(['127.0.0.0/8', '[::1]:9000', 'localhost:7000']);
    g.addOwnListener({ host: '127.0.0.1', port: 7070 });
    expect(g.checkAddress('127.0.0.1', '127.0.0.1', 9999)).toBeUndefined();
    expect(g.checkAddress('::1', '::1', 9000)).toBeUndefined();
    expect(g.checkAddress('::1', '::1', 9001)).toMatch(/--allow-upstream/);
    expect(g.checkAddress('127.0.0.1', '127.0.0.1', 7070)).toMatch(/own listeners/);
    expect(g.checkAddress('0.0.0.0', '0.0.0.0', 7070)).toMatch(/own listeners/);
    expect(UpstreamGuard.permissive().checkAddress('127.0.0.1', '127.0.0.1', 1)).toBeUndefined();
    const p = UpstreamGuard.permissive();
    p.addOwnListener({ host: '0.0.0.0', port: 8080 });
    expect(p.checkAddress('127.0.0.1', '127.0.0.1', 8080)).toMatch(/own listeners/);
    await expect(g.check('127.0.0.1', 7070)).rejects.toThrow(/own listeners/);
    expect(() => UpstreamGuard.from(['nonsense::'])).toThrow(/--allow-upstream/);
  });
});

describe('function maxima', () => {
  it('parses flags over defaults and names a bad flag', () => {
    const m = parseFunctionMaxima({ memory: '64Mi', timeout: '2s', concurrency: '4' });
    expect(m.memoryBytes).toBe(64 * 1024 * 1024);
    expect(m.timeoutMs).toBe(2000);
    expect(m.concurrency).toBe(4);
    expect(() => parseFunctionMaxima({ memory: 'lots' })).toThrow(/--max-function-memory/);
  });
});

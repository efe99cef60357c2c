import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { HostFs } from '../../src/runtime/fs/host-fs.js';
import { Runtime } from '../../src/runtime/index.js';
import { E, OFLAGS, R } from '../../src/runtime/wasi/constants.js';
import { cli, startSkiff, waitFor } from '../helpers/skiff-process.js';
import { wasiImport, wat2wasm } from '../runtime/helpers/wat.js';

/** What a guest does with the file it opened. */
type Action = 'read' | 'write' | 'close';

/**
 * openerWat builds a guest that opens `path` beneath the first preopen (fd 3) `loops` times with the
 * given flags and rights, acts on it, and optionally unlinks it again. It exits with the errno of the
 * last failed open, or 200 + the errno of the last action when every open succeeded.
 */
function openerWat(path: string, opts: { oflags?: number; rights: bigint; action: Action; loops?: number; unlink?: boolean; follow?: boolean }): string {
  const bytes = new TextEncoder().encode(path);
  const enc = Array.from(bytes).map((b) => `\\${b.toString(16).padStart(2, '0')}`).join('');
  const act =
    opts.action === 'read'
      ? '(local.set $a (call $fd_read (i32.load (i32.const 16)) (i32.const 32) (i32.const 1) (i32.const 48)))'
      : opts.action === 'write'
        ? '(local.set $a (call $fd_write (i32.load (i32.const 16)) (i32.const 32) (i32.const 1) (i32.const 48)))'
        : '';
  return `(module
  ${['path_open', 'fd_read', 'fd_write', 'fd_close', 'path_unlink_file', 'proc_exit'].map(wasiImport).join('\n  ')}
  (memory (export "memory") 1)
  (data (i32.const 1024) "${enc}")
  (data (i32.const 2048) "guest wrote this")
  (func (export "_start") (local $i i32) (local $e i32) (local $a i32) (local $last i32)
    (i32.store (i32.const 32) (i32.const 2048))
    (i32.store (i32.const 36) (i32.const 16))
    (block $done (loop $again
      (local.set $e (call $path_open (i32.const 3) (i32.const ${opts.follow === false ? 0 : 1}) (i32.const 1024) (i32.const ${bytes.length})
        (i32.const ${opts.oflags ?? 0}) (i64.const ${opts.rights}) (i64.const 0) (i32.const 0) (i32.const 16)))
      (if (i32.eqz (local.get $e))
        (then
          ${act}
          (drop (call $fd_close (i32.load (i32.const 16))))
          ${opts.unlink ? `(drop (call $path_unlink_file (i32.const 3) (i32.const 1024) (i32.const ${bytes.length})))` : ''}
          (local.set $last (i32.add (i32.const 200) (local.get $a))))
        (else (local.set $last (local.get $e))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const ${opts.loops ?? 1})))))
    (call $proc_exit (local.get $last))))`;
}

const SECRET = 'outside secret';

describe('host directories: special files, symlinks and races', () => {
  let base: string;
  let root: string;
  let outside: string;
  let rt: Runtime;
  let sock: Server | undefined;
  const run = async (wat: string, timeoutMs = 20_000) => {
    const info = await rt.compile(await wat2wasm(wat));
    return rt.invoke(info.digest, { args: ['t'], env: {}, capabilities: { dirs: [{ host: root, guest: '/data' }] }, limits: { timeoutMs } });
  };

  beforeAll(() => {
    rt = new Runtime({ workers: 2 });
  });
  afterAll(async () => {
    await rt.close();
  });
  beforeEach(async () => {
    sock?.close();
    base = mkdtempSync(join(tmpdir(), 'skiff-hostfiles-'));
    root = join(base, 'root');
    outside = join(base, 'outside');
    mkdirSync(join(root, 'sub'), { recursive: true });
    mkdirSync(outside);
    writeFileSync(join(outside, 'file'), SECRET);
    writeFileSync(join(root, 'sub', 'file'), 'inside');
    writeFileSync(join(root, 'plain.txt'), 'plain');
    execFileSync('mkfifo', [join(root, 'fifo')]);
    symlinkSync('fifo', join(root, 'fifo-link'));
    symlinkSync('../outside', join(root, 'out-dir'));
    symlinkSync('../outside/file', join(root, 'out-file'));
    symlinkSync('sub/file', join(root, 'in-link'));
    sock = createServer();
    await new Promise<void>((r) => sock!.listen(join(root, 'sock'), r));
    return () => {
      sock?.close();
      sock = undefined;
      rmSync(base, { recursive: true, force: true });
    };
  });

  it('a guest opening a FIFO gets an errno at once, for reading and for writing, and no worker is left blocked', { timeout: 90_000 }, async () => {
    // More runs at once than there are workers: a run blocked in open() would hold its worker until
    // the deadline; each run must instead end with the errno, its guest time short.
    const runs = await Promise.all([
      run(openerWat('fifo', { rights: R.FD_READ, action: 'read' })),
      run(openerWat('fifo', { rights: R.FD_WRITE, action: 'write' })),
      run(openerWat('fifo-link', { rights: R.FD_READ, action: 'read' })),
      run(openerWat('fifo', { oflags: OFLAGS.CREAT, rights: R.FD_READ | R.FD_WRITE, action: 'read' })),
      run(openerWat('sock', { rights: R.FD_READ, action: 'read' })),
    ]);
    for (const r of runs) {
      expect(r.exitCode).toBe(E.PERM);
      expect(r.durationMs).toBeLessThan(5000);
      expect(r.notes?.join('\n')).toMatch(/only regular files and directories are opened/);
    }
    // The runtime still serves ordinary runs afterwards.
    const ok = await run(openerWat('plain.txt', { rights: R.FD_READ, action: 'read' }));
    expect(ok.exitCode).toBe(200);
    expect(existsSync(join(root, 'fifo')) && !statSync(join(root, 'fifo')).isFile()).toBe(true);
  });

  it('a guest repeating a refused open gets the errno every time but fills neither memory nor the log', { timeout: 60_000 }, async () => {
    const r = await run(openerWat('fifo', { rights: R.FD_READ, action: 'read', loops: 300 }));
    expect(r.exitCode).toBe(E.PERM);
    expect(r.notes!.length).toBe(33);
    expect(r.notes!.at(-1)).toMatch(/further refusals in this run were not recorded/);
  });

  it('a symlink inside the mount that points outside is refused, even with O_TRUNC; one that stays inside works', { timeout: 60_000 }, async () => {
    const trunc = await run(openerWat('out-file', { oflags: OFLAGS.TRUNC, rights: R.FD_WRITE, action: 'write' }));
    expect(trunc.exitCode).toBe(E.PERM);
    const viaDir = await run(openerWat('out-dir/file', { oflags: OFLAGS.CREAT | OFLAGS.TRUNC, rights: R.FD_WRITE, action: 'write' }));
    expect(viaDir.exitCode).toBe(E.PERM);
    const created = await run(openerWat('out-dir/new', { oflags: OFLAGS.CREAT | OFLAGS.EXCL, rights: R.FD_WRITE, action: 'write' }));
    expect(created.exitCode).toBe(E.PERM);
    expect(readFileSync(join(outside, 'file'), 'utf8')).toBe(SECRET);
    expect(readdirSync(outside)).toEqual(['file']);
    const inside = await run(openerWat('in-link', { rights: R.FD_READ, action: 'read' }));
    expect(inside.exitCode).toBe(200);
  });

  it('a directory swapped for a link to the outside is caught before anything is truncated, created or changed there', () => {
    // This is the state a race leaves between resolution and use: the resolver saw `sub` as a
    // directory, and by the time the operation runs `sub` leads outside.
    const fs = new HostFs(root, false);
    rmSync(join(root, 'sub'), { recursive: true });
    symlinkSync(outside, join(root, 'sub'));
    const sub = join(fs.root, 'sub');
    const refused = expect.objectContaining({ errno: E.PERM });
    expect(() => fs.open(join(sub, 'file'), { read: false, write: true, truncate: true })).toThrow(refused);
    expect(() => fs.create(sub, 'planted', { read: false, write: true, truncate: false })).toThrow(refused);
    expect(() => fs.mkdir(sub, 'planted-dir')).toThrow(refused);
    expect(() => fs.symlink('x', sub, 'planted-link')).toThrow(refused);
    expect(() => fs.unlink(sub, 'file')).toThrow(refused);
    expect(() => fs.rename(sub, 'file', fs.root, 'stolen')).toThrow(refused);
    expect(() => fs.link(join(sub, 'file'), fs.root, 'stolen')).toThrow(refused);
    expect(() => fs.setTimes(join(sub, 'file'), 0n, 0n)).toThrow(refused);
    expect(() => fs.stat(join(sub, 'file'))).toThrow(refused);
    expect(() => fs.lookup(sub, 'file')).toThrow(refused);
    expect(() => fs.readdir(sub)).toThrow(refused);
    expect(readFileSync(join(outside, 'file'), 'utf8')).toBe(SECRET);
    expect(readdirSync(outside)).toEqual(['file']);
    expect(statSync(join(outside, 'file')).mtimeMs).toBeGreaterThan(0);
    expect(existsSync(join(root, 'stolen'))).toBe(false);
  });

  it('guests opening, creating and truncating sub/file while another process swaps sub for a link never touch the outside', { timeout: 240_000 }, async () => {
    // The swapper flips `sub` between the real directory and a link to the outside directory, as a
    // second instance sharing the read-write directory (or any host process) could.
    symlinkSync(outside, join(root, 'sub.link'));
    const swapper = spawn(
      process.execPath,
      [
        '-e',
        `const fs = require('node:fs'); const p = require('node:path'); const r = process.argv[1];
         const end = Date.now() + 200000;
         for (let i = 0; i < 2000000 && Date.now() < end; i++) {
           try { fs.renameSync(p.join(r, 'sub'), p.join(r, 'sub.dir')); fs.renameSync(p.join(r, 'sub.link'), p.join(r, 'sub')); } catch {}
           try { fs.renameSync(p.join(r, 'sub'), p.join(r, 'sub.link')); fs.renameSync(p.join(r, 'sub.dir'), p.join(r, 'sub')); } catch {}
         }`,
        root,
      ],
      { stdio: 'ignore' },
    );
    const exited = new Promise<void>((r) => swapper.on('exit', () => r()));
    try {
      const guests = [
        openerWat('sub/file', { oflags: OFLAGS.CREAT | OFLAGS.TRUNC, rights: R.FD_WRITE, action: 'write', loops: 300 }),
        openerWat('sub/file', { oflags: OFLAGS.TRUNC, rights: R.FD_WRITE | R.FD_READ, action: 'close', loops: 300 }),
        openerWat('sub/created', { oflags: OFLAGS.CREAT | OFLAGS.EXCL, rights: R.FD_WRITE, action: 'write', loops: 300, unlink: true }),
      ];
      for (let round = 0; round < 3; round++) {
        const results = await Promise.all(guests.map((g) => run(g, 60_000)));
        for (const r of results) expect(r.exitCode).toBeGreaterThan(0);
      }
    } finally {
      swapper.kill('SIGKILL');
      await exited;
    }
    expect(readFileSync(join(outside, 'file'), 'utf8')).toBe(SECRET);
    expect(readdirSync(outside)).toEqual(['file']);
  });
});

/** fifoFunctionWat is a WAGI guest that opens `fifo` beneath its first preopen and reads it, answering "refused" or "read". */
function fifoFunctionWat(): string {
  const head = 'Content-Type: text/plain\\n\\n';
  return `(module
  ${['path_open', 'fd_read', 'fd_write'].map(wasiImport).join('\n  ')}
  (memory (export "memory") 1)
  (data (i32.const 1024) "fifo")
  (data (i32.const 2048) "${head}refused\\n")
  (data (i32.const 3072) "${head}read\\n")
  (func (export "_start") (local $e i32)
    (local.set $e (call $path_open (i32.const 3) (i32.const 1) (i32.const 1024) (i32.const 4) (i32.const 0) (i64.const ${R.FD_READ}) (i64.const 0) (i32.const 0) (i32.const 16)))
    (if (local.get $e)
      (then (i32.store (i32.const 32) (i32.const 2048)) (i32.store (i32.const 36) (i32.const 34)))
      (else
        (i32.store (i32.const 32) (i32.const 4096)) (i32.store (i32.const 36) (i32.const 64))
        (drop (call $fd_read (i32.load (i32.const 16)) (i32.const 32) (i32.const 1) (i32.const 48)))
        (i32.store (i32.const 32) (i32.const 3072)) (i32.store (i32.const 36) (i32.const 31))))
    (drop (call $fd_write (i32.const 1) (i32.const 32) (i32.const 1) (i32.const 48)))))`;
}

describe('a Function reading a FIFO in its mounted directory (skiff up)', () => {
  it('gets an error at once, and the gateway keeps serving it and others', { timeout: 180_000 }, async () => {
    const allowed = mkdtempSync(join(tmpdir(), 'skiff-fifo-fn-'));
    mkdirSync(join(allowed, 'data'));
    execFileSync('mkfifo', [join(allowed, 'data', 'fifo')]);
    writeFileSync(join(allowed, 'reader.wasm'), await wat2wasm(fifoFunctionWat()));
    writeFileSync(
      join(allowed, 'reader.yaml'),
      `apiVersion: skiff.dev/v1\nkind: Function\nmetadata: { name: fifo-reader }\nspec:\n  module: ./reader.wasm\n  limits: { timeout: 3s }\n  capabilities:\n    dirs: [{ host: ${join(allowed, 'data')}, guest: /data }]\n---\napiVersion: skiff.dev/v1\nkind: Route\nmetadata: { name: fifo-reader }\nspec:\n  http:\n    - match: [{ uri: { prefix: /fifo } }]\n      route: [{ destination: { function: fifo-reader } }]\n`,
    );
    const s = await startSkiff({ demo: true, args: ['--allow-host-dir', allowed], timeoutMs: 60_000 });
    const env = { SKIFF_DATA_DIR: s.dataDir };
    try {
      const applied = await cli(['apply', '-f', join(allowed, 'reader.yaml')], { server: s.api, env });
      expect(applied.code, applied.stderr).toBe(0);
      await waitFor(async () => JSON.parse((await cli(['get', 'fn', 'fifo-reader', '-o', 'json'], { server: s.api, env })).stdout).status?.conditions?.[0]?.status === 'True', 'fifo-reader ready', 60_000);
      await waitFor(async () => (await fetch(`${s.gateway}/fifo`)).status === 200, 'route to fifo-reader', 30_000);
      // More requests at once than there are sandbox workers: a blocked open would hold them all.
      const answers = await Promise.all(Array.from({ length: 6 }, async () => {
        // The Function's deadline is 3 s: a blocked open would end in 504, not in the guest's answer.
        const res = await fetch(`${s.gateway}/fifo`, { signal: AbortSignal.timeout(20_000) });
        return [res.status, await res.text()] as const;
      }));
      for (const a of answers) expect(a).toEqual([200, 'refused\n']);
      const hello = await fetch(`${s.gateway}/hello`, { signal: AbortSignal.timeout(10_000) });
      expect(hello.status).toBe(200);
    } finally {
      await s.stop();
      rmSync(allowed, { recursive: true, force: true });
    }
  });
});

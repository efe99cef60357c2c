import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Runtime } from '../../src/runtime/index.js';
import { ModuleCache } from '../../src/runtime/module-cache.js';
import { SandboxHost } from '../../src/runtime/sandbox.js';
import { run } from '../helpers/run.js';
import { hasBinary } from '../helpers/system-deps.js';

const fixtures = fileURLToPath(new URL('./fixtures/', import.meta.url));
const haveClang = hasBinary('clang');

/** Real C programs (clang + Debian's wasi-libc) through the Runtime: the host as libc sees it. */
describe.skipIf(!haveClang)('C programs built with wasi-libc', () => {
  let dir: string;
  let rt: Runtime;
  const build = async (name: string) => {
    const out = join(dir, `${name}.wasm`);
    const r = await run('clang', ['--target=wasm32-wasi', '--sysroot=/usr', '-O1', '-o', out, join(fixtures, `${name}.c`)]);
    if (r.status !== 0) throw new Error(`clang ${name}.c failed: ${r.stderr}`);
    return readFileSync(out);
  };
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'skiff-c-'));
    rt = new Runtime({ workers: 1 });
  });
  afterAll(async () => {
    await rt.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs a tour of libc file, clock, poll, random and memory calls', async () => {
    const data = join(dir, 'data');
    const ro = join(dir, 'ro');
    mkdirSync(data);
    mkdirSync(ro);
    writeFileSync(join(ro, 'keep.txt'), 'keep');
    const info = await rt.compile(await build('libc-tour'));
    expect(info.capabilities).toEqual(expect.arrayContaining(['args', 'env', 'clocks', 'random', 'stdin', 'stdout', 'dirs', 'exit']));
    expect(info.capabilities).not.toContain('sockets');
    const checks = (readFileSync(join(fixtures, 'libc-tour.c'), 'utf8').match(/^\s*CHECK\(/gm) ?? []).length;
    // Three runs: the later ones reuse the warm instance reset from its snapshot, and must behave the same.
    for (let run = 0; run < 3; run++) {
      const res = await rt.invoke(info.digest, {
        args: ['tour', 'one', 'two words'],
        env: { GREETING: 'hello' },
        stdin: new TextEncoder().encode('from stdin\n'),
        capabilities: { dirs: [{ host: data, guest: '/data' }, { host: ro, guest: '/ro', readOnly: true }] },
        limits: { memoryBytes: 64 << 20 },
      });
      const lines = new TextDecoder().decode(res.stdout).trim().split('\n');
      expect(lines.filter((l) => !l.startsWith('ok '))).toEqual([]);
      expect(lines).toHaveLength(checks);
      expect(new TextDecoder().decode(res.stderr)).toBe('to stderr\n');
      expect(res.exitCode).toBe(42);
    }
  });

  it('reuses a warm wasi-libc instance with its static state reset', async () => {
    const cache = new ModuleCache(1024);
    const info = await cache.compile(await build('wagi'));
    const v = await cache.variant(info.digest, 16 << 20);
    const host = new SandboxHost();
    const outs = ['a', 'bb', 'ccc'].map((body) =>
      host.run(v.key, v.module, v.reusable, {
        args: ['wagi'], env: { REQUEST_METHOD: 'POST' }, stdin: new TextEncoder().encode(body), dirs: [],
        clock: 'real', random: 'real', maxOutputBytes: 1 << 16, memoryBytes: 16 << 20,
      }),
    );
    expect(outs.map((o) => o.ok && o.reused)).toEqual([false, true, true]);
    expect(outs.map((o) => new TextDecoder().decode(o.stdout))).toEqual(['a', 'bb', 'ccc'].map((b) => `content-type: text/plain\n\nmethod=POST calls=1 body=${b}\n`));
  });

  it('turns abort() into a trap', async () => {
    const info = await rt.compile(await build('abort'));
    await expect(rt.invoke(info.digest, { args: ['abort'], env: {} })).rejects.toMatchObject({ code: 'trap' });
  });
});

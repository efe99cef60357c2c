import { mkdirSync,mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { parseDir, parseEnv } from '../../src/cli/commands/run.js';
import { run } from '../helpers/run.js';

import { programs } from './helpers/programs.js';
import { commandWat, helloWat, wat2wasm } from './helpers/wat.js';

const entry = fileURLToPath(new URL('./helpers/cli-entry.ts', import.meta.url));

async function skiff(args: string[], input?: string) {
  const r = await run(process.execPath, ['--import', 'tsx', entry, ...args], { input, timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** writeFileAt: opens `$2` under preopen fd 3 with O_CREAT|O_TRUNC and writes "written by guest". */
const writeFile = commandWat({
  imports: ['path_open', 'fd_write', 'proc_exit'],
  data: '(data (i32.const 200) "out.txt") (data (i32.const 300) "written by guest")',
  start: `(call $proc_exit (call $path_open (i32.const 3) (i32.const 0) (i32.const 200) (i32.const 7) (i32.const 9)
      (i64.const 0x7fffffff) (i64.const 0x7fffffff) (i32.const 0) (i32.const 100)))`,
});

describe('skiff run and skiff inspect', () => {
  let dir: string;
  const wasm: Record<string, string> = {};
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'skiff-cli-'));
    const sources = { ...programs, hello: helloWat('Hello from wasm\n', 3), writeFile };
    for (const [name, wat] of Object.entries(sources)) {
      wasm[name] = join(dir, `${name}.wasm`);
      writeFileSync(wasm[name]!, await wat2wasm(wat));
    }
    writeFileSync(join(dir, 'not.wasm'), 'hello');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('parses --dir and --env like wasmtime', async () => {
    expect(parseDir('/data')).toEqual({ host: '/data', guest: '/data', readOnly: false });
    expect(parseDir('./x::/y:ro')).toEqual({ host: './x', guest: '/y', readOnly: true });
    expect(parseDir('.::/')).toEqual({ host: '.', guest: '/', readOnly: false });
    expect(() => parseDir('::/x')).toThrow(/HOST/);
    expect(parseEnv(['A=1', 'B=x=y', 'C='])).toEqual({ A: '1', B: 'x=y', C: '' });
    expect(() => parseEnv(['=1'])).toThrow();
  });

  it('passes stdio through and exits with the guest exit code', async () => {
    const r = await skiff(['run', wasm.hello!]);
    expect(r.stdout).toBe('Hello from wasm\n');
    expect(r.code).toBe(3);
    const cat = await skiff(['run', wasm.cat!], 'piped input\n');
    expect(cat.stdout).toBe('piped input\n');
    expect(cat.code).toBe(0);
  });

  it('passes args after -- (argv[0] is the module) and --env', async () => {
    const r = await skiff(['run', wasm.argsEnv!, '--env', 'GREETING=hi', '--', 'one', '--two']);
    expect(r.stdout.split('\0')).toEqual([wasm.argsEnv, 'one', '--two', '']);
    expect(r.stderr.split('\0')).toEqual(['GREETING=hi', '']);
  });

  it('reports a trap on stderr with a non-zero exit, and --timeout stops a loop', async () => {
    const t = await skiff(['run', wasm.trap!]);
    expect(t.code).toBe(134);
    expect(t.stderr).toContain('unreachable');
    const l = await skiff(['run', '--timeout', '300', wasm.loop!]);
    expect(l.code).toBe(124);
    expect(l.stderr).toContain('300 ms');
  });

  it('preopens --dir HOST::GUEST read-write, and :ro refuses writes', async () => {
    const data = join(dir, 'data');
    mkdirSync(data, { recursive: true });
    const rw = await skiff(['run', '--dir', `${data}::/data`, wasm.writeFile!]);
    expect(rw.code).toBe(0);
    const ro = await skiff(['run', '--dir', `${data}::/data:ro`, wasm.writeFile!]);
    expect(ro.code).toBe(63); // EPERM from path_open
    expect(readFileSync(join(data, 'out.txt'), 'utf8')).toBe('');
  });

  it('enforces --mem-limit and refuses non-wasm files with exit 1', async () => {
    const big = await skiff(['run', '--mem-limit', '1Mi', wasm.bigMin!]);
    expect(big.code).toBe(1);
    expect(big.stderr).toContain('minimum memory');
    const grow = await skiff(['run', '--mem-limit', '655360', wasm.growAll!]);
    expect(grow.code).toBe(10);
    const bad = await skiff(['run', join(dir, 'not.wasm')]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('not a WebAssembly module');
    expect((await skiff(['run', join(dir, 'missing.wasm')])).code).toBe(2);
  });

  it('inspect prints imports, exports, memory and capabilities', async () => {
    const r = await skiff(['inspect', wasm.hello!]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('wasi_snapshot_preview1.fd_write');
    expect(r.stdout).toMatch(/capabilities:\s+stdout, exit/);
    const j = JSON.parse((await skiff(['inspect', wasm.writeFile!, '-o', 'json'])).stdout);
    expect(j.capabilities).toContain('dirs');
    expect(j.memories[0]).toMatchObject({ minPages: 1, maxPages: null });
    expect(j.exports.map((e: { name: string }) => e.name)).toEqual(['memory', '_start']);
    const f = JSON.parse((await skiff(['inspect', wasm.foreign!, '-o', 'json'])).stdout);
    expect(f.unknownImports).toEqual(['env.emscripten_notify', 'wasi_snapshot_preview1.no_such_call']);
    expect((await skiff(['inspect', join(dir, 'not.wasm')])).code).toBe(1);
  });
});

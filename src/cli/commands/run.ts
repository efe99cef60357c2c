import { readFile } from 'node:fs/promises';

import type { Command } from 'commander';

import { type Capabilities,Runtime, RuntimeError } from '../../runtime/index.js';
import { CheckFailedError, UsageError } from '../../util/errors.js';
import { parseBytes } from '../../util/quantity.js';

/** Exit code of a trapped guest, as `wasmtime run` reports it on Unix (128 + SIGABRT). */
const TRAP_EXIT = 134;
/** Exit code of a guest stopped by --timeout, as timeout(1) reports it. */
const TIMEOUT_EXIT = 124;
/** setTimeout's largest delay: "no timeout" for a CLI run. */
const NO_TIMEOUT_MS = 2_147_483_647;

/** parseDir reads `HOST[::GUEST][:ro]` (the guest path defaults to HOST as written, like wasmtime). */
export function parseDir(spec: string): { host: string; guest: string; readOnly: boolean } {
  let s = spec;
  let readOnly = false;
  if (s.endsWith(':ro')) {
    readOnly = true;
    s = s.slice(0, -3);
  }
  const i = s.indexOf('::');
  const host = i >= 0 ? s.slice(0, i) : s;
  const guest = i >= 0 ? s.slice(i + 2) : s;
  if (!host || !guest) throw new UsageError(`--dir ${spec}: expected HOST[::GUEST][:ro], e.g. --dir ./data::/data:ro`);
  return { host, guest, readOnly };
}

/** parseEnv reads `KEY=VALUE`, or `KEY` alone to pass the variable through from this process. */
export function parseEnv(list: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const item of list) {
    const i = item.indexOf('=');
    const key = i >= 0 ? item.slice(0, i) : item;
    if (!key) throw new UsageError(`--env ${item}: expected KEY=VALUE`);
    if (i >= 0) env[key] = item.slice(i + 1);
    else if (process.env[key] !== undefined) env[key] = process.env[key]!;
  }
  return env;
}

const collect = (v: string, prev: string[]) => [...prev, v];

/** `skiff run MODULE.wasm`: runs a WASI preview 1 command like `wasmtime run`; the exit code is the guest's. */
export function register(program: Command): void {
  program
    .command('run')
    .description('run a WASI preview 1 command module in the sandbox; its stdio is this process\'s and its exit code is the guest\'s')
    .argument('<module>', 'a .wasm file')
    .argument('[args...]', 'arguments for the guest (after --)')
    .option('--dir <HOST[::GUEST][:ro]>', 'preopen a host directory (repeatable)', collect, [])
    .option('--env <KEY=VALUE>', 'set an environment variable for the guest (repeatable)', collect, [])
    .option('--mem-limit <bytes>', 'maximum linear memory (bytes, or 64Mi, 1Gi)')
    .option('--timeout <ms>', 'wall-clock deadline in milliseconds')
    .option('--memfs <guest-path>', 'mount an empty in-memory filesystem at this guest path (scratch space)')
    .option('--trace', 'print every WASI call, its arguments and errno to stderr (like strace)')
    .allowExcessArguments(true)
    .action(async (modulePath: string, args: string[], opts: { dir: string[]; env: string[]; memLimit?: string; timeout?: string; memfs?: string; trace?: boolean }) => {
      let bytes: Uint8Array;
      try {
        bytes = await readFile(modulePath);
      } catch (err) {
        throw new UsageError(`cannot read ${modulePath}: ${(err as Error).message}`);
      }
      const memoryBytes = opts.memLimit === undefined ? undefined : parseBytes(opts.memLimit);
      if (opts.memLimit !== undefined && !memoryBytes) throw new UsageError(`--mem-limit ${opts.memLimit}: expected a number of bytes such as 67108864 or 64Mi`);
      const timeoutMs = opts.timeout === undefined ? NO_TIMEOUT_MS : Number(opts.timeout);
      if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new UsageError(`--timeout ${opts.timeout}: expected a positive number of milliseconds`);
      const dirs = opts.dir.map(parseDir);
      const caps: Capabilities = { dirs, memfs: opts.memfs };
      const rt = new Runtime({ workers: 1 });
      try {
        const info = await rt.compile(bytes).catch((err) => {
          throw err instanceof RuntimeError ? new CheckFailedError(`skiff run: ${modulePath}: ${err.message}`) : err;
        });
        const res = await rt.invoke(info.digest, {
          args: [modulePath, ...args],
          env: parseEnv(opts.env),
          capabilities: caps,
          // Like wasmtime run: no output or write quota unless asked for.
          limits: { memoryBytes, timeoutMs: Math.min(timeoutMs, NO_TIMEOUT_MS), maxOutputBytes: Number.MAX_SAFE_INTEGER, maxWriteBytes: Number.MAX_SAFE_INTEGER },
          stdio: 'inherit',
          trace: opts.trace,
        });
        process.exitCode = res.exitCode & 0xff;
      } catch (err) {
        if (!(err instanceof RuntimeError)) throw err;
        if (err.code === 'invalid_options') throw new UsageError(err.message);
        process.stderr.write(`Error: ${err.message}\n`);
        process.exitCode = err.code === 'trap' ? TRAP_EXIT : err.code === 'timeout' ? TIMEOUT_EXIT : 1;
      } finally {
        await rt.close();
      }
    });
}

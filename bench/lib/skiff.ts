import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** The CLI as users start it (the script's own interpreter line carries its Node flags). */
export const BIN = resolve(import.meta.dirname, '..', '..', 'bin', 'skiff.js');

/** A `skiff up` a bench started on free loopback ports. */
export interface BenchSkiff {
  proc: ChildProcess;
  api: string;
  gateway: string;
  /** The API bearer token the server wrote to its data directory. */
  token: string;
  dataDir: string;
  /** The mesh listener (`https://HOST:PORT`), when the node has one (a cluster store). */
  mesh?: string;
  /** Wall time from spawning to the readiness line. */
  startupMs: number;
}

/** startBenchSkiff runs `skiff up` with `dataDir` and resolves at its readiness line; `demo` adds the demo Function, `args` more flags. */
export async function startBenchSkiff(dataDir: string, opts: { demo?: boolean; args?: string[] } = {}): Promise<BenchSkiff> {
  const t0 = performance.now();
  const args = ['up', ...(opts.demo ? ['--demo'] : []), '--data-dir', dataDir, '--api', '127.0.0.1:0', '--gateway', '127.0.0.1:0', '--allow-upstream', '127.0.0.0/8', ...(opts.args ?? [])];
  const proc = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, SKIFF_LOG_LEVEL: 'warn' } });
  const line = await new Promise<string>((res, rej) => {
    let out = '';
    proc.stdout!.on('data', (d) => {
      out += d;
      const l = out.split('\n').find((x) => x.startsWith('skiff ready'));
      if (l) res(l);
    });
    proc.on('exit', (c) => rej(new Error(`skiff up exited ${c}`)));
  });
  const startupMs = performance.now() - t0;
  return { proc, api: /api=(\S+)/.exec(line)![1]!, gateway: /gateway=(\S+)/.exec(line)![1]!, token: readFileSync(join(dataDir, 'token'), 'utf8').trim(), dataDir, mesh: /mesh=(\S+)/.exec(line)?.[1], startupMs };
}

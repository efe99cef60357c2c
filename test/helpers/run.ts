import { spawn } from 'node:child_process';

/** RunResult is what a finished command printed and how it ended (spawnSync's shape). */
export interface RunResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * run is spawnSync without blocking the test process: a worker blocked for a minute (a row of slow
 * commands on a loaded machine) misses the test runner's own calls, which fails the whole run.
 */
export function run(command: string, args: string[], opts: { input?: string; timeout?: number; cwd?: string; env?: NodeJS.ProcessEnv; uid?: number; gid?: number } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: opts.cwd, env: opts.env, uid: opts.uid, gid: opts.gid, timeout: opts.timeout, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
    child.once('error', (err) => resolve({ status: null, signal: null, stdout, stderr: stderr + String(err) }));
    child.once('close', (status, signal) => resolve({ status, signal, stdout, stderr }));
  });
}

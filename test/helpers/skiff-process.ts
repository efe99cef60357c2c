import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const REPO = resolve(import.meta.dirname, '..', '..');
export const BIN = join(REPO, 'bin', 'skiff.js');

/** The data dir of every server this test file started, by API URL: `cli()` finds the token there. */
const dataDirs = new Map<string, string>();

export interface RunningSkiff {
  proc: ChildProcess;
  api: string;
  gateway: string;
  /** The whole readiness line (extra listeners such as mesh= appear there). */
  readyLine: string;
  dataDir: string;
  /** The API bearer token (DATA_DIR/token). */
  token: string;
  stderr: () => string;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * startSkiff runs `skiff up` from the built CLI on free loopback ports and resolves once it prints its
 * readiness line. Tests must call stop() (they do in afterAll/afterEach).
 */
export async function startSkiff(opts: { dataDir?: string; demo?: boolean; args?: string[]; cwd?: string; timeoutMs?: number; env?: Record<string, string> } = {}): Promise<RunningSkiff> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'skiff-it-'));
  const args = [BIN, 'up', '--data-dir', dataDir, '--api', '127.0.0.1:0', '--gateway', '127.0.0.1:0', ...(opts.demo ? ['--demo'] : []), ...(opts.args ?? [])];
  const proc = spawn(process.execPath, args, { cwd: opts.cwd ?? REPO, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SKIFF_LOG_LEVEL: 'info', ...(opts.env ?? {}) } });
  let err = '';
  proc.stderr!.on('data', (d) => (err += d));
  const ready = await new Promise<string>((resolveReady, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`skiff up did not become ready in time; stderr:\n${err}`));
    }, opts.timeoutMs ?? 20_000);
    proc.stdout!.on('data', (d) => {
      out += d;
      const line = out.split('\n').find((l) => l.startsWith('skiff ready '));
      if (line) {
        clearTimeout(timer);
        resolveReady(line);
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`skiff up exited with ${code} before ready; stderr:\n${err}`));
    });
  });
  const api = /api=(\S+)/.exec(ready)![1]!;
  const gateway = /gateway=(\S+)/.exec(ready)![1]!;
  dataDirs.set(api, dataDir);
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  return {
    proc,
    api,
    gateway,
    readyLine: ready,
    dataDir,
    token: readFileSync(join(dataDir, 'token'), 'utf8').trim(),
    stderr: () => err,
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * cli runs `bin/skiff.js` with the token and data dir of a started server. It never blocks the test
 * process (no spawnSync): a worker blocked for a minute by a row of CLI commands on a loaded machine
 * misses the test runner's own calls, which fails the whole run.
 */
export function cli(args: string[], opts: { skiff?: RunningSkiff; server?: string; input?: string; cwd?: string; env?: Record<string, string> } = {}): Promise<CliResult> {
  const { SKIFF_TOKEN: _t, SKIFF_DATA_DIR: _d, ...inherited } = process.env;
  const server = opts.server ?? opts.skiff?.api;
  const dataDir = opts.skiff?.dataDir ?? (server ? dataDirs.get(server) : undefined);
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: opts.cwd ?? REPO,
    timeout: 30_000,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...inherited, ...(server ? { SKIFF_SERVER: server } : {}), ...(dataDir ? { SKIFF_DATA_DIR: dataDir } : {}), ...(opts.env ?? {}) },
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdin!.end(opts.input ?? '');
  return new Promise((res) => {
    child.once('error', (err) => res({ code: -1, stdout, stderr: stderr + String(err) }));
    child.once('close', (code) => res({ code: code ?? -1, stdout, stderr }));
  });
}

/** waitFor polls until fn returns a truthy value or the time runs out. */
export async function waitFor<T>(fn: () => Promise<T> | T, what: string, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * apiFetch calls a running Skiff's API with its bearer token: `path` is relative to the API URL
 * (`/apis/...`), `init` as for fetch (its headers win over the token).
 */
export function apiFetch(skiff: Pick<RunningSkiff, 'api' | 'token'>, path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (!headers.has('authorization')) headers.set('authorization', `Bearer ${skiff.token}`);
  return fetch(skiff.api + path, { ...init, headers });
}

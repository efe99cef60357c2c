import { execFile } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';

import type { Logger } from 'pino';

import { WorkloadError } from '../errors.js';
import { nativeBinary } from '../native.js';
import type { ReplicaSpec } from '../types.js';

/** Options both container handlers take. */
export interface ContainerHandlerOptions {
  logger?: Logger;
  /** Where the cgroup file systems are mounted; default `/sys/fs/cgroup`. */
  cgroupRoot?: string;
  /** The cgroup under which replica cgroups are made; default Skiff's own cgroup in each hierarchy. */
  cgroupParent?: string;
  /** The bwrap program; default `bwrap` on PATH. */
  bwrap?: string;
  /** The runc program; default `runc` on PATH. */
  runc?: string;
  /** The skiff-init helper; default the one `npm run build` puts in dist/native. */
  init?: string;
  /** runc only: a non-root image user U runs as host uid/gid BASE + U (default 100000). */
  userIdBase?: number;
  /** Host uid and gid the sandbox runs as when Skiff runs as root; default 65534 (nobody). */
  hostUid?: number;
  hostGid?: number;
  /** How long start() waits for the sandbox to run the workload; default 10 s. */
  startTimeoutMs?: number;
  /** Size of the replica's /tmp tmpfs; default 64 MiB (it is charged to the replica's memory too). */
  tmpBytes?: number;
}

/** The longest path a Unix socket address holds (sun_path less its NUL). */
export const MAX_SOCKET_PATH = 107;

/** findProgram resolves a program name on PATH, or checks an explicit path; undefined when absent. */
export function findProgram(name: string): string | undefined {
  const candidates = name.includes('/') ? [name] : (process.env.PATH ?? '/usr/bin:/bin').split(delimiter).map((d) => join(d, name));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // next
    }
  }
  return undefined;
}

/** initBinary is the skiff-init helper, or undefined when it was not built. */
export function initBinary(options: ContainerHandlerOptions): string | undefined {
  if (options.init === undefined) return nativeBinary('skiff-init');
  return findProgram(options.init);
}

/** run executes a short host command and returns its exit code and output (never throws). */
export function run(file: string, args: string[], timeoutMs = 10_000): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, out: `${stdout}${stderr}`.trim() });
    });
  });
}

/** checkSpec refuses a spec a sandbox cannot honour, naming the field. */
export function checkSpec(spec: ReplicaSpec, socketPath: string): void {
  const bad = (what: string) => new WorkloadError('StartFailed', `replica ${spec.id}: ${what}`);
  if (spec.argv.length === 0 || spec.argv.some((a) => a.includes('\0'))) throw bad('the command is empty or holds a NUL byte; set the Function\'s command or the image\'s entrypoint');
  for (const [k, v] of Object.entries(spec.env)) {
    if (!k || k.includes('=') || k.includes('\0') || v.includes('\0')) throw bad(`environment variable ${JSON.stringify(k)} is not a valid name=value pair`);
  }
  if (!Number.isInteger(spec.port) || spec.port < 1 || spec.port > 65535) throw bad(`port ${spec.port} is not a TCP port (1-65535)`);
  if (!isAbsolute(spec.workingDir)) throw bad(`workingDir ${JSON.stringify(spec.workingDir)} is not an absolute path`);
  try {
    if (!statSync(spec.image.rootfs).isDirectory()) throw new Error('not a directory');
  } catch {
    throw new WorkloadError('InvalidImage', `replica ${spec.id}: the root file system of ${spec.image.reference} (${spec.image.rootfs}) is not a directory; prepare the image again`);
  }
  if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH) {
    throw bad(`the replica directory ${spec.dir} is too long for a Unix socket path (${Buffer.byteLength(socketPath)} > ${MAX_SOCKET_PATH} bytes); use a shorter data directory`);
  }
}

/** hostnameFor makes an RFC 1123 label from the replica id. */
export function hostnameFor(spec: ReplicaSpec): string {
  const h = spec.id.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 63).replace(/-+$/, '');
  return h || 'replica';
}

/** Mount points the sandbox makes itself; an image's own entries there are not shown. */
export const SANDBOX_MOUNTS = new Set(['proc', 'dev', 'tmp', 'run', 'sys', '.skiff']);

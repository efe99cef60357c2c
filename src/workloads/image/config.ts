import { isDigest, type Platform } from '../../oci/index.js';
import { WorkloadError } from '../errors.js';
import type { ImageConfig } from '../types.js';

/** ParsedImageConfig is what an image configuration blob says that unpacking and running need. */
export interface ParsedImageConfig {
  config: ImageConfig;
  /** rootfs.diff_ids: the digest of each layer uncompressed, in order, when the configuration lists them. */
  diffIds?: string[];
  os?: string;
  architecture?: string;
  variant?: string;
}

/**
 * parseImageConfig reads an OCI image configuration (or Docker's, which has the same fields): the
 * process defaults (`config.Entrypoint`, `Cmd`, `Env`, `WorkingDir`, `User`, `ExposedPorts`), the
 * platform and `rootfs.diff_ids`. A field of the wrong type is an InvalidImage error naming it.
 */
export function parseImageConfig(bytes: Uint8Array, where: string): ParsedImageConfig {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('utf8'));
  } catch (err) {
    throw new WorkloadError('InvalidImage', `the configuration of ${where} is not JSON`, err);
  }
  if (!isObject(doc)) throw new WorkloadError('InvalidImage', `the configuration of ${where} is not a JSON object`);
  const out: ParsedImageConfig = { config: {} };
  for (const k of ['os', 'architecture', 'variant'] as const) {
    const v = doc[k];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'string') throw new WorkloadError('InvalidImage', `the configuration of ${where} has a non-string "${k}"`);
    out[k] = v;
  }
  const c = doc.config ?? null;
  if (c !== null) {
    if (!isObject(c)) throw new WorkloadError('InvalidImage', `the configuration of ${where} has a "config" that is not an object`);
    const field = (name: string) => `the configuration of ${where}: config.${name}`;
    const entrypoint = stringList(c.Entrypoint, field('Entrypoint'));
    if (entrypoint) out.config.entrypoint = entrypoint;
    const cmd = stringList(c.Cmd, field('Cmd'));
    if (cmd) out.config.cmd = cmd;
    const env = stringList(c.Env, field('Env'));
    if (env) {
      for (const e of env) if (!e.includes('=')) throw new WorkloadError('InvalidImage', `${field('Env')} has "${e.slice(0, 80)}", which is not NAME=value`);
      out.config.env = env;
    }
    const wd = optionalString(c.WorkingDir, field('WorkingDir'));
    if (wd) out.config.workingDir = wd;
    const user = optionalString(c.User, field('User'));
    if (user) out.config.user = user;
    if (c.ExposedPorts !== undefined && c.ExposedPorts !== null) {
      if (!isObject(c.ExposedPorts)) throw new WorkloadError('InvalidImage', `${field('ExposedPorts')} is not an object`);
      out.config.exposedPorts = Object.keys(c.ExposedPorts).sort();
    }
  }
  const rootfs = doc.rootfs;
  if (rootfs !== undefined && rootfs !== null) {
    if (!isObject(rootfs)) throw new WorkloadError('InvalidImage', `the configuration of ${where} has a "rootfs" that is not an object`);
    const ids = stringList(rootfs.diff_ids, `the configuration of ${where}: rootfs.diff_ids`);
    if (ids) {
      const bad = ids.find((d) => !isDigest(d));
      if (bad) throw new WorkloadError('InvalidImage', `the configuration of ${where}: rootfs.diff_ids has "${bad.slice(0, 80)}"; only sha256:<64 hex> digests are supported`);
      out.diffIds = ids;
    }
  }
  return out;
}

/** platformMismatch says why an image configured for one platform cannot run on `want`, or undefined when it can. */
export function platformMismatch(parsed: { os?: string; architecture?: string }, want: Platform): string | undefined {
  if (parsed.os && parsed.os !== want.os) return `it is built for the ${parsed.os} operating system, not ${want.os}`;
  if (parsed.architecture && parsed.architecture !== want.architecture) return `it is built for ${parsed.architecture}, not ${want.architecture}`;
  return undefined;
}

/** hostPlatform is the platform this process runs on, in OCI's names (`linux/amd64`). */
export function hostPlatform(): Platform {
  const arch: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  return { os: 'linux', architecture: arch[process.arch] ?? 'amd64' };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

function stringList(v: unknown, what: string): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new WorkloadError('InvalidImage', `${what} is not a list of strings`);
  return v as string[];
}

function optionalString(v: unknown, what: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new WorkloadError('InvalidImage', `${what} is not a string`);
  return v;
}

import { randomBytes } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { stringify as stringifyYaml } from 'yaml';

import { SkiffError } from '../util/errors.js';

/** DataDirError: the data directory cannot be created or written. */
export class DataDirError extends SkiffError {
  constructor(dir: string, cause: unknown) {
    super('data_dir', `cannot use data directory ${dir}: ${(cause as Error).message}; choose another with --data-dir`, { cause });
  }
}

/**
 * ensureDataDir creates the data directory (mode 0700) if needed, and refuses one that another
 * account could have prepared or can change: the directory holds the API token and the store, so a
 * directory owned by someone else, or writable by group or others (say, a `.skiff` left in a shared
 * /tmp), would hand them the platform.
 */
export function ensureDataDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new DataDirError(dir, err);
  }
  const st = statSync(dir);
  if (!st.isDirectory()) throw new DataDirError(dir, new Error('it is not a directory'));
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) {
    throw new DataDirError(dir, new Error(`it belongs to another account (uid ${st.uid}), which could read the token and the store`));
  }
  if (st.mode & 0o022) {
    throw new DataDirError(dir, new Error(`other accounts may write to it (mode ${(st.mode & 0o777).toString(8)}); run chmod 700 ${dir}`));
  }
}

/**
 * ensureToken returns the secret in DATA_DIR/NAME, creating a random one (mode 0600) on first start.
 * The CLI reads `token` from the same place, so a person on the machine needs no set-up.
 */
export function ensureToken(dir: string, name: string): string {
  const path = join(dir, name);
  try {
    const existing = readFileSync(path, 'utf8').trim();
    // A token others can read is no secret: tighten it (the directory is ours, checked above).
    if (existing) {
      if (lstatSync(path).mode & 0o077) chmodSync(path, 0o600);
      return existing;
    }
  } catch {
    // created below
  }
  const token = randomBytes(32).toString('base64url');
  try {
    writeFileSync(path, token + '\n', { mode: 0o600 });
    chmodSync(path, 0o600);
  } catch (err) {
    throw new DataDirError(dir, err);
  }
  return token;
}

/**
 * writeSecretFile writes a secret the cluster decided (the cluster-wide API token, the node token) to
 * DATA_DIR/NAME, mode 0600, replacing the file atomically.
 */
export function writeSecretFile(dir: string, name: string, value: string): void {
  const path = join(dir, name);
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, value + '\n', { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, path);
  } catch (err) {
    throw new DataDirError(dir, err);
  }
}

/**
 * writeKubeconfig writes DATA_DIR/kubeconfig (mode 0600): one cluster, user and context named
 * `skiff`, pointing at the API with the bearer token, so kubectl and client libraries find the
 * server the way they find any cluster; with `caPem`, the root that signed the API's TLS certificate.
 * It is replaced atomically, so a reader never sees half a file.
 */
export function writeKubeconfig(dir: string, server: string, token: string, caPem?: string): void {
  const cluster: Record<string, string> = { server };
  if (caPem) cluster['certificate-authority-data'] = Buffer.from(caPem).toString('base64');
  const text = stringifyYaml({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'skiff', cluster }],
    users: [{ name: 'skiff', user: { token } }],
    contexts: [{ name: 'skiff', context: { cluster: 'skiff', user: 'skiff', namespace: 'default' } }],
    'current-context': 'skiff',
    preferences: {},
  });
  const path = join(dir, 'kubeconfig');
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, text, { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, path);
  } catch (err) {
    throw new DataDirError(dir, err);
  }
}

/** clientUrl is the URL a local client uses for a listen address (a wildcard address is reached on loopback). */
export function clientUrl(host: string, port: number, scheme: 'http' | 'https' = 'http'): string {
  const h = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `${scheme}://${h.includes(':') ? `[${h}]` : h}:${port}`;
}

import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SkiffError } from '../util/errors.js';

/** DataDirError: the data directory cannot be created or written. */
export class DataDirError extends SkiffError {
  constructor(dir: string, cause: unknown) {
    super('data_dir', `cannot use data directory ${dir}: ${(cause as Error).message}; choose another with --data-dir`, { cause });
  }
}

/** ensureDataDir creates the data directory (mode 0700) if needed. */
export function ensureDataDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new DataDirError(dir, err);
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
    if (existing) return existing;
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

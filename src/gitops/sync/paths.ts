import { posix } from 'node:path';

import { SyncPathError } from './errors.js';

/**
 * artifactPath resolves `rel` against the folder `base` inside an artifact (both POSIX, relative to
 * the artifact's root) and returns the result without a leading `./`; `''` is the root. An absolute
 * path, a drive letter, a NUL, or a `..` that climbs above the root is refused: what a repository
 * names must never reach outside its own artifact.
 */
export function artifactPath(base: string, rel: string, what: string): string {
  if (typeof rel !== 'string') throw new SyncPathError(`${what}: must be a path`);
  if (rel.includes('\0')) throw new SyncPathError(`${what}: ${JSON.stringify(rel)} contains a NUL character`);
  const p = rel.replace(/\\/g, '/');
  if (p.startsWith('/') || /^[a-zA-Z]:/.test(p)) throw new SyncPathError(`${what}: ${JSON.stringify(rel)} is absolute; paths are relative to the folder inside the Git repository`);
  const joined = posix.normalize(posix.join(base || '.', p)).replace(/\/+$/, '');
  if (joined === '..' || joined.startsWith('../')) throw new SyncPathError(`${what}: ${JSON.stringify(rel)} leaves the Git repository's artifact`);
  return joined === '.' || joined === '' ? '' : joined;
}

/** inFolder tells whether an artifact path lies inside folder `dir` ('' is the root). */
export function inFolder(path: string, dir: string): boolean {
  return dir === '' || path.startsWith(`${dir}/`);
}

/** directChildren lists the files directly inside `dir` (not in sub-folders), sorted. */
export function directChildren(files: Iterable<string>, dir: string): string[] {
  const out: string[] = [];
  for (const f of files) {
    if (!inFolder(f, dir)) continue;
    const rest = dir === '' ? f : f.slice(dir.length + 1);
    if (!rest.includes('/')) out.push(f);
  }
  return out.sort();
}

/** isFolder tells whether any file lies inside `dir`. */
export function isFolder(files: Iterable<string>, dir: string): boolean {
  for (const f of files) if (inFolder(f, dir)) return true;
  return false;
}

import { E, FILETYPE } from '../wasi/constants.js';

import { addNote, type Entry, type FsBackend,FsError } from './types.js';

/** Symlinks followed in one resolution before ELOOP (Linux allows 40). */
const MAX_SYMLINKS = 32;
/** Longest path accepted, in bytes (PATH_MAX). */
const MAX_PATH = 4096;

/** Resolved is where a path leads: the directory chain holding the final name, and what the name is. */
export interface Resolved {
  /** Directories from the starting directory's chain down to the one holding `name`. */
  parent: unknown[];
  /** The final component; `.` or `..` when the path names a directory itself. */
  name: string;
  /** The final component's entry (after following a final symlink when asked), or null when absent. */
  entry: Entry<unknown> | null;
  trailingSlash: boolean;
}

/** isSelf tells whether a resolution named an existing directory by `.` or `..` (it has no name to create or remove). */
export function isSelf(r: Resolved): boolean {
  return r.name === '.' || r.name === '..';
}

/** dirStackOf returns the directory chain of a resolved directory (for a new directory descriptor). */
export function dirStackOf(r: Resolved): unknown[] {
  return isSelf(r) ? r.parent : [...r.parent, r.entry!.node];
}

/**
 * resolve walks `path` beneath the starting directory the way `openat2(RESOLVE_BENEATH)` does: one
 * component at a time, never above the starting directory (`..` there, absolute paths and absolute
 * symlink targets fail with EPERM), expanding symlinks itself (at most 32, then ELOOP) so a symlink
 * or chain of symlinks can never point the walk outside. Refusals are recorded in `notes` for the log.
 */
export function resolve(backend: FsBackend<unknown>, start: unknown[], path: string, followFinal: boolean, notes?: string[]): Resolved {
  if (path.length === 0) throw new FsError(E.NOENT);
  if (path.includes('\0')) throw new FsError(E.ILSEQ);
  if (path.length > MAX_PATH) throw new FsError(E.NAMETOOLONG);
  const refuse = (why: string): never => {
    if (notes) addNote(notes, `${why} (path "${path.length > 200 ? path.slice(0, 200) + '…' : path}")`);
    throw new FsError(E.PERM);
  };
  if (path.startsWith('/')) refuse('absolute path outside the preopen');
  const floor = start.length;
  const stack = [...start];
  const trailingSlash = path.endsWith('/');
  let comps = path.split('/').filter((c) => c !== '');
  let budget = MAX_SYMLINKS;
  const self = (name: string): Resolved => ({
    parent: stack, name, entry: { node: stack[stack.length - 1], filetype: FILETYPE.DIRECTORY }, trailingSlash,
  });
  if (comps.length === 0) return self('.');
  for (let i = 0; i < comps.length; i++) {
    const c = comps[i]!;
    const last = i === comps.length - 1;
    if (c.length > 255) throw new FsError(E.NAMETOOLONG);
    if (c === '.') {
      if (last) return self('.');
      continue;
    }
    if (c === '..') {
      if (stack.length <= floor) refuse('".." above the directory it is resolved from');
      stack.pop();
      if (last) return self('..');
      continue;
    }
    const entry = backend.lookup(stack[stack.length - 1], c);
    const follow = !last || followFinal || trailingSlash;
    if (!entry) {
      if (last) return { parent: stack, name: c, entry: null, trailingSlash };
      throw new FsError(E.NOENT);
    }
    if (entry.filetype === FILETYPE.SYMBOLIC_LINK && follow) {
      if (--budget < 0) throw new FsError(E.LOOP);
      const target = backend.readlink(entry.node);
      if (target.startsWith('/')) refuse(`symlink "${c}" has an absolute target "${target}"`);
      if (target.length === 0) throw new FsError(E.NOENT);
      const rest = comps.slice(i + 1);
      comps = [...target.split('/').filter((x) => x !== ''), ...rest];
      if (target.endsWith('/') && rest.length === 0) comps.push('.');
      if (comps.length === 0) return self('.');
      i = -1;
      continue;
    }
    if (last) {
      if (trailingSlash && entry.filetype !== FILETYPE.DIRECTORY) throw new FsError(E.NOTDIR);
      return { parent: stack, name: c, entry, trailingSlash };
    }
    if (entry.filetype !== FILETYPE.DIRECTORY) throw new FsError(E.NOTDIR);
    stack.push(entry.node);
  }
  // Only reached when the last components were consumed by `.`/`..` handling above.
  return self('.');
}

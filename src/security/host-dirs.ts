import { closeSync, constants, fstatSync, openSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { isAbsolute, resolve, sep } from 'node:path';

import { SkiffError } from '../util/errors.js';
import { readFully } from '../util/read-fd.js';

/** HostPathError: a host path was refused or could not be opened; the message names the path and the flag, never file contents. */
export class HostPathError extends SkiffError {
  constructor(
    code: 'host_path_outside' | 'host_path_not_regular' | 'host_path_not_found' | 'host_path_unreadable' | 'host_path_too_large' | 'host_dir_invalid',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

/** within tells whether `path` is `root` or below it (both absolute and normalised). */
export function within(path: string, root: string): boolean {
  if (root === sep) return true;
  return path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);
}

const hasProcFd = (() => {
  try {
    return statSync('/proc/self/fd').isDirectory();
  } catch {
    return false;
  }
})();

/**
 * HostDirs is the operator's allow-list of host directories (`skiff up --allow-host-dir DIR`): the only
 * places a Function may mount and the server may read from on a resource's behalf (JWKS files, CA
 * files, module files). Every check is made twice: lexically on the normalised path (so `..` never
 * counts), and on what was actually opened (through /proc/self/fd), so neither a symlink nor a
 * directory swapped during the open leads outside.
 */
export class HostDirs {
  /** Each root as given (normalised) and as its real path, so both spellings are recognised. */
  private readonly roots: Array<{ given: string; real: string }>;

  private constructor(roots: Array<{ given: string; real: string }>) {
    this.roots = roots;
  }

  /** none allows nothing (the default of `skiff up`). */
  static none(): HostDirs {
    return new HostDirs([]);
  }

  /**
   * from validates the operator's directories: each must exist, be a directory and not be `/`.
   * Relative paths resolve against `cwd`.
   */
  static from(dirs: readonly string[], cwd = process.cwd()): HostDirs {
    const roots: Array<{ given: string; real: string }> = [];
    for (const d of dirs) {
      const given = resolve(cwd, d);
      let real: string;
      try {
        real = realpathSync(given);
      } catch {
        throw new HostPathError('host_dir_invalid', `--allow-host-dir ${d}: no such directory; create it first or drop the flag`);
      }
      if (!statSync(real).isDirectory()) throw new HostPathError('host_dir_invalid', `--allow-host-dir ${d}: not a directory`);
      if (real === sep || given === sep) throw new HostPathError('host_dir_invalid', '--allow-host-dir /: the whole host file system cannot be granted; name a directory that holds only what Functions may see');
      roots.push({ given, real });
    }
    return new HostDirs(roots);
  }

  /** with returns an allow-list that also holds `dirs` (the server's own needs, such as the demo's folder). */
  with(dirs: readonly string[]): HostDirs {
    return new HostDirs([...this.roots, ...HostDirs.from(dirs).roots]);
  }

  /** list is the allowed directories as the operator gave them (for messages and docs). */
  list(): string[] {
    return this.roots.map((r) => r.given);
  }

  /**
   * contains tells whether an absolute path lies inside an allowed directory, lexically and, for the
   * part of the path that exists, after resolving symlinks. A relative path is never contained.
   */
  contains(path: string): boolean {
    if (typeof path !== 'string' || !isAbsolute(path) || path.includes('\0')) return false;
    const p = resolve(path);
    if (!this.roots.some((r) => within(p, r.given) || within(p, r.real))) return false;
    const real = realExistingPrefix(p);
    return this.roots.some((r) => within(real, r.real));
  }

  /** refusal explains, for an API error, why `path` (of `field`) was refused. */
  refusal(path: string, field: string): string {
    if (!isAbsolute(path)) return `${field}: "${path}" must be an absolute host path`;
    const allowed = this.roots.length ? `the allowed directories are ${this.roots.map((r) => r.given).join(', ')}` : 'this server allows no host directories';
    return `${field}: ${path} is outside every directory the operator allowed (${allowed}); start skiff up with --allow-host-dir DIR to grant one`;
  }

  /**
   * openFile opens a regular file inside an allowed directory for reading and returns its descriptor.
   * FIFOs, devices and sockets are refused without blocking (the open is non-blocking and the type is
   * checked on the descriptor); the caller closes the descriptor.
   */
  openFile(path: string, field = 'path'): number {
    if (!this.contains(path)) throw new HostPathError('host_path_outside', this.refusal(path, field));
    let fd: number;
    try {
      fd = openSync(resolve(path), constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') throw new HostPathError('host_path_not_found', `${field}: ${path} does not exist`, { cause: err });
      throw new HostPathError('host_path_unreadable', `${field}: ${path} cannot be opened by the Skiff process (${code ?? 'error'})`, { cause: err });
    }
    try {
      const opened = openedPath(fd, path);
      if (!this.roots.some((r) => within(opened, r.real))) throw new HostPathError('host_path_outside', this.refusal(path, field));
      if (!fstatSync(fd).isFile()) throw new HostPathError('host_path_not_regular', `${field}: ${path} is not a regular file`);
      return fd;
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  /** readFile reads a whole regular file inside an allowed directory, refusing files over maxBytes. */
  readFile(path: string, opts: { maxBytes: number; field?: string }): Buffer {
    const field = opts.field ?? 'path';
    const fd = this.openFile(path, field);
    try {
      const size = fstatSync(fd).size;
      if (size > opts.maxBytes) throw new HostPathError('host_path_too_large', `${field}: ${path} is ${size} bytes; the limit is ${opts.maxBytes}`);
      const buf = readFully(fd, size);
      return buf;
    } finally {
      closeSync(fd);
    }
  }
}

/** openedPath is the real path of what a descriptor refers to (Linux: /proc/self/fd; elsewhere the real path of the name). */
function openedPath(fd: number, path: string): string {
  if (hasProcFd) return readlinkSync(`/proc/self/fd/${fd}`);
  return realpathSync(path);
}

/** realExistingPrefix resolves symlinks in the longest existing prefix of p and appends the rest unchanged. */
function realExistingPrefix(p: string): string {
  let head = p;
  const tail: string[] = [];
  for (;;) {
    try {
      const real = realpathSync(head);
      return tail.length ? resolve(real, ...tail.reverse()) : real;
    } catch {
      const i = head.lastIndexOf(sep);
      if (i <= 0) return p;
      tail.push(head.slice(i + 1));
      head = head.slice(0, i);
    }
  }
}

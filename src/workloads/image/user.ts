import { closeSync, constants,lstatSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';

import { WorkloadError } from '../errors.js';

/** The uid and gid a replica's process runs as inside its sandbox or guest. */
export interface ImageUser {
  uid: number;
  gid: number;
}

/** Larger account files than this are not read: a real /etc/passwd is a few KiB. */
const MAX_ACCOUNT_FILE = 1024 * 1024;
const MAX_ID = 0xfffffffe;

/**
 * resolveImageUser turns an image's `config.User` (`uid`, `uid:gid`, `name`, `name:group`, `uid:group`)
 * into numeric ids, reading names from the image's own /etc/passwd and /etc/group as a container engine
 * does. The files are read only when they are regular files in the image (never through a symlink,
 * which could point at the host's), and a name that is not there is an InvalidImage error naming it.
 * An empty User is root, as in Docker.
 */
export function resolveImageUser(rootfs: string, user: string | undefined, where: string): ImageUser {
  const spec = (user ?? '').trim();
  if (spec === '') return { uid: 0, gid: 0 };
  const [u, g, extra] = spec.split(':');
  if (extra !== undefined || !u) throw new WorkloadError('InvalidImage', `${where}: config.User "${spec}" must be USER, USER:GROUP, UID or UID:GID`);
  let uid: number;
  let gid: number | undefined;
  if (isId(u)) {
    uid = Number(u);
    if (g === undefined) {
      // A numeric uid without a group takes the primary group /etc/passwd gives it, else gid 0 (as Docker).
      const primary = accounts(rootfs, 'passwd').find((e) => e[2] === u)?.[3];
      gid = primary !== undefined && isId(primary) ? Number(primary) : 0;
    }
  } else {
    const entry = accounts(rootfs, 'passwd').find((e) => e[0] === u);
    if (!entry || !isId(entry[2] ?? '') || !isId(entry[3] ?? '')) throw new WorkloadError('InvalidImage', `${where}: config.User names user "${u}", which the image's /etc/passwd does not have: use a numeric UID or add the user to the image`);
    uid = Number(entry[2]);
    gid = Number(entry[3]);
  }
  if (g !== undefined) {
    if (isId(g)) gid = Number(g);
    else {
      const entry = accounts(rootfs, 'group').find((e) => e[0] === g);
      if (!entry || !isId(entry[2] ?? '')) throw new WorkloadError('InvalidImage', `${where}: config.User names group "${g}", which the image's /etc/group does not have: use a numeric GID or add the group to the image`);
      gid = Number(entry[2]);
    }
  }
  return { uid, gid: gid ?? 0 };
}

function isId(s: string): boolean {
  return /^\d{1,10}$/.test(s) && Number(s) <= MAX_ID;
}

/** accounts reads /etc/passwd or /etc/group of the image as colon-separated fields, or [] when absent. */
function accounts(rootfs: string, file: 'passwd' | 'group'): string[][] {
  const path = join(rootfs, 'etc', file);
  let fd: number | undefined;
  try {
    const st = lstatSync(join(rootfs, 'etc'));
    if (!st.isDirectory()) return [];
    // O_NOFOLLOW: a symlinked account file (perhaps to the host's) is not read.
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    const buf = Buffer.alloc(MAX_ACCOUNT_FILE);
    const n = readSync(fd, buf, 0, buf.length, 0);
    return buf
      .subarray(0, n)
      .toString('utf8')
      .split('\n')
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => l.split(':'));
  } catch {
    return [];
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

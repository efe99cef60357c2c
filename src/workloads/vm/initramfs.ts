import { createHash } from 'node:crypto';
import { copyFile, lstat, mkdir, readdir, readFile, readlink, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { WorkloadError } from '../errors.js';

import { type CpioEntry, CpioWriter } from './cpio.js';
import { type KernelModule, moduleContent } from './modules.js';

/** Where the guest init and its inputs live inside the initramfs (apart from the image's own files). */
export const GUEST_DIR = '.skiff';
export const GUEST_INIT = `/${GUEST_DIR}/init`;
const CONFIG_MAGIC = 'skiff-vminit-config-v1';

/** ImagePartInputs identify everything the cached part of an initramfs is made of. */
export interface ImagePartInputs {
  /** Image manifest digest; the rootfs directory is content-addressed by it. */
  digest: string;
  /** Host directory of the image's root file system (read, never written). */
  rootfs: string;
  kernelVersion: string;
  /** Host path of the static skiff-vminit binary. */
  initBinary: string;
  modules: KernelModule[];
}

/** GuestConfig is the workload as the guest init reads it from /.skiff/config. */
export interface GuestConfig {
  token: string;
  argv: string[];
  env: Record<string, string>;
  cwd: string;
  port: number;
  controlPort: number;
  /** The image's user: the workload drops to it after the init has set the guest up. */
  user?: { uid: number; gid: number };
}

/**
 * InitramfsCache builds the image part of a VM's initramfs (the image's files, the init, the kernel
 * modules) once per (image digest, kernel version, init binary, module files) and keeps it under
 * `dir`, so further replicas and restarts only append their small per-replica config archive. The
 * kernel unpacks concatenated cpio archives in order, so the config needs no rebuild of the image.
 */
export class InitramfsCache {
  private readonly building = new Map<string, Promise<string>>();

  constructor(private readonly dir: string) {}

  /** imagePart returns the path of the cached archive, building it when absent. */
  async imagePart(inputs: ImagePartInputs): Promise<{ path: string; cached: boolean }> {
    const key = await cacheKey(inputs);
    const path = join(this.dir, `initramfs-${key}.cpio`);
    if (await stat(path).then((s) => s.isFile(), () => false)) return { path, cached: true };
    let pending = this.building.get(key);
    if (!pending) {
      pending = this.build(inputs, path).finally(() => this.building.delete(key));
      this.building.set(key, pending);
    }
    return { path: await pending, cached: false };
  }

  /**
   * replicaInitrd writes `out`: the cached image part followed by an archive with the replica's
   * /.skiff/config. The file holds the workload's environment: it is created 0600.
   */
  async replicaInitrd(imagePart: string, config: GuestConfig, out: string): Promise<void> {
    const tail = out + '.config';
    const w = await CpioWriter.create(tail);
    try {
      await w.file({ name: `${GUEST_DIR}/config`, mode: 0o400 }, encodeConfig(config));
      await w.close();
      await copyFile(imagePart, out);
      await writeFile(out, await readFile(tail), { flag: 'a' });
    } catch (err) {
      await w.abort();
      await rm(out, { force: true });
      throw err;
    } finally {
      await rm(tail, { force: true });
    }
  }

  private async build(inputs: ImagePartInputs, path: string): Promise<string> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
    const w = await CpioWriter.create(tmp, 0o600);
    try {
      await addTree(w, inputs.rootfs, '');
      // After the image's files, so that these win over anything of the same name in the image.
      for (const d of ['dev', 'proc', 'sys', 'tmp']) await w.directory({ name: d, mode: d === 'tmp' ? 0o1777 : 0o755 });
      // The kernel opens /dev/console for init before /dev is mounted.
      await w.charDevice({ name: 'dev/console', mode: 0o600, rdevMajor: 5, rdevMinor: 1 });
      await w.directory({ name: GUEST_DIR, mode: 0o700 });
      await w.file({ name: `${GUEST_DIR}/init`, mode: 0o700 }, await readFile(inputs.initBinary));
      await w.directory({ name: `${GUEST_DIR}/modules`, mode: 0o700 });
      let i = 0;
      for (const m of inputs.modules) {
        const { data, suffix } = await moduleContent(m);
        await w.file({ name: `${GUEST_DIR}/modules/${String(i++).padStart(2, '0')}-${m.name}${suffix}`, mode: 0o600 }, data);
      }
      await w.close();
      await rename(tmp, path);
      return path;
    } catch (err) {
      await w.abort();
      await rm(tmp, { force: true });
      if (err instanceof WorkloadError) throw err;
      throw new WorkloadError('StartFailed', `building the VM initramfs of image ${inputs.digest} from ${inputs.rootfs} failed: ${(err as Error).message}`, err);
    }
  }
}

async function cacheKey(inputs: ImagePartInputs): Promise<string> {
  const init = createHash('sha256').update(await readFile(inputs.initBinary)).digest('hex');
  const h = createHash('sha256').update(
    JSON.stringify({
      v: 1,
      digest: inputs.digest,
      rootfs: inputs.rootfs,
      kernel: inputs.kernelVersion,
      init,
      modules: inputs.modules.map((m) => [m.path, m.size, m.mtimeMs]),
    }),
  );
  return h.digest('hex').slice(0, 32);
}

/** addTree archives the host directory `dir` as `prefix`, in name order, without following symlinks. */
async function addTree(w: CpioWriter, dir: string, prefix: string): Promise<void> {
  const names = (await readdir(dir)).sort();
  for (const n of names) {
    const host = join(dir, n);
    const name = prefix ? `${prefix}/${n}` : n;
    const st = await lstat(host);
    const e: CpioEntry = { name, mode: st.mode, uid: st.uid, gid: st.gid, mtime: Math.floor(st.mtimeMs / 1000) };
    if (st.isDirectory()) {
      await w.directory(e);
      await addTree(w, host, name);
    } else if (st.isFile()) {
      await w.fileFrom(e, host, st.size);
    } else if (st.isSymbolicLink()) {
      await w.symlink(e, await readlink(host));
    }
    // Sockets, FIFOs and device nodes are not part of a prepared image's root file system.
  }
}

/** encodeConfig writes NUL-terminated strings: the magic, then KEY, VALUE pairs; skiff-vminit.c reads it. */
export function encodeConfig(c: GuestConfig): Buffer {
  const items: string[] = [CONFIG_MAGIC, 'token', c.token, 'cwd', c.cwd || '/', 'port', String(c.port), 'control-port', String(c.controlPort)];
  if (c.user && (c.user.uid !== 0 || c.user.gid !== 0)) items.push('user', `${c.user.uid}:${c.user.gid}`);
  for (const a of c.argv) items.push('arg', a);
  for (const [k, v] of Object.entries(c.env)) {
    if (!k || k.includes('=')) throw new WorkloadError('StartFailed', `environment variable name ${JSON.stringify(k)} is empty or contains '=': rename it`);
    items.push('env', `${k}=${v}`);
  }
  for (const s of items) {
    if (s.includes('\0')) throw new WorkloadError('StartFailed', `the workload's argv, env or working directory contains a NUL byte (${JSON.stringify(s.slice(0, 40))}): remove it`);
  }
  return Buffer.from(items.map((s) => s + '\0').join(''));
}

import { execFile } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';

import { WorkloadError } from '../errors.js';

const execFileP = promisify(execFile);
const gunzipP = promisify(gunzip);

/** The guest needs these to reach QEMU's virtio-net device on the microvm machine; dependencies come from modules.dep. */
export const GUEST_MODULES = ['virtio_mmio', 'virtio_net'];

/** KernelModule is one module file to load in the guest, in load order. */
export interface KernelModule {
  /** Module name with `_` (virtio_net). */
  name: string;
  /** Absolute host path of the .ko / .ko.xz / .ko.zst / .ko.gz file. */
  path: string;
  size: number;
  mtimeMs: number;
}

const MODULE_SUFFIX = /\.ko(\.xz|\.zst|\.gz)?$/;

function moduleName(path: string): string {
  return basename(path).replace(MODULE_SUFFIX, '').replace(/-/g, '_');
}

/**
 * resolveModules reads `modules.dep` (and `modules.builtin`) under `modulesDir` and returns the files
 * to load so that each of `wanted` works, dependencies before dependents, each once; a module built
 * into the kernel needs no file. It throws HandlerUnavailable naming the module when the kernel has
 * neither.
 */
export async function resolveModules(modulesDir: string, wanted: string[] = GUEST_MODULES): Promise<KernelModule[]> {
  let depText: string;
  try {
    depText = await readFile(join(modulesDir, 'modules.dep'), 'utf8');
  } catch (err) {
    throw new WorkloadError('HandlerUnavailable', `cannot read ${join(modulesDir, 'modules.dep')}: install the modules of the guest kernel (linux-image-cloud-amd64) or pass the kernel that matches them`, err);
  }
  const builtinText = await readFile(join(modulesDir, 'modules.builtin'), 'utf8').catch(() => '');
  const builtin = new Set(builtinText.split('\n').filter(Boolean).map(moduleName));
  const deps = new Map<string, { path: string; deps: string[] }>();
  for (const line of depText.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const path = line.slice(0, colon).trim();
    const list = line.slice(colon + 1).trim().split(/\s+/).filter(Boolean);
    deps.set(moduleName(path), { path, deps: list.map(moduleName) });
  }
  const order: string[] = [];
  const seen = new Set<string>();
  const visit = (name: string, chain: string[]): void => {
    if (seen.has(name)) return;
    seen.add(name);
    const entry = deps.get(name);
    if (!entry) {
      if (builtin.has(name)) return;
      throw new WorkloadError('HandlerUnavailable', `the guest kernel's modules (${modulesDir}) have no ${name}${chain.length ? ` (needed by ${chain.join(' <- ')})` : ''}: use a kernel with virtio-mmio and virtio-net, such as linux-image-cloud-amd64`);
    }
    // modules.dep lists a module's dependencies deepest last, as modprobe loads them in reverse.
    for (const d of [...entry.deps].reverse()) visit(d, [name, ...chain]);
    order.push(name);
  };
  for (const w of wanted) visit(w.replace(/-/g, '_'), []);
  return Promise.all(
    order.map(async (name) => {
      const path = join(modulesDir, deps.get(name)!.path);
      const st = await stat(path).catch((err: unknown) => {
        throw new WorkloadError('HandlerUnavailable', `module ${name} listed in ${modulesDir}/modules.dep is missing at ${path}: reinstall the kernel package`, err);
      });
      return { name, path, size: st.size, mtimeMs: st.mtimeMs };
    }),
  );
}

/**
 * moduleContent is the module file as the guest loads it: decompressed on the host when Node or a
 * host tool can (xz, zstd), so the guest kernel needs no in-kernel decompression; otherwise the
 * compressed bytes with `compressed: true`, which the guest init passes as MODULE_INIT_COMPRESSED_FILE.
 */
export async function moduleContent(m: KernelModule): Promise<{ data: Buffer; suffix: string }> {
  const raw = await readFile(m.path);
  const ext = m.path.match(MODULE_SUFFIX)?.[1];
  if (!ext) return { data: raw, suffix: '.ko' };
  if (ext === '.gz') return { data: await gunzipP(raw), suffix: '.ko' };
  const tool = ext === '.xz' ? 'xz' : 'zstd';
  try {
    const { stdout } = await execFileP(tool, ['-dc', m.path], { encoding: 'buffer', maxBuffer: 256 << 20 });
    return { data: stdout, suffix: '.ko' };
  } catch {
    return { data: raw, suffix: `.ko${ext}` };
  }
}

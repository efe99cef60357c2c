import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { access, open, readdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/** What the handler learns about the host once: QEMU's abilities, the kernel, KVM. */
export interface HostProbe {
  /** Why the handler cannot run, as what to do; undefined when it can. */
  problem?: string;
  qemu: string;
  kernel: string;
  kernelVersion: string;
  modulesDir: string;
  kvm: boolean;
  sandbox: boolean;
  /** TCG only: the guest's TSC runs at the host's rate; telling the guest avoids a calibration that can hang under load. */
  tscKhz?: number;
  hz: number;
}

const INSTALL = 'install qemu-system-x86 and linux-image-cloud-amd64';

/** newestCloudKernel is the newest /boot/vmlinuz-*-cloud-amd64, or undefined. */
export async function newestCloudKernel(boot = '/boot'): Promise<string | undefined> {
  const names = await readdir(boot).catch(() => [] as string[]);
  const kernels = names.filter((n) => /^vmlinuz-.+-cloud-amd64$/.test(n));
  kernels.sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  return kernels.length ? join(boot, kernels[kernels.length - 1]!) : undefined;
}

/** kvmUsable says whether /dev/kvm exists and this process may open it read-write. */
export async function kvmUsable(): Promise<boolean> {
  try {
    const fh = await open('/dev/kvm', constants.O_RDWR);
    await fh.close();
    return true;
  } catch {
    return false;
  }
}

async function hostTscKhz(): Promise<number | undefined> {
  const text = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const mhz = text.match(/^cpu MHz\s*:\s*([\d.]+)/m);
  return mhz ? Math.round(Number(mhz[1]) * 1000) : undefined;
}

async function kernelHz(version: string): Promise<number> {
  const config = await readFile(`/boot/config-${version}`, 'utf8').catch(() => '');
  return Number(config.match(/^CONFIG_HZ=(\d+)$/m)?.[1] ?? 250);
}

/**
 * probeHost checks QEMU (microvm, -sandbox), the guest kernel and its modules directory.
 * `kernel` and `modulesDir` override the defaults (newest cloud kernel under /boot, /lib/modules/VERSION).
 */
export async function probeHost(opts: { qemu: string; kernel?: string; modulesDir?: string }): Promise<HostProbe> {
  const kernel = opts.kernel ?? (await newestCloudKernel()) ?? '';
  const kernelVersion = basename(kernel).replace(/^vmlinuz-/, '');
  const modulesDir = opts.modulesDir ?? join('/lib/modules', kernelVersion);
  const base: HostProbe = { qemu: opts.qemu, kernel, kernelVersion, modulesDir, kvm: false, sandbox: false, hz: 250 };
  let help: string;
  let machines: string;
  try {
    help = (await execFileP(opts.qemu, ['-help'], { timeout: 10_000 })).stdout;
    machines = (await execFileP(opts.qemu, ['-M', 'help'], { timeout: 10_000 })).stdout;
  } catch {
    return { ...base, problem: `${INSTALL} (${opts.qemu} does not run)` };
  }
  if (!/^microvm\b/m.test(machines)) return { ...base, problem: `${INSTALL} (${opts.qemu} has no microvm machine type: use QEMU 4.2 or newer)` };
  if (!kernel) return { ...base, problem: `${INSTALL} (no /boot/vmlinuz-*-cloud-amd64)` };
  try {
    await access(kernel, constants.R_OK);
  } catch {
    return { ...base, problem: `${INSTALL} (cannot read the kernel ${kernel})` };
  }
  try {
    await access(join(modulesDir, 'modules.dep'), constants.R_OK);
  } catch {
    return { ...base, problem: `${INSTALL} (no ${modulesDir}/modules.dep for kernel ${kernelVersion})` };
  }
  const kvm = (await kvmUsable()) && (await kvmBoots(opts.qemu));
  return {
    ...base,
    kvm,
    sandbox: /^-sandbox /m.test(help),
    tscKhz: kvm ? undefined : await hostTscKhz(),
    hz: await kernelHz(kernelVersion),
  };
}

/**
 * kvmBoots says whether QEMU can set up a KVM vCPU with `-cpu host` here: QEMU starts paused (-S),
 * its monitor on stdin is told to quit, and only an exit code of 0 means the vCPUs were created and
 * reset. Some hosts (nested virtualization under certain hypervisors) expose a usable /dev/kvm yet
 * refuse MSRs QEMU must set, so QEMU aborts there, and guests that do start hang in early boot; the
 * handler then runs guests under TCG, slower but correct.
 */
export async function kvmBoots(qemu: string): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const child = execFile(qemu, ['-accel', 'kvm', '-cpu', 'host', '-M', 'microvm', '-nodefaults', '-no-user-config', '-nographic', '-display', 'none', '-S', '-m', '64', '-monitor', 'stdio'], { timeout: 10_000 }, (err) => resolve(!err));
    child.stdin?.end('quit\n');
  });
}

/** freeLoopbackPort asks the kernel for an unused TCP port on 127.0.0.1 (QEMU binds it right after). */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (addr && typeof addr === 'object' ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** userIds is the uid and gid /etc/passwd gives `user`, or undefined. */
export async function userIds(user: string): Promise<{ uid: number; gid: number } | undefined> {
  const text = await readFile('/etc/passwd', 'utf8').catch(() => '');
  const f = text.split('\n').find((l) => l.startsWith(`${user}:`))?.split(':');
  return f && f.length > 3 ? { uid: Number(f[2]), gid: Number(f[3]) } : undefined;
}

/** groupId is the gid /etc/group gives `group`, or undefined. */
export async function groupId(group: string): Promise<number | undefined> {
  const text = await readFile('/etc/group', 'utf8').catch(() => '');
  const f = text.split('\n').find((l) => l.startsWith(`${group}:`))?.split(':');
  return f && f.length > 2 ? Number(f[2]) : undefined;
}

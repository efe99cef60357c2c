import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { chown, mkdir, open, rm, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';

import type { Logger } from 'pino';

import { WorkloadError } from '../errors.js';
import { nativeBinary } from '../native.js';
import type { AppliedIsolation, Replica, ReplicaSpec, RuntimeHandler } from '../types.js';

import { ConsoleWatcher } from './console.js';
import { freeLoopbackPort, groupId, type HostProbe, probeHost, userIds } from './host.js';
import { GUEST_INIT, InitramfsCache } from './initramfs.js';
import { bootableKernel } from './kernel.js';
import { type KernelModule, resolveModules } from './modules.js';
import { QemuReplica } from './qemu-replica.js';

const MiB = 1024 * 1024;
/** The kernel, the unpacked initramfs and the archive itself (until it is freed) share guest RAM. */
const KERNEL_HEADROOM_MIB = 96;
/** TCG on a loaded host can take several times its usual few seconds. */
const BOOT_TIMEOUT_MS = 60_000;
const PORT_ATTEMPTS = 3;

/** QemuHandlerOptions configure the `qemu` runtime-class handler. */
export interface QemuHandlerOptions {
  /** Directory for cached initramfs image parts (created when missing). */
  cacheDir: string;
  logger?: Logger;
  /** QEMU binary (default `qemu-system-x86_64` on PATH). */
  qemu?: string;
  /** Guest kernel (default: the newest /boot/vmlinuz-*-cloud-amd64). */
  kernel?: string;
  /** The kernel's modules (default /lib/modules/VERSION, VERSION from the kernel's file name). */
  modulesDir?: string;
  /** Guest RAM when the spec sets no memory (default 256). */
  memoryMiB?: number;
  /** The guest's init (default `nativeBinary('skiff-vminit')`); the host-side launcher is always skiff-vminit. */
  initBinary?: string;
  /**
   * Boot an uncompressed vmlinux unpacked from the kernel into the cache, through PVH (default true):
   * no real-mode setup and no in-guest decompression. Falls back to the kernel as is when it cannot.
   */
  pvh?: boolean;
  /** How long start() waits for the guest to run the workload (default 60 000 ms). */
  bootTimeoutMs?: number;
  /** `kvm`, `tcg`, or `auto` (KVM when /dev/kvm is usable; the default). */
  accel?: 'auto' | 'kvm' | 'tcg';
}

/**
 * QemuHandler runs each replica as a QEMU `microvm` booting a real Linux kernel with an initramfs
 * made of the image's root file system and skiff-vminit, reached over a loopback hostfwd port of
 * QEMU's restricted user-mode network.
 *
 * @example
 * const qemu = new QemuHandler({ cacheDir: '/var/lib/skiff/vm' });
 * if (!(await qemu.unavailable())) {
 *   const replica = await qemu.start(spec);
 *   // replica.endpoint = { kind: 'tcp', host: '127.0.0.1', port: 4xxxx }
 *   await replica.stop(5_000);
 * }
 */
export class QemuHandler implements RuntimeHandler {
  readonly name = 'qemu';
  private probe?: Promise<HostProbe>;
  private modules?: Promise<KernelModule[]>;
  private bootKernel?: Promise<{ path: string; pvh: boolean }>;
  private readonly cache: InitramfsCache;

  constructor(private readonly opts: QemuHandlerOptions) {
    this.cache = new InitramfsCache(join(opts.cacheDir, 'vm'));
  }

  async unavailable(): Promise<string | undefined> {
    if (!this.initBinary() || !nativeBinary('skiff-vminit')) return 'build the native helpers: npm run build (needs a C compiler with static glibc)';
    const host = await this.host();
    if (host.problem) return host.problem;
    try {
      await this.kernelModules(host);
    } catch (err) {
      return (err as Error).message;
    }
    return undefined;
  }

  async start(spec: ReplicaSpec): Promise<Replica> {
    const why = await this.unavailable();
    if (why) throw new WorkloadError('HandlerUnavailable', why);
    if (!Number.isInteger(spec.port) || spec.port < 1 || spec.port > 65535) throw new WorkloadError('StartFailed', `replica ${spec.id}: port ${spec.port} is not a TCP port (1-65535)`);
    if (!spec.argv.length) throw new WorkloadError('StartFailed', `replica ${spec.id}: image ${spec.image.reference} has no command: set command in the Function`);
    const host = await this.host();
    const t0 = Date.now();
    const part = await this.cache.imagePart({
      digest: spec.image.digest,
      rootfs: spec.image.rootfs,
      kernelVersion: host.kernelVersion,
      initBinary: this.initBinary()!,
      modules: await this.kernelModules(host),
    });
    const memoryMiB = Math.ceil((spec.resources.memoryBytes ?? (this.opts.memoryMiB ?? 256) * MiB) / MiB);
    const { size } = await stat(part.path);
    const needMiB = Math.ceil((2 * size) / MiB) + KERNEL_HEADROOM_MIB;
    if (memoryMiB < needMiB) throw new WorkloadError('StartFailed', `replica ${spec.id}: image ${spec.image.reference} makes a ${Math.ceil(size / MiB)} MiB initramfs, which needs at least ${needMiB} MiB of VM memory; resources.memory gives ${memoryMiB} MiB: raise it`);
    const vcpus = Math.min(Math.max(1, Math.ceil((spec.resources.cpuMillis ?? 1000) / 1000)), availableParallelism());

    const kernel = await this.kernelImage(host);
    await mkdir(spec.dir, { recursive: true, mode: 0o700 });
    const token = randomBytes(8).toString('hex');
    const controlPort = spec.port === 1023 ? 1024 : 1023;
    const initrd = join(spec.dir, 'vm-initrd.cpio');
    await this.cache.replicaInitrd(part.path, { token, argv: spec.argv, env: spec.env, cwd: spec.workingDir, port: spec.port, controlPort, user: spec.user }, initrd);
    const prepMs = Date.now() - t0;

    let lastError = '';
    try {
      for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
        const hostPort = await freeLoopbackPort();
        let controlHostPort = await freeLoopbackPort();
        while (controlHostPort === hostPort) controlHostPort = await freeLoopbackPort();
        const launched = await this.launch(spec, host, { kernel: kernel.path, initrd, token, memoryMiB, vcpus, hostPort, controlHostPort, controlPort });
        if (launched instanceof QemuReplica) {
          this.opts.logger?.debug({ replica: spec.id, initramfsCached: part.cached, prepMs, bootMs: Date.now() - t0 - prepMs }, 'vm replica started');
          return launched;
        }
        lastError = launched;
        if (!/host forwarding|Address already in use/i.test(launched)) break;
      }
    } catch (err) {
      await rm(initrd, { force: true });
      throw err;
    }
    await rm(initrd, { force: true });
    throw new WorkloadError('StartFailed', `replica ${spec.id}: QEMU did not start: ${lastError}`);
  }

  /**
   * launch spawns QEMU and waits until the guest runs the workload. A string is why QEMU itself did
   * not start (the caller may retry with other ports); a guest that fails to boot throws.
   */
  private async launch(
    spec: ReplicaSpec,
    host: HostProbe,
    p: { kernel: string; initrd: string; token: string; memoryMiB: number; vcpus: number; hostPort: number; controlHostPort: number; controlPort: number },
  ): Promise<QemuReplica | string> {
    const user = await this.qemuUser(host);
    // QEMU gets the kernel and initrd as open descriptors: as `nobody` it could not walk to them.
    const kernelFh = await open(p.kernel, 'r');
    const initrdFh = await open(p.initrd, 'r');
    let child: ChildProcess;
    let spawned: Promise<true | string>;
    try {
      if (user) await chown(p.initrd, user.uid, user.gid);
      const args = this.qemuArgs(spec, host, p);
      const launcher = ['--pdeathsig', String(process.pid), ...(user ? ['--user', user.spec] : []), host.qemu, ...args];
      child = spawn(nativeBinary('skiff-vminit')!, launcher, {
        stdio: ['ignore', 'pipe', 'pipe', kernelFh.fd, initrdFh.fd],
        // Its own process group: a terminal's Ctrl-C reaches Skiff, which stops replicas in order.
        detached: true,
      });
      const c = child;
      spawned = new Promise((resolve) => {
        c.once('spawn', () => resolve(true));
        c.once('error', (err) => resolve(`cannot run ${host.qemu}: ${err.message}`));
      });
    } finally {
      await kernelFh.close();
      await initrdFh.close();
    }
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString('utf8')).slice(-4096);
      for (const l of d.toString('utf8').split('\n')) if (l.trim()) spec.log('stderr', l);
    });
    let onStarted: () => void = () => undefined;
    const started = new Promise<void>((resolve) => (onStarted = resolve));
    const watcher = new ConsoleWatcher(p.token, (line) => spec.log('console', line), () => {
      this.opts.logger?.debug({ replica: spec.id, bootMs: watcher.state.startedAfterMs }, 'vm workload started');
      onStarted();
    });
    child.stdout!.on('data', (d: Buffer) => watcher.feed(d));
    const ok = await spawned;
    if (ok !== true) return ok;
    const isolation = this.isolation(host, p.memoryMiB, p.vcpus);
    const files: string[] = [];
    const replica = new QemuReplica({
      child,
      console: watcher,
      endpoint: { kind: 'tcp', host: '127.0.0.1', port: p.hostPort },
      isolation,
      controlHostPort: p.controlHostPort,
      // Owned by the replica only once it runs: a launch that failed leaves it for the next attempt.
      files,
      stderrTail: () => stderr.trim().split('\n').slice(-3).join(' | '),
    });
    // Resolve once the guest's init has the network up and the workload running: a connection to
    // the forwarded port before that is held by QEMU's slirp, which retries the guest with TCP
    // backoff (seconds), whereas afterwards a closed port is refused at once.
    const outcome = await new Promise<'started' | 'exited' | 'timeout'>((resolve) => {
      const timer = setTimeout(() => resolve('timeout'), this.opts.bootTimeoutMs ?? BOOT_TIMEOUT_MS);
      started.then(() => (clearTimeout(timer), resolve('started')), () => undefined);
      void replica.exited.then(() => (clearTimeout(timer), resolve('exited')));
    });
    if (outcome === 'timeout') {
      const exit = await replica.stop(0);
      throw new WorkloadError('StartFailed', `replica ${spec.id}: the VM's init did not start the workload within ${this.opts.bootTimeoutMs ?? BOOT_TIMEOUT_MS} ms (${exit.message})`);
    }
    if (outcome === 'exited') {
      const exit = await replica.exited;
      // Before the kernel ran anything, QEMU itself failed (a port clash is retried by the caller).
      if (exit.reason === 'Error' && !watcher.state.tail.length) return stderr.trim() || exit.message;
      throw new WorkloadError(exit.reason === 'KernelPanic' ? 'KernelPanic' : 'StartFailed', `replica ${spec.id}: the VM ended before its workload started: ${exit.message}`);
    }
    files.push(p.initrd);
    this.readProcIsolation(replica.pid, isolation);
    return replica;
  }

  private qemuArgs(spec: ReplicaSpec, host: HostProbe, p: { kernel: string; initrd: string; memoryMiB: number; vcpus: number; hostPort: number; controlHostPort: number; controlPort: number }): string[] {
    const kvm = this.useKvm(host);
    // init= as well: should rdinit fail, the kernel would otherwise try the image's /sbin/init or /bin/sh as PID 1.
    const append = ['console=ttyS0', 'panic=-1', 'quiet', `rdinit=${GUEST_INIT}`, `init=${GUEST_INIT}`];
    // The guest runs one workload as its root: in-guest hardening guards nothing, and the crypto
    // self-tests alone are the slowest part of a TCG boot (see README).
    append.push('cryptomgr.notests', 'mitigations=off', 'audit=0', 'apparmor=0', '8250.nr_uarts=1', 'random.trust_cpu=on');
    if (!kvm && host.tscKhz) append.push(`tsc_early_khz=${host.tscKhz}`, `lpj=${Math.round((host.tscKhz * 1000) / host.hz)}`, 'tsc=reliable');
    const fwd = [`hostfwd=tcp:127.0.0.1:${p.hostPort}-10.0.2.15:${spec.port}`, `hostfwd=tcp:127.0.0.1:${p.controlHostPort}-10.0.2.15:${p.controlPort}`];
    const args = [
      '-M', 'microvm,x-option-roms=off,isa-serial=on',
      '-accel', kvm ? 'kvm' : 'tcg',
      '-cpu', kvm ? 'host' : 'max',
      '-m', String(p.memoryMiB),
      '-smp', String(p.vcpus),
      '-nodefaults', '-no-user-config', '-nographic', '-no-reboot',
      '-serial', 'stdio',
      '-kernel', '/proc/self/fd/3',
      '-initrd', '/proc/self/fd/4',
      '-append', append.join(' '),
      '-netdev', `user,id=n0,restrict=on,${fwd.join(',')}`,
      '-device', 'virtio-net-device,netdev=n0',
    ];
    if (host.sandbox) args.push('-sandbox', 'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny');
    return args;
  }

  /**
   * qemuUser is who QEMU runs as when Skiff is root: `nobody`, plus the kvm group for /dev/kvm.
   * The launcher drops to it before exec (QEMU's own -runas would clear the parent-death signal).
   */
  private async qemuUser(host: HostProbe): Promise<{ uid: number; gid: number; spec: string } | undefined> {
    if (process.getuid?.() !== 0) return undefined;
    const ids = await userIds('nobody');
    if (!ids) return undefined;
    const kvmGid = this.useKvm(host) ? await groupId('kvm') : undefined;
    return { ...ids, spec: [ids.uid, ids.gid, ...(kvmGid !== undefined ? [kvmGid] : [])].join(':') };
  }

  private useKvm(host: HostProbe): boolean {
    return this.opts.accel === 'kvm' || (this.opts.accel !== 'tcg' && host.kvm);
  }

  private isolation(host: HostProbe, memoryMiB: number, vcpus: number): AppliedIsolation {
    return {
      handler: this.name,
      namespaces: [],
      capabilities: 'none (guest kernel)',
      noNewPrivs: false,
      seccomp: host.sandbox ? 'QEMU sandbox' : 'none (QEMU built without -sandbox)',
      limits: 'vm',
      network: 'qemu user-mode, restricted, hostfwd',
      rootfs: 'initramfs copy of the image in guest RAM',
      machine: `microvm, ${this.useKvm(host) ? 'KVM' : 'TCG'}, ${memoryMiB} MiB${vcpus > 1 ? `, ${vcpus} vCPUs` : ''}`,
    };
  }

  /** readProcIsolation replaces what the handler asked for with what QEMU's process actually has. */
  private readProcIsolation(pid: number, iso: AppliedIsolation): void {
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      iso.noNewPrivs = /^NoNewPrivs:\s+1$/m.test(status);
      if (!/^Seccomp:\s+2$/m.test(status)) iso.seccomp = 'none (QEMU sandbox not active)';
    } catch {
      // the process is already gone; its exit says why
    }
  }

  private host(): Promise<HostProbe> {
    this.probe ??= probeHost({ qemu: this.opts.qemu ?? 'qemu-system-x86_64', kernel: this.opts.kernel, modulesDir: this.opts.modulesDir });
    return this.probe;
  }

  private kernelImage(host: HostProbe): Promise<{ path: string; pvh: boolean }> {
    if (this.opts.pvh === false) return Promise.resolve({ path: host.kernel, pvh: false });
    this.bootKernel ??= bootableKernel(host.kernel, join(this.opts.cacheDir, 'vm')).catch((err: unknown) => {
      this.opts.logger?.warn({ err, kernel: host.kernel }, 'cannot unpack the kernel for a PVH boot; booting it as is');
      return { path: host.kernel, pvh: false };
    });
    return this.bootKernel;
  }

  private kernelModules(host: HostProbe): Promise<KernelModule[]> {
    this.modules ??= resolveModules(host.modulesDir);
    return this.modules;
  }

  private initBinary(): string | undefined {
    return this.opts.initBinary ?? nativeBinary('skiff-vminit');
  }
}

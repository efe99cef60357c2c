/**
 * The bare peers of the runtime-classes bench: the example image's busybox httpd started by hand with
 * bubblewrap, runc and QEMU, without Skiff around them, timed from spawning the tool to the first
 * HTTP answer. Each returns its samples, or why it cannot run on this host.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';

import { NewcArchive } from './cpio.js';

/** PeerOutcome is a peer's cold-start samples (ms) with what was run, or why it was left out. */
export type PeerOutcome = { samplesMs: number[]; what: string } | { skipped: string };

/** What every peer needs: the image's unpacked root, a scratch directory, how many runs. */
export interface PeerContext {
  rootfs: string;
  dir: string;
  runs: number;
  /** Called with each spawned process, so the bench can check it is gone at the end. */
  track(child: ChildProcess): void;
}

/** What the example's answer starts with (its CGI script). */
const ANSWER = 'hello from a container';
/** Inside the sandbox: start httpd, poll it with busybox wget until it answers, print the answer, stop. */
const IN_SANDBOX = `httpd -f -p 8080 -h /www & until wget -q -O- http://127.0.0.1:8080/cgi-bin/hello; do /bin/busybox usleep 2000; done; kill $!`;
const RUN_TIMEOUT_MS = 30_000;

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

/**
 * timeRun spawns a command in its own process group and resolves with the milliseconds until
 * `watch` (called with its stdout so far on every chunk) calls `answered`; the group is then killed.
 * It rejects when the command ends or the time runs out first.
 */
function timeRun(cmd: string, args: string[], ctx: PeerContext, watch: (stdout: string, child: ChildProcess, answered: () => void) => void): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    ctx.track(child);
    let out = '';
    let err = '';
    let done = false;
    const finish = (e: Error | undefined, ms?: number) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      killGroup(child);
      if (e) reject(e);
      else resolve(ms!);
    };
    const answered = () => finish(undefined, performance.now() - t0);
    const timer = setTimeout(() => finish(new Error(`${cmd}: no answer within ${RUN_TIMEOUT_MS} ms; stderr: ${err.slice(-400)}`)), RUN_TIMEOUT_MS);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString('latin1');
      watch(out, child, answered);
    });
    child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString('latin1')).slice(-4000)));
    child.once('error', (e) => finish(e));
    child.once('exit', (code, sig) => finish(new Error(`${cmd} ended (${sig ?? `exit ${code}`}) before answering; stderr: ${err.slice(-400)}`)));
  });
}

/** printsAnswer is the watch of a peer whose sandbox prints the HTTP answer itself. */
const printsAnswer = (stdout: string, _child: ChildProcess, answered: () => void) => {
  if (stdout.includes(ANSWER)) answered();
};

/** killGroup SIGKILLs a detached child's process group (it may already be gone). */
export function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** bwrapPeer: `bwrap` as root with the namespaces Skiff's bwrap handler unshares and loopback-only networking. */
export async function bwrapPeer(ctx: PeerContext): Promise<PeerOutcome> {
  if (!has('bwrap')) return { skipped: 'bwrap is not installed (apt-get install bubblewrap)' };
  const args = [
    '--unshare-user', '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-net', '--unshare-cgroup',
    '--die-with-parent', '--new-session', '--cap-drop', 'ALL',
    '--ro-bind', ctx.rootfs, '/', '--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp',
    '--chdir', '/www', '--clearenv', '--setenv', 'PATH', '/bin',
    '/bin/busybox', 'sh', '-c', IN_SANDBOX,
  ];
  const samplesMs: number[] = [];
  for (let i = 0; i < ctx.runs; i++) samplesMs.push(await timeRun('bwrap', args, ctx, printsAnswer));
  return { samplesMs, what: 'bwrap 0.8 run by hand (user, pid, ipc, uts, net, cgroup, mount namespaces; no capabilities; read-only image root), busybox httpd answering busybox wget inside its own loopback' };
}

/** runcPeer: `runc run` of an OCI bundle over a copy of the same root, with a user namespace (root inside = host 65534) as Skiff's runc handler uses. */
export async function runcPeer(ctx: PeerContext): Promise<PeerOutcome> {
  if (!has('runc')) return { skipped: 'runc is not installed (apt-get install runc)' };
  if (process.getuid?.() !== 0) return { skipped: 'runc with a user namespace needs root here' };
  const bundle = join(ctx.dir, 'runc-bundle');
  const state = join(ctx.dir, 'runc-state');
  mkdirSync(bundle, { recursive: true });
  // The container's root (host uid 65534) must be able to reach the bundle's root file system.
  for (const d of [ctx.dir, bundle]) chmodSync(d, 0o755);
  cpSync(ctx.rootfs, join(bundle, 'rootfs'), { recursive: true, verbatimSymlinks: true });
  execFileSync('runc', ['spec', '--bundle', bundle]);
  const config = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
  config.process.terminal = false;
  config.process.args = ['/bin/busybox', 'sh', '-c', IN_SANDBOX];
  config.process.env = ['PATH=/bin'];
  config.process.cwd = '/www';
  config.root = { path: 'rootfs', readonly: true };
  config.linux.namespaces.push({ type: 'user' }, { type: 'cgroup' });
  config.linux.uidMappings = [{ containerID: 0, hostID: 65534, size: 1 }];
  config.linux.gidMappings = [{ containerID: 0, hostID: 65534, size: 1 }];
  // In a user namespace devpts cannot take the host's tty gid, and a cgroup v1 mount is refused.
  config.mounts = (config.mounts as Array<{ destination: string; options?: string[] }>)
    .filter((m) => m.destination !== '/sys/fs/cgroup')
    .map((m) => ({ ...m, options: m.options?.filter((o) => o !== 'gid=5') }));
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(config));
  const samplesMs: number[] = [];
  try {
    for (let i = 0; i < ctx.runs; i++) {
      const id = `skiff-bench-${process.pid}-${i}`;
      try {
        samplesMs.push(await timeRun('runc', ['--root', state, 'run', '--bundle', bundle, id], ctx, printsAnswer));
      } finally {
        spawnSync('runc', ['--root', state, 'delete', '--force', id], { stdio: 'ignore', timeout: 10_000 });
      }
    }
  } catch (err) {
    if (samplesMs.length === 0) return { skipped: `runc run failed here: ${(err as Error).message.split('\n')[0]}` };
    throw err;
  }
  return { samplesMs, what: 'runc run of an OCI bundle (pid, net, ipc, uts, mount, user, cgroup namespaces; read-only root), busybox httpd answering busybox wget inside' };
}

/** HttpLoad runs an HTTP load against a loopback URL (wrk), or says undefined when it cannot. */
export type HttpLoad = (url: string) => { rps: number; p99_us: number } | undefined;

/**
 * httpdFloor serves the example as plainly as it gets: busybox httpd of the same image, chrooted,
 * on a host loopback port (no namespaces, no relay, no gateway), loaded like the container Function:
 * the CGI script and a static file. What the container class's throughput is measured against.
 */
export async function httpdFloor(ctx: PeerContext, load: HttpLoad): Promise<Record<string, number> | { skipped: string }> {
  if (process.getuid?.() !== 0) return { skipped: 'chroot needs root' };
  if (!has('chroot')) return { skipped: 'chroot is not installed' };
  const out: Record<string, number> = {};
  for (const [home, path, prefix] of [['/www', '/cgi-bin/hello', ''], ['/etc', '/passwd', 'static_']] as const) {
    const port = await freePort();
    const child = spawn('chroot', [ctx.rootfs, '/bin/busybox', 'httpd', '-f', '-p', `127.0.0.1:${port}`, '-h', home], { stdio: 'ignore', detached: true });
    ctx.track(child);
    child.once('error', () => undefined);
    try {
      const end = Date.now() + 10_000;
      while (!(await httpAnswers(port, path, path === '/passwd' ? 'root:' : ANSWER))) {
        if (Date.now() > end || child.exitCode !== null) return { skipped: `busybox httpd did not answer on 127.0.0.1:${port}` };
        await new Promise((r) => setTimeout(r, 20));
      }
      const r = load(`http://127.0.0.1:${port}${path}`);
      if (!r) return { skipped: 'wrk is not available' };
      out[`${prefix}rps`] = r.rps;
      out[`${prefix}p99_us`] = r.p99_us;
    } finally {
      killGroup(child);
    }
  }
  return out;
}

/** newestCloudKernel is the newest /boot/vmlinuz-*-cloud-amd64 (Debian's linux-image-cloud-amd64). */
function newestCloudKernel(): string | undefined {
  const names = existsSync('/boot') ? readdirSync('/boot').filter((n) => /^vmlinuz-.+-cloud-amd64$/.test(n)) : [];
  names.sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  return names.length ? join('/boot', names[names.length - 1]!) : undefined;
}

const VIRTIO_NET_MODULES = ['virtio_ring', 'virtio', 'virtio_mmio', 'failover', 'net_failover', 'virtio_net'];

/**
 * qemuPeer: `qemu-system-x86_64 -M microvm` booting the cloud kernel (its bzImage as is, or `boot`, e.g.
 * the uncompressed vmlinux the vm handler unpacked from it for a PVH boot) with an initramfs made here of the image's root and a busybox init script, the port forwarded to loopback
 * by QEMU's user-mode network (restrict=on), as Skiff's vm handler does. Timed from spawning QEMU to
 * the first HTTP answer through the forwarded port; the port is polled only once the guest says its
 * network is up, since slirp holds a connection made earlier and retries the guest with TCP backoff.
 */
export async function qemuPeer(ctx: PeerContext, boot?: { file: string; what: string }): Promise<PeerOutcome> {
  if (!has('qemu-system-x86_64')) return { skipped: 'qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)' };
  const kernel = newestCloudKernel();
  if (!kernel) return { skipped: 'no /boot/vmlinuz-*-cloud-amd64 (apt-get install linux-image-cloud-amd64)' };
  const version = kernel.slice('/boot/vmlinuz-'.length);
  const depFile = join('/lib/modules', version, 'modules.dep');
  if (!existsSync(depFile)) return { skipped: `no ${depFile}` };
  const deps = new Map(readFileSync(depFile, 'utf8').split('\n').filter(Boolean).map((l) => l.split(':')[0]!).map((p) => [p.split('/').pop()!.replace(/\.ko.*$/, ''), p]));
  const archive = new NewcArchive().tree(ctx.rootfs).dir('mod');
  for (const m of VIRTIO_NET_MODULES) {
    const rel = deps.get(m);
    // Built into the kernel when modules.dep does not list it; a compressed module busybox cannot load.
    if (!rel) continue;
    if (!rel.endsWith('.ko')) return { skipped: `module ${rel} is compressed; this peer loads plain .ko files only` };
    archive.file(`mod/${m}.ko`, readFileSync(join('/lib/modules', version, rel)));
  }
  const init = [
    '#!/bin/busybox sh',
    '/bin/busybox mount -t proc proc /proc',
    '/bin/busybox mount -t sysfs sys /sys',
    '/bin/busybox mount -t devtmpfs dev /dev',
    ...VIRTIO_NET_MODULES.filter((m) => deps.has(m)).map((m) => `/bin/busybox insmod /mod/${m}.ko`),
    '/bin/busybox ip link set lo up',
    '/bin/busybox ip addr add 10.0.2.15/24 dev eth0',
    '/bin/busybox ip link set eth0 up',
    'echo BENCH-NET-UP',
    'cd /www',
    'export PATH=/bin',
    'exec /bin/busybox httpd -f -p 8080 -h /www',
  ].join('\n');
  archive.file('init', `${init}\n`, 0o755);
  const initrd = join(ctx.dir, 'qemu-peer-initrd.cpio');
  writeFileSync(initrd, archive.bytes());

  const kvm = existsSync('/dev/kvm');
  const append = ['console=ttyS0', 'panic=-1', 'quiet', 'rdinit=/init', 'cryptomgr.notests', 'mitigations=off', 'audit=0', 'apparmor=0', '8250.nr_uarts=1', 'random.trust_cpu=on'];
  // The same hint the vm handler gives a TCG guest: its TSC runs at the host's rate.
  const mhz = /^cpu MHz\s*:\s*([\d.]+)/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1];
  const hz = Number(/^CONFIG_HZ=(\d+)$/m.exec(existsSync(`/boot/config-${version}`) ? readFileSync(`/boot/config-${version}`, 'utf8') : '')?.[1] ?? 250);
  if (!kvm && mhz) {
    const khz = Math.round(Number(mhz) * 1000);
    append.push(`tsc_early_khz=${khz}`, `lpj=${Math.round((khz * 1000) / hz)}`, 'tsc=reliable');
  }
  const samplesMs: number[] = [];
  for (let i = 0; i < ctx.runs; i++) {
    const port = await freePort();
    const args = [
      '-M', 'microvm,x-option-roms=off,isa-serial=on', '-accel', kvm ? 'kvm' : 'tcg', '-cpu', kvm ? 'host' : 'max',
      '-m', '256', '-smp', '1', '-nodefaults', '-no-user-config', '-nographic', '-no-reboot', '-serial', 'stdio',
      '-kernel', boot?.file ?? kernel, '-initrd', initrd, '-append', append.join(' '),
      '-netdev', `user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:${port}-10.0.2.15:8080`, '-device', 'virtio-net-device,netdev=n0',
    ];
    let polling = false;
    samplesMs.push(
      await timeRun('qemu-system-x86_64', args, ctx, (stdout, child, answered) => {
        if (polling || !stdout.includes('BENCH-NET-UP')) return;
        polling = true;
        void (async () => {
          while (child.exitCode === null && child.signalCode === null) {
            if (await httpAnswers(port)) return answered();
            await new Promise((r) => setTimeout(r, 10));
          }
        })();
      }),
    );
  }
  return { samplesMs, what: `qemu-system-x86_64 -M microvm (${kvm ? 'KVM' : 'TCG, no /dev/kvm'}, 256 MiB) booting ${boot?.what ?? kernel} directly with a busybox initramfs, first HTTP answer through a loopback hostfwd` };
}

/** httpAnswers sends one GET to a loopback port and says whether an answer holding `expect` came back. */
function httpAnswers(port: number, path = '/cgi-bin/hello', expect = ANSWER): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host: '127.0.0.1', port });
    let got = '';
    const timer = setTimeout(() => (sock.destroy(), resolve(false)), 1_000);
    sock.on('connect', () => sock.write(`GET ${path} HTTP/1.0\r\nHost: localhost\r\n\r\n`));
    sock.on('data', (d) => {
      got += d.toString('latin1');
      if (got.includes(expect)) {
        clearTimeout(timer);
        sock.destroy();
        resolve(true);
      }
    });
    sock.on('error', () => (clearTimeout(timer), resolve(false)));
    sock.on('close', () => (clearTimeout(timer), resolve(got.includes(expect))));
  });
}

/** freePort asks the kernel for an unused loopback TCP port (QEMU binds it right after). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

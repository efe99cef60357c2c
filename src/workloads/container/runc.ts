import { chmodSync, existsSync, mkdirSync, readdirSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';

import { WorkloadError } from '../errors.js';
import type { Replica, ReplicaSpec } from '../types.js';

import { DEFAULT_RESOURCES } from './cgroups.js';
import { findProgram, hostnameFor, initBinary, run, SANDBOX_MOUNTS } from './common.js';
import { ContainerHandler } from './handler-base.js';
import { launchSandbox } from './sandbox.js';
import { runtimeDefaultSeccomp } from './seccomp.js';

/**
 * Directories that can hold the launcher's staging tmpfs (in its private mount namespace); the first
 * that exists and hides neither the bundle nor runc is taken.
 */
const STAGES = ['/tmp', '/run', '/mnt', '/srv', '/opt'];

function stageFor(paths: string[]): string | undefined {
  return STAGES.find((d) => existsSync(d) && !paths.some((p) => p === d || p.startsWith(`${d}/`)));
}

/** The OCI runtime-spec version the generated config.json declares (runc 1.1 implements 1.0.2). */
const OCI_VERSION = '1.0.2';

/**
 * RuncHandler runs each replica with `runc run` from a generated OCI bundle: the same namespaces,
 * seccomp profile (as JSON), empty capability sets, no_new_privs and skiff-init bridge as the bwrap
 * handler. runc runs as root with a user namespace that maps the container's root to an
 * unprivileged host uid; where that cannot work (Skiff not root, runc missing or refused by the
 * kernel) unavailable() says why.
 *
 * @example
 * const handler = new RuncHandler({ logger });
 * if (!(await handler.unavailable())) replica = await handler.start(spec);
 */
export class RuncHandler extends ContainerHandler {
  readonly name = 'runc';
  private readonly seccomp = runtimeDefaultSeccomp().oci();

  async start(spec: ReplicaSpec): Promise<Replica> {
    const { socketPath, init } = await this.begin(spec);
    const runc = findProgram(this.options.runc ?? 'runc')!;
    const bundle = join(spec.dir, 'bundle');
    const state = join(spec.dir, 'runc-state');
    const containerId = `skiff-${process.pid}-${spec.id}`.replace(/[^A-Za-z0-9_.-]/g, '_');
    const stage = stageFor([spec.dir, this.options.runc ?? runc]);
    if (!stage) throw new WorkloadError('StartFailed', `replica ${spec.id}: no directory among ${STAGES.join(', ')} can hold the sandbox's staging mount without hiding ${spec.dir}`);
    const cgroup = await this.cgroupFor(spec);
    try {
      mkdirSync(join(bundle, 'rootfs'), { recursive: true, mode: 0o755 });
      mkdirSync(state, { recursive: true, mode: 0o700 });
      writeFileSync(join(bundle, 'config.json'), JSON.stringify(this.config(spec, stage, cgroup ? containerId : undefined), null, 2));
      const launchArgs = ['--listen', socketPath, ...(cgroup?.procsFiles() ?? []).flatMap((f) => ['--cgroup', f])];
      launchArgs.push('--stage', stage, '--bind', spec.image.rootfs, 'image', '--bind', init, 'init', '--bind-rw', join(bundle, 'rootfs'), 'root');
      // --keep: runc would remove its cgroup, where cgroup v1 counts an OOM kill, before Skiff reads it.
      const command = [runc, '--root', state, 'run', '--keep', '--bundle', bundle, '--preserve-fds', '2', containerId];
      const isolation = this.isolation(cgroup?.mechanism);
      return await launchSandbox(spec, {
        init,
        launchArgs,
        command,
        fds: {},
        socketPath,
        cgroup,
        isolation,
        files: [bundle, state],
        teardown: async () => {
          await run(runc, ['--root', state, 'delete', '--force', containerId]);
        },
        startTimeoutMs: this.options.startTimeoutMs ?? 10_000,
        logger: this.options.logger,
      });
    } catch (err) {
      await cgroup?.remove().catch(() => undefined);
      await Promise.all([bundle, state].map((d) => rm(d, { recursive: true, force: true })));
      throw err;
    }
  }

  /** config builds the OCI runtime-spec config.json of one replica. */
  config(spec: ReplicaSpec, stage: string, cgroupsPath: string | undefined): Record<string, unknown> {
    const uid = this.options.hostUid ?? 65534;
    const gid = this.options.hostGid ?? 65534;
    const memory = spec.resources.memoryBytes ?? DEFAULT_RESOURCES.memoryBytes;
    const pids = spec.resources.pids ?? DEFAULT_RESOURCES.pids;
    const rlimits = [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }];
    if (!cgroupsPath) rlimits.push({ type: 'RLIMIT_AS', hard: memory, soft: memory }, { type: 'RLIMIT_NPROC', hard: pids, soft: pids });
    const ro = ['rbind', 'ro', 'nosuid', 'nodev'];
    const mounts: Record<string, unknown>[] = [
      { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777', `size=${this.options.tmpBytes ?? 64 * 1024 * 1024}`] },
      { destination: '/run', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=755', 'size=1048576'] },
      { destination: '/.skiff/init', type: 'bind', source: `${stage}/init`, options: ro },
    ];
    // The image is shown entry by entry on an empty per-replica root, so no mount point is ever made
    // in the shared image. The mount points are made here, as the host's root: runc makes them as the
    // container's root, an unprivileged host uid that cannot write this directory.
    const root = join(spec.dir, 'bundle', 'rootfs');
    for (const d of ['proc', 'dev', 'tmp', 'run', '.skiff']) mkdirSync(join(root, d), { recursive: true });
    // runc gives a tmpfs the mode of the directory it covers, over the mode= option: /tmp must be
    // writable by an image's non-root user too.
    chmodSync(join(root, 'tmp'), 0o1777);
    writeFileSync(join(root, '.skiff', 'init'), '');
    for (const e of readdirSync(spec.image.rootfs, { withFileTypes: true })) {
      if (SANDBOX_MOUNTS.has(e.name)) continue;
      const to = join(root, e.name);
      if (e.isSymbolicLink()) symlinkSync(readlinkSync(join(spec.image.rootfs, e.name)), to);
      else if (e.isDirectory() || e.isFile()) {
        if (e.isDirectory()) mkdirSync(to);
        else writeFileSync(to, '');
        mounts.push({ destination: `/${e.name}`, type: 'bind', source: `${stage}/image/${e.name}`, options: ro });
      }
    }
    const resources: Record<string, unknown> = { devices: [{ allow: false, access: 'rwm' }], pids: { limit: pids } };
    if (spec.resources.cpuMillis !== undefined) resources.cpu = { period: 100_000, quota: Math.max(1000, Math.round(spec.resources.cpuMillis * 100)) };
    return {
      ociVersion: OCI_VERSION,
      process: {
        terminal: false,
        user: { uid: spec.user?.uid ?? 0, gid: spec.user?.gid ?? 0 },
        // runc adds HOME when the environment lacks it; the replica's environment is exactly spec.env.
        args: ['/.skiff/init', '--port', String(spec.port), '--listen-fd', '3', '--lifeline-fd', '4', ...('HOME' in spec.env ? [] : ['--unsetenv', 'HOME']), '--', ...spec.argv],
        env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
        cwd: spec.workingDir,
        capabilities: { bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] },
        rlimits,
        noNewPrivileges: true,
      },
      root: { path: `${stage}/root`, readonly: true },
      hostname: hostnameFor(spec),
      mounts,
      linux: {
        uidMappings: idMappings(uid, spec.user?.uid, this.options.userIdBase),
        gidMappings: idMappings(gid, spec.user?.gid, this.options.userIdBase),
        namespaces: ['pid', 'network', 'ipc', 'uts', 'mount', 'user', 'cgroup'].map((type) => ({ type })),
        // Relative: runc puts it under its own cgroup, which the launcher made the replica's (whose
        // memory limit, set by Skiff, is the one that holds).
        cgroupsPath,
        resources,
        seccomp: this.seccomp,
        maskedPaths: ['/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware'],
        readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
      },
    };
  }

  protected async check(): Promise<string | undefined> {
    if (process.platform !== 'linux') return 'container replicas need Linux';
    if (!initBinary(this.options)) return 'build the native helpers: install gcc and run npm run build';
    const runc = findProgram(this.options.runc ?? 'runc');
    if (!runc) return 'install runc';
    if (process.getuid?.() !== 0) return 'runc runs replicas only when Skiff runs as root here (rootless runc needs a systemd user session); use the bwrap handler';
    const v = await run(runc, ['--version']);
    if (v.code !== 0) return `runc does not run here: ${v.out}`;
    return undefined;
  }
}

/** Where the image's non-root users map on the host: the first subordinate range useradd hands out. */
const DEFAULT_USER_ID_BASE = 100_000;

/**
 * idMappings maps the container's root to the unprivileged host id, and the image's own user (when it
 * is not root) to BASE + id: runc sets the container up as its root and then becomes that user, so both
 * need a host id, and none of them may be a host account that owns something.
 */
function idMappings(rootHostId: number, userId: number | undefined, base = DEFAULT_USER_ID_BASE): Array<{ containerID: number; hostID: number; size: number }> {
  const out = [{ containerID: 0, hostID: rootHostId, size: 1 }];
  if (userId !== undefined && userId !== 0) out.push({ containerID: userId, hostID: base + userId, size: 1 });
  return out;
}

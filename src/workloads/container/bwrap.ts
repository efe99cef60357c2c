import { openSync, readdirSync, readlinkSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import type { Replica, ReplicaSpec } from '../types.js';

import { DEFAULT_RESOURCES } from './cgroups.js';
import { findProgram, hostnameFor, initBinary, run, SANDBOX_MOUNTS } from './common.js';
import { ContainerHandler } from './handler-base.js';
import { launchSandbox } from './sandbox.js';
import { runtimeDefaultSeccomp } from './seccomp.js';

/** Where the launcher shows read-only sources to an unprivileged bwrap (a tmpfs in a private mount namespace). */
const STAGE = '/tmp';
const SECCOMP_FD = 5;

/**
 * BwrapHandler runs each replica in a bubblewrap sandbox: new user, PID, mount, IPC, UTS, network and
 * cgroup namespaces, no capabilities, no_new_privs, the RuntimeDefault seccomp filter, the image
 * read-only, cgroup limits where the host allows them. When Skiff runs as root, bwrap itself runs
 * as an unprivileged host uid, so the sandbox's root is that uid on the host.
 *
 * @example
 * const handler = new BwrapHandler({ logger });
 * const why = await handler.unavailable();           // 'install bubblewrap', or undefined
 * const replica = await handler.start(spec);         // replica.endpoint = { kind: 'unix', path }
 * await replica.stop(10_000);
 */
export class BwrapHandler extends ContainerHandler {
  readonly name = 'bwrap';
  private readonly seccomp = runtimeDefaultSeccomp().bpf();

  async start(spec: ReplicaSpec): Promise<Replica> {
    const { socketPath, init } = await this.begin(spec);
    const bwrap = findProgram(this.options.bwrap ?? 'bwrap')!;
    const root = asRoot();
    const cgroup = await this.cgroupFor(spec);
    const seccompPath = join(spec.dir, 'seccomp.bpf');
    try {
      await writeFile(seccompPath, this.seccomp, { mode: 0o600 });
      const seccompFd = openSync(seccompPath, 'r');
      const src = (name: string) => (root ? `${STAGE}/root/${name}` : join(spec.image.rootfs, name));
      const launchArgs = ['--listen', socketPath];
      for (const f of cgroup?.procsFiles() ?? []) launchArgs.push('--cgroup', f);
      if (root) {
        launchArgs.push('--stage', STAGE, '--bind', spec.image.rootfs, 'root', '--bind', init, 'init');
        launchArgs.push('--uid', String(this.options.hostUid ?? 65534), '--gid', String(this.options.hostGid ?? 65534));
      }
      const memory = spec.resources.memoryBytes ?? DEFAULT_RESOURCES.memoryBytes;
      const limits = cgroup ? [] : ['--rlimit', `as=${memory}`, '--rlimit', `nproc=${spec.resources.pids ?? DEFAULT_RESOURCES.pids}`];
      const command = [
        bwrap,
        '--unshare-user', '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-net', '--unshare-cgroup',
        '--die-with-parent', '--as-pid-1', '--new-session',
        '--uid', String(spec.user?.uid ?? 0), '--gid', String(spec.user?.gid ?? 0), '--cap-drop', 'ALL', '--hostname', hostnameFor(spec),
        ...this.rootfsArgs(spec, src),
        '--proc', '/proc', '--dev', '/dev',
        // bwrap's /dev is an unbounded tmpfs: /dev/shm gets a bounded one, and /dev itself is made read-only.
        '--size', String(this.options.tmpBytes ?? 64 * 1024 * 1024), '--tmpfs', '/dev/shm', '--remount-ro', '/dev',
        '--size', String(this.options.tmpBytes ?? 64 * 1024 * 1024), '--tmpfs', '/tmp',
        '--size', String(1024 * 1024), '--tmpfs', '/run',
        '--ro-bind', root ? `${STAGE}/init` : init, '/.skiff/init',
        '--remount-ro', '/',
        '--clearenv', ...Object.entries(spec.env).flatMap(([k, v]) => ['--setenv', k, v]),
        '--chdir', spec.workingDir,
        '--seccomp', String(SECCOMP_FD),
        '/.skiff/init', '--port', String(spec.port), '--listen-fd', '3', '--lifeline-fd', '4', ...limits, '--', ...spec.argv,
      ];
      const isolation = this.isolation(cgroup?.mechanism);
      return await launchSandbox(spec, {
        init, launchArgs, command, fds: { [SECCOMP_FD]: seccompFd }, socketPath, cgroup, isolation,
        files: [seccompPath], startTimeoutMs: this.options.startTimeoutMs ?? 10_000, logger: this.options.logger,
      });
    } catch (err) {
      await cgroup?.remove().catch(() => undefined);
      await rm(seccompPath, { force: true });
      throw err;
    }
  }

  /** rootfsArgs shows each top-level entry of the image read-only on bwrap's own (then read-only) root. */
  private rootfsArgs(spec: ReplicaSpec, src: (name: string) => string): string[] {
    const args: string[] = [];
    for (const e of readdirSync(spec.image.rootfs, { withFileTypes: true })) {
      if (SANDBOX_MOUNTS.has(e.name)) continue;
      if (e.isSymbolicLink()) args.push('--symlink', readlinkSync(join(spec.image.rootfs, e.name)), `/${e.name}`);
      else if (e.isDirectory() || e.isFile()) args.push('--ro-bind', src(e.name), `/${e.name}`);
    }
    return args;
  }

  protected async check(): Promise<string | undefined> {
    if (process.platform !== 'linux') return 'container replicas need Linux';
    const init = initBinary(this.options);
    if (!init) return 'build the native helpers: install gcc and run npm run build';
    const bwrap = findProgram(this.options.bwrap ?? 'bwrap');
    if (!bwrap) return 'install bubblewrap';
    const ids = asRoot() ? ['--uid', String(this.options.hostUid ?? 65534), '--gid', String(this.options.hostGid ?? 65534)] : [];
    const r = await run(init, ['launch', ...ids, '--', bwrap, '--unshare-all', '--uid', '0', '--ro-bind', '/', '/', '--proc', '/proc', '--cap-drop', 'ALL', 'true']);
    if (r.code !== 0) {
      return `bubblewrap cannot make an unprivileged sandbox here (${r.out || `exit ${r.code}`}); allow unprivileged user namespaces (sysctl user.max_user_namespaces, kernel.unprivileged_userns_clone)`;
    }
    return undefined;
  }
}

function asRoot(): boolean {
  return process.getuid?.() === 0;
}

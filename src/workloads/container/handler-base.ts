import { join } from 'node:path';

import { WorkloadError } from '../errors.js';
import type { AppliedIsolation, LimitsMechanism, Replica, ReplicaSpec, RuntimeHandler } from '../types.js';

import { CgroupManager } from './cgroups.js';
import { checkSpec, type ContainerHandlerOptions, initBinary } from './common.js';

/**
 * ContainerHandler is what the bwrap and runc handlers share: the options, the cgroup manager, the
 * host probe asked once and cached, and the checks every start begins with.
 */
export abstract class ContainerHandler implements RuntimeHandler {
  abstract readonly name: string;
  protected readonly cgroups: CgroupManager;
  private probe?: Promise<string | undefined>;

  constructor(protected readonly options: ContainerHandlerOptions = {}) {
    this.cgroups = new CgroupManager({ root: options.cgroupRoot, parent: options.cgroupParent });
  }

  unavailable(): Promise<string | undefined> {
    this.probe ??= this.check();
    return this.probe;
  }

  abstract start(spec: ReplicaSpec): Promise<Replica>;

  /** check probes the host once: undefined when this handler can run replicas here, else what to do. */
  protected abstract check(): Promise<string | undefined>;

  /**
   * begin refuses a start on a host that cannot run the handler, checks the spec, and returns the
   * replica's socket path and the init helper.
   */
  protected async begin(spec: ReplicaSpec): Promise<{ socketPath: string; init: string }> {
    const why = await this.unavailable();
    if (why) throw new WorkloadError('HandlerUnavailable', `handler ${this.name}: ${why}`);
    const socketPath = join(spec.dir, 'http.sock');
    checkSpec(spec, socketPath);
    return { socketPath, init: initBinary(this.options)! };
  }

  /** cgroupFor makes the replica's cgroups (undefined where rlimits are the mechanism); a failure refuses the start. */
  protected async cgroupFor(spec: ReplicaSpec): Promise<Awaited<ReturnType<CgroupManager['create']>>> {
    return this.cgroups.create(spec.id, spec.resources).catch((err: unknown) => {
      throw new WorkloadError('StartFailed', `replica ${spec.id}: cannot create its cgroup under ${this.options.cgroupRoot ?? '/sys/fs/cgroup'}: ${(err as Error).message}`, err);
    });
  }

  /** isolation is what every container replica gets, whichever handler runs it; only the limits mechanism varies. */
  protected isolation(limits: LimitsMechanism | undefined): AppliedIsolation {
    return {
      handler: this.name,
      namespaces: ['user', 'pid', 'mount', 'ipc', 'uts', 'net', 'cgroup'],
      capabilities: 'none',
      noNewPrivs: true,
      seccomp: 'RuntimeDefault',
      limits: limits ?? 'rlimit',
      network: 'own network namespace with loopback only; reached through a Unix socket',
      rootfs: 'image read-only; tmpfs /tmp, /run and /dev/shm',
    };
  }
}

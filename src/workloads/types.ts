/**
 * The contract between the replica lifecycle (manager.ts) and the runtime-class handlers
 * (container/, vm/): a handler starts one replica of a prepared image and hands back a Replica that
 * can be probed through its endpoint, watched until it exits and stopped. Handlers know nothing of
 * Functions, restarts or the gateway; the manager knows nothing of namespaces, seccomp or QEMU.
 */

/** ImageConfig is the part of an OCI image configuration (`config` object) a replica needs. */
export interface ImageConfig {
  entrypoint?: string[];
  cmd?: string[];
  /** `NAME=value` entries, as in the image configuration. */
  env?: string[];
  workingDir?: string;
  user?: string;
  exposedPorts?: string[];
}

/** PreparedImage is an image unpacked into a content-addressed, read-only root file system. */
export interface PreparedImage {
  /** Digest of the image manifest (sha256:HEX), the cache key of the root file system. */
  digest: string;
  /** The reference it came from, pinned (oci://HOST/REPO@sha256:... or the layout directory). */
  reference: string;
  /** Absolute host directory of the unpacked root file system; shared by every replica, never written. */
  rootfs: string;
  config: ImageConfig;
  /** Bytes of the unpacked files. */
  sizeBytes: number;
}

/** Resources a replica may use; an absent field means the handler's default. */
export interface ReplicaResources {
  memoryBytes?: number;
  /** CPU in thousandths of a core (500 = half a core). */
  cpuMillis?: number;
  /** Processes and threads the replica may have at once. */
  pids?: number;
}

/** ReplicaSpec is everything a handler needs to start one replica. */
export interface ReplicaSpec {
  /** Unique across the process, safe in file names: `NAMESPACE.FUNCTION.N`. */
  id: string;
  namespace: string;
  function: string;
  image: PreparedImage;
  /** The argv to run (the image's entrypoint/cmd merged with the Function's command/args). */
  argv: string[];
  /** The whole environment of the process, PORT included. */
  env: Record<string, string>;
  workingDir: string;
  /** The uid and gid the process runs as inside (the image's config.User); root when absent. */
  user?: { uid: number; gid: number };
  /** The TCP port the process serves HTTP on, inside its own network. */
  port: number;
  resources: ReplicaResources;
  /** A host directory the handler may use for this replica alone; the manager removes it after stop. */
  dir: string;
  /** Output of the replica: its stdout/stderr, or a VM's console. Called per line, without the newline. */
  log(stream: 'stdout' | 'stderr' | 'console', line: string): void;
}

/** ReplicaEndpoint is where the host reaches the replica's HTTP server. */
export type ReplicaEndpoint = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

/** How limits were applied: a cgroup the handler created, rlimits in the process, or a VM's size. */
export type LimitsMechanism = 'cgroup-v2' | 'cgroup-v1' | 'rlimit' | 'vm';

/** AppliedIsolation says what a running replica actually got; `skiff describe function` shows it. */
export interface AppliedIsolation {
  handler: string;
  /** Linux namespaces the replica has of its own (`user`, `pid`, `mount`, `ipc`, `uts`, `net`, `cgroup`), or `[]` in a VM. */
  namespaces: string[];
  /** Effective capabilities inside (`none` when all are dropped). */
  capabilities: string;
  noNewPrivs: boolean;
  /** `RuntimeDefault` when the syscall filter is on, else why not. */
  seccomp: string;
  limits: LimitsMechanism;
  /** How the replica is networked, in a few words. */
  network: string;
  /** How its root file system is mounted, in a few words. */
  rootfs: string;
  /** For a VM: the machine (`microvm, TCG, 256 MiB`). */
  machine?: string;
}

/** Why a replica ended. `reason` is a PascalCase condition reason. */
export interface ReplicaExit {
  code: number | null;
  signal: string | null;
  /** `Completed` (code 0), `Error`, `OOMKilled`, `KernelPanic`, `Stopped` (stop() was called). */
  reason: string;
  message: string;
}

/** Replica is one running copy of a workload. */
export interface Replica {
  readonly endpoint: ReplicaEndpoint;
  readonly isolation: AppliedIsolation;
  /** Host PID of the replica's outermost process, when there is one. */
  readonly pid?: number;
  /** Settles (never rejects) once the replica has ended and everything it held is released. */
  readonly exited: Promise<ReplicaExit>;
  /**
   * stop asks the replica to end (SIGTERM, or an ACPI power-off for a VM), waits up to `graceMs`,
   * then kills it; it resolves with the exit once processes, mounts and the handler's temporary
   * files are gone. Calling it again returns the same promise.
   */
  stop(graceMs: number): Promise<ReplicaExit>;
  /** Current usage, when the handler can read it. */
  stats?(): { memoryBytes?: number; cpuSeconds?: number } | undefined;
}

/** RuntimeHandler runs replicas of one runtime class in one way (bwrap, runc, qemu). */
export interface RuntimeHandler {
  /** The handler name RuntimeClass objects refer to (`bwrap`, `runc`, `qemu`). */
  readonly name: string;
  /**
   * unavailable says why this handler cannot run here, as what to do (`install bubblewrap`), or
   * undefined when it can. It may probe the host once and cache the answer.
   */
  unavailable(): Promise<string | undefined>;
  /**
   * start launches a replica and resolves once its process runs (not once it is ready: the manager
   * probes readiness). It rejects with a WorkloadError when the replica cannot be started; nothing
   * is left behind then.
   */
  start(spec: ReplicaSpec): Promise<Replica>;
}

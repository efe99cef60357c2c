import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { createInterface } from 'node:readline';

import type { Logger } from 'pino';

import { WorkloadError } from '../errors.js';
import type { AppliedIsolation, Replica, ReplicaExit, ReplicaSpec } from '../types.js';

import type { ReplicaCgroup } from './cgroups.js';

/** Everything a handler decided; launchSandbox runs it the same way for bwrap and runc. */
export interface LaunchPlan {
  /** skiff-init (host path): started as `skiff-init launch LAUNCH_ARGS -- COMMAND`. */
  init: string;
  launchArgs: string[];
  command: string[];
  /** Extra descriptors for the child, by child fd number (5 and up; 3 is the socket, 4 the lifeline). */
  fds: Record<number, number>;
  socketPath: string;
  cgroup?: ReplicaCgroup;
  isolation: AppliedIsolation;
  /** Files and directories (in spec.dir) to remove once the replica is gone. */
  files: string[];
  /** Handler-specific teardown after the processes are gone (runc delete). */
  teardown?: () => Promise<void>;
  startTimeoutMs: number;
  logger?: Logger;
}

const ERRNO_TEXT: Record<number, string> = { 2: 'no such file in the image', 8: 'not an executable for this machine', 13: 'permission denied', 20: 'a path component is not a directory' };

/**
 * launchSandbox starts the launcher, waits for skiff-init inside to report that the workload runs,
 * and returns the Replica. On any failure it waits until everything is released, then rejects.
 */
export async function launchSandbox(spec: ReplicaSpec, plan: LaunchPlan): Promise<Replica> {
  const stdio: (number | 'ignore' | 'pipe')[] = ['ignore', 'pipe', 'pipe', 'ignore', 'pipe'];
  for (const [fd, hostFd] of Object.entries(plan.fds)) stdio[Number(fd)] = hostFd;
  for (let i = 0; i < stdio.length; i++) stdio[i] ??= 'ignore';
  let child: ChildProcess;
  try {
    child = spawn(plan.init, ['launch', ...plan.launchArgs, '--', ...plan.command], { stdio, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
  } finally {
    for (const fd of Object.values(plan.fds)) closeSync(fd);
  }
  const replica = new SandboxReplica(spec, plan, child);
  await replica.started;
  return replica;
}

/** SandboxReplica follows one sandbox from launch to the release of everything it held. */
class SandboxReplica implements Replica {
  readonly endpoint: Replica['endpoint'];
  readonly isolation: AppliedIsolation;
  readonly pid?: number;
  readonly exited: Promise<ReplicaExit>;
  readonly started: Promise<void>;
  private readonly lifeline: Socket;
  private report?: { code: number | null; signal: number | null };
  private stopping?: Promise<ReplicaExit>;
  private stopRequested = false;
  private readonly stderrTail: string[] = [];

  constructor(
    private readonly spec: ReplicaSpec,
    private readonly plan: LaunchPlan,
    private readonly child: ChildProcess,
  ) {
    this.endpoint = { kind: 'unix', path: plan.socketPath };
    this.isolation = plan.isolation;
    this.pid = child.pid;
    this.lifeline = child.stdio[4] as Socket;
    for (const stream of ['stdout', 'stderr'] as const) {
      const rl = createInterface({ input: child[stream]!, crlfDelay: Infinity });
      rl.on('line', (line) => {
        if (stream === 'stderr') {
          this.stderrTail.push(line);
          if (this.stderrTail.length > 8) this.stderrTail.shift();
        }
        try {
          spec.log(stream, line);
        } catch (err) {
          plan.logger?.warn({ err, replica: spec.id }, 'replica log sink failed');
        }
      });
    }
    let onStarted!: () => void;
    let onFailed!: (err: Error) => void;
    this.started = new Promise<void>((resolve, reject) => {
      onStarted = resolve;
      onFailed = reject;
    });
    let buffered = '';
    this.lifeline.setEncoding('utf8');
    this.lifeline.on('error', () => undefined);
    this.lifeline.on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const [word, a, b] = buffered.slice(0, nl).split(' ');
        buffered = buffered.slice(nl + 1);
        if (word === 'started') onStarted();
        else if (word === 'execfail') {
          const errno = Number(a);
          onFailed(new WorkloadError('StartFailed', `replica ${spec.id}: cannot run ${JSON.stringify(spec.argv[0])} in image ${spec.image.reference}: ${ERRNO_TEXT[errno] ?? `errno ${errno}`}; check the Function's command and the image's entrypoint`));
        } else if (word === 'exit') this.report = a === 'code' ? { code: Number(b), signal: null } : { code: null, signal: Number(b) };
      }
    });
    const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.on('error', (err) => {
        this.stderrTail.push(err.message);
        resolve({ code: null, signal: null });
      });
      child.on('close', (code, signal) => resolve({ code, signal }));
    });
    const timer = setTimeout(() => {
      onFailed(new WorkloadError('StartFailed', `replica ${spec.id}: the sandbox did not start its process within ${plan.startTimeoutMs} ms`));
      this.kill();
    }, plan.startTimeoutMs);
    this.started.then(
      () => clearTimeout(timer),
      () => clearTimeout(timer),
    );
    this.exited = closed.then(async (how) => {
      clearTimeout(timer);
      onFailed(
        new WorkloadError(
          'StartFailed',
          `replica ${spec.id}: the sandbox ended before its process started (${how.signal ?? `exit ${how.code}`}): ${this.stderrTail.join(' / ') || 'no output'}`,
        ),
      );
      return this.release();
    });
    // A start that fails must leave nothing behind: the caller sees the rejection once release is done.
    this.started = this.started.catch(async (err: unknown) => {
      this.kill();
      await this.exited;
      throw err;
    });
  }

  stop(graceMs: number): Promise<ReplicaExit> {
    this.stopping ??= (async () => {
      this.stopRequested = true;
      this.send('term');
      const done = await Promise.race([this.exited.then(() => true), sleep(Math.max(0, graceMs)).then(() => false)]);
      if (!done) this.kill();
      return this.exited;
    })();
    return this.stopping;
  }

  stats(): { memoryBytes?: number } | undefined {
    const memoryBytes = this.plan.cgroup?.memoryBytes();
    return memoryBytes === undefined ? undefined : { memoryBytes };
  }

  /**
   * kill ends the whole sandbox: skiff-init kills its namespace and exits, and bwrap or runc, its
   * parent, reaps it and exits. Only when that has not happened within a second are the launcher and
   * the cgroup's processes killed from outside (which leaves skiff-init for the host's init to reap).
   */
  private kill(): void {
    this.send('kill');
    const force = setTimeout(() => {
      try {
        this.child.kill('SIGKILL');
      } catch {
        // already gone
      }
      void this.plan.cgroup?.killAll();
    }, 1000);
    void this.exited.finally(() => clearTimeout(force));
  }

  private send(word: string): void {
    if (!this.lifeline.destroyed && this.lifeline.writable) this.lifeline.write(`${word}\n`);
  }

  /** release runs once the launcher has exited: it makes sure no process is left, then frees everything. */
  private async release(): Promise<ReplicaExit> {
    this.lifeline.destroy();
    const { cgroup, logger } = this.plan;
    let oomKills = 0;
    if (cgroup) {
      // The namespace's processes die with its PID 1; the sweep is for a process the kernel has not finished reaping.
      for (let i = 0; i < 100 && (await cgroup.pids()).length; i++) {
        await cgroup.killAll();
        await sleep(20);
      }
      oomKills = await cgroup.oomKills();
    }
    try {
      await this.plan.teardown?.();
    } catch (err) {
      logger?.warn({ err, replica: this.spec.id }, 'replica teardown failed');
    }
    try {
      await cgroup?.remove();
    } catch (err) {
      logger?.warn({ err, replica: this.spec.id }, 'replica cgroup not removed');
    }
    await Promise.all([this.plan.socketPath, ...this.plan.files].map((f) => rm(f, { recursive: true, force: true })));
    const r = this.report;
    const signal = r?.signal != null ? signalName(r.signal) : null;
    const exit = { code: r?.code ?? null, signal };
    const oom = oomKills > 0;
    if (this.stopRequested) return { ...exit, reason: 'Stopped', message: r ? describe(r, signal) : 'stopped' };
    if (oom) return { ...exit, reason: 'OOMKilled', message: `killed for using more than its memory limit (${describe(r, signal)})` };
    if (!r) return { ...exit, reason: 'Error', message: `the sandbox ended without a status: ${this.stderrTail.join(' / ') || 'no output'}` };
    if (r.code === 0) return { ...exit, reason: 'Completed', message: 'exited with code 0' };
    return { ...exit, reason: 'Error', message: describe(r, signal) };
  }
}

function describe(r: { code: number | null; signal: number | null } | undefined, signal: string | null): string {
  if (!r) return 'no status';
  return r.code !== null ? `exited with code ${r.code}` : `killed by ${signal}`;
}

const SIGNALS: Record<number, string> = { 1: 'SIGHUP', 2: 'SIGINT', 3: 'SIGQUIT', 4: 'SIGILL', 6: 'SIGABRT', 7: 'SIGBUS', 8: 'SIGFPE', 9: 'SIGKILL', 11: 'SIGSEGV', 13: 'SIGPIPE', 14: 'SIGALRM', 15: 'SIGTERM', 24: 'SIGXCPU', 25: 'SIGXFSZ', 31: 'SIGSYS' };

function signalName(n: number): string {
  return SIGNALS[n] ?? `signal ${n}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

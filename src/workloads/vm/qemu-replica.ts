import { type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { constants as osConstants } from 'node:os';

import type { AppliedIsolation, Replica, ReplicaEndpoint, ReplicaExit } from '../types.js';

import { type ConsoleWatcher } from './console.js';

const CONTROL_TIMEOUT_MS = 1_000;
const CLK_TCK = 100;

/** What a QemuReplica owns besides the process: files to remove once QEMU is gone. */
export interface QemuReplicaParts {
  child: ChildProcess;
  console: ConsoleWatcher;
  endpoint: ReplicaEndpoint;
  isolation: AppliedIsolation;
  /** Host loopback port forwarded to the init's control port. */
  controlHostPort: number;
  files: string[];
  /** QEMU's stderr, kept for the exit message. */
  stderrTail: () => string;
  onExit?: (exit: ReplicaExit) => void;
}

function signalName(n: number): string {
  const e = Object.entries(osConstants.signals).find(([, v]) => v === n);
  return e ? e[0] : `SIG${n}`;
}

/**
 * QemuReplica is one running micro-VM. It ends when QEMU exits: the guest powered off after its
 * workload ended (the init's marker gives the code), the kernel panicked, or stop() killed it.
 */
export class QemuReplica implements Replica {
  readonly endpoint: ReplicaEndpoint;
  readonly isolation: AppliedIsolation;
  readonly pid: number;
  readonly exited: Promise<ReplicaExit>;
  private stopping?: Promise<ReplicaExit>;
  private stopRequested = false;
  private done = false;

  constructor(private readonly parts: QemuReplicaParts) {
    this.endpoint = parts.endpoint;
    this.isolation = parts.isolation;
    this.pid = parts.child.pid!;
    this.exited = new Promise((resolve) => {
      parts.child.once('close', (code, signal) => {
        parts.console.end();
        const exit = this.describe(code, signal);
        void Promise.all(parts.files.map((f) => rm(f, { force: true }))).then(() => {
          this.done = true;
          parts.onExit?.(exit);
          resolve(exit);
        });
      });
    });
  }

  stop(graceMs: number): Promise<ReplicaExit> {
    this.stopping ??= this.doStop(graceMs);
    return this.stopping;
  }

  stats(): { memoryBytes?: number; cpuSeconds?: number } | undefined {
    if (this.done) return undefined;
    try {
      const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
      const rss = Number(status.match(/^VmRSS:\s+(\d+) kB/m)?.[1] ?? NaN) * 1024;
      const stat = readFileSync(`/proc/${this.pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const cpu = (Number(f[11]) + Number(f[12])) / CLK_TCK;
      return { memoryBytes: Number.isFinite(rss) ? rss : undefined, cpuSeconds: Number.isFinite(cpu) ? cpu : undefined };
    } catch {
      return undefined;
    }
  }

  private async doStop(graceMs: number): Promise<ReplicaExit> {
    this.stopRequested = true;
    if (this.done) return this.exited;
    // Before the init listens there is no workload to ask; the kill below is all there is to do.
    if (this.parts.console.state.startedAfterMs !== undefined && graceMs > 0) {
      await this.askToStop();
      await Promise.race([this.exited, new Promise((r) => setTimeout(r, graceMs).unref())]);
    }
    if (!this.done) this.parts.child.kill('SIGKILL');
    return this.exited;
  }

  /** askToStop sends TERM to the init's control port; the init passes SIGTERM to the workload. */
  private askToStop(): Promise<void> {
    return new Promise((resolve) => {
      const sock = connect({ host: '127.0.0.1', port: this.parts.controlHostPort });
      const finish = () => {
        clearTimeout(timer);
        sock.destroy();
        resolve();
      };
      const timer = setTimeout(finish, CONTROL_TIMEOUT_MS);
      sock.once('connect', () => sock.write('TERM\n'));
      sock.once('data', finish);
      sock.once('error', finish);
      sock.once('close', finish);
    });
  }

  private describe(code: number | null, signal: NodeJS.Signals | null): ReplicaExit {
    const s = this.parts.console.state;
    const tail = s.tail.filter((l) => l.trim()).slice(-5).join(' | ');
    if (s.exitCode !== undefined || s.exitSignal !== undefined) {
      const guestSignal = s.exitSignal !== undefined ? signalName(s.exitSignal) : null;
      const guestCode = s.exitCode ?? null;
      const what = guestSignal ? `was killed by ${guestSignal}` : `exited with code ${guestCode}`;
      if (this.stopRequested) return { code: guestCode, signal: guestSignal, reason: 'Stopped', message: `the workload ${what} after a stop request` };
      if (guestSignal === 'SIGKILL' && s.oomKill) return { code: null, signal: guestSignal, reason: 'OOMKilled', message: "the guest kernel's OOM killer ended the workload: raise resources.memory" };
      return { code: guestCode, signal: guestSignal, reason: guestCode === 0 ? 'Completed' : 'Error', message: `the workload ${what}${guestCode ? `; last console lines: ${tail}` : ''}` };
    }
    if (s.panic !== undefined) return { code: null, signal: null, reason: 'KernelPanic', message: `the guest kernel panicked: ${s.panic}` };
    if (this.stopRequested) return { code: null, signal: signal ?? null, reason: 'Stopped', message: 'the VM was stopped' };
    if (s.initFailure !== undefined) return { code: null, signal: null, reason: 'StartFailed', message: `the VM's init failed: ${s.initFailure}` };
    const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
    const err = this.parts.stderrTail();
    return { code: null, signal: signal ?? null, reason: 'Error', message: `QEMU ${how} before the workload ended${err ? `: ${err}` : ''}${tail ? `; last console lines: ${tail}` : ''}` };
  }
}

import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { BwrapHandler, RuncHandler } from '../../src/workloads/container/index.js';
import type { Replica, ReplicaExit, ReplicaSpec, RuntimeHandler } from '../../src/workloads/index.js';
import { hasBinary } from '../helpers/system-deps.js';

const REPO = resolve(import.meta.dirname, '..', '..');

/** The handlers every container test runs against, with what each needs on the host. */
export const HANDLERS = [
  { name: 'bwrap', needs: ['bwrap', 'busybox', 'cc'], make: () => new BwrapHandler() },
  { name: 'runc', needs: ['runc', 'busybox', 'cc'], make: () => new RuncHandler() },
] as const;

/** usable tells whether a handler's host tools are here (with SKIFF_REQUIRE_SYSTEM_DEPS=1 their absence throws). */
export function usable(needs: readonly string[]): boolean {
  return needs.every((n) => hasBinary(n));
}

/** buildNative makes sure dist/native/skiff-init is current (the build script skips what is up to date). */
export function buildNative(): void {
  execFileSync(process.execPath, [join(REPO, 'scripts', 'build-native.mjs')], { stdio: 'ignore' });
}

/** A test's own world: a temp dir holding a busybox rootfs with attack programs, and replica dirs. */
export interface Fixture {
  base: string;
  rootfs: string;
  /** Attack program, also on the host for control runs. */
  attack: string;
  specDir(): string;
  spec(id: string, argv: string[], more?: Partial<ReplicaSpec>): ReplicaSpec & { lines: { stream: string; line: string }[] };
  cleanup(): void;
}

let counter = 0;

/** makeFixture builds a root file system the way an image would look: busybox, a CGI script, the attack program. */
export function makeFixture(): Fixture {
  const base = mkdtempSync(join(tmpdir(), 'skiff-ct-'));
  chmodSync(base, 0o755);
  const rootfs = join(base, 'rootfs');
  for (const d of ['bin', 'etc', 'www/cgi-bin', 'data']) mkdirSync(join(rootfs, d), { recursive: true });
  copyFileSync(execFileSync('sh', ['-c', 'command -v busybox']).toString().trim(), join(rootfs, 'bin', 'busybox'));
  chmodSync(join(rootfs, 'bin', 'busybox'), 0o755);
  for (const applet of ['sh', 'cat', 'ls', 'touch', 'mkdir', 'hostname', 'sleep', 'echo', 'id', 'wget', 'nc', 'seq', 'httpd', 'ps', 'grep']) {
    symlinkSync('busybox', join(rootfs, 'bin', applet));
  }
  symlinkSync('bin', join(rootfs, 'sbin'));
  writeFileSync(join(rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/:/bin/sh\n');
  writeFileSync(join(rootfs, 'www', 'index.html'), 'hello from the container\n');
  // Raw CRLF headers: Node's HTTP parser is strict and busybox httpd passes a CGI's header lines as they are.
  writeFileSync(join(rootfs, 'www', 'cgi-bin', 'q'), '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\n"\necho "query=$QUERY_STRING port=$PORT"\n');
  chmodSync(join(rootfs, 'www', 'cgi-bin', 'q'), 0o755);
  const attack = join(base, 'attack');
  const cc = spawnSync('cc', ['-static', '-O1', '-o', attack, join(import.meta.dirname, 'fixtures', 'attack.c')], { encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(`cc -static failed (install gcc and libc6-dev): ${cc.stderr}`);
  copyFileSync(attack, join(rootfs, 'bin', 'attack'));
  chmodSync(join(rootfs, 'bin', 'attack'), 0o755);
  chmodSync(attack, 0o755);
  return {
    base,
    rootfs,
    attack,
    specDir() {
      const d = join(base, `r${++counter}`);
      mkdirSync(d);
      return d;
    },
    spec(id, argv, more = {}) {
      const lines: { stream: string; line: string }[] = [];
      return {
        id: `t${process.pid}.${id}.${++counter}`,
        namespace: 'test',
        function: id,
        image: { digest: 'sha256:' + '0'.repeat(64), reference: 'test-image', rootfs, config: {}, sizeBytes: 0 },
        argv,
        env: { PATH: '/bin', PORT: '8080' },
        workingDir: '/',
        port: 8080,
        resources: { memoryBytes: 64 * 1024 * 1024, pids: 64 },
        dir: this.specDir(),
        log: (stream, line) => lines.push({ stream, line }),
        lines,
        ...more,
      };
    },
    cleanup() {
      rmSync(base, { recursive: true, force: true });
    },
  };
}

/** runToEnd starts a one-shot replica and waits (bounded) for its end. */
export async function runToEnd(handler: RuntimeHandler, spec: ReturnType<Fixture['spec']>, timeoutMs = 15_000): Promise<{ exit: ReplicaExit; out: string; err: string; replica: Replica }> {
  const replica = await handler.start(spec);
  const exit = await Promise.race([replica.exited, new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`replica ${spec.id} did not end in ${timeoutMs} ms`)), timeoutMs))]).catch(async (err) => {
    await replica.stop(0);
    throw err;
  });
  const pick = (s: string) => spec.lines.filter((l) => l.stream === s).map((l) => l.line).join('\n');
  return { exit, out: pick('stdout'), err: pick('stderr'), replica };
}

/** results parses the attack program's NAME=ERRNO lines. */
export function results(out: string): Record<string, number> {
  return Object.fromEntries(out.split('\n').filter((l) => /^\w+=\d+$/.test(l)).map((l) => [l.split('=')[0]!, Number(l.split('=')[1])]));
}

/** httpGet sends one request through a Unix socket endpoint. */
export function httpGet(socketPath: string, path: string, timeoutMs = 5000): Promise<{ status: number; body: string }> {
  return new Promise((resolveGet, reject) => {
    const req = request({ socketPath, path, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolveGet({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** waitHttp retries until the replica answers (bounded). */
export async function waitHttp(socketPath: string, path: string, timeoutMs = 10_000): Promise<{ status: number; body: string }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await httpGet(socketPath, path, 2000);
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

/** hostPidsOf lists the host PIDs of a replica's processes: its cgroup members, else the launcher's descendants. */
export function hostPidsOf(replica: Replica): number[] {
  const out = new Set<number>();
  const children = new Map<number, number[]>();
  for (const p of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const ppid = Number(/^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(p)]);
    } catch {
      // gone
    }
  }
  const walk = (pid: number) => {
    out.add(pid);
    for (const c of children.get(pid) ?? []) walk(c);
  };
  if (replica.pid) walk(replica.pid);
  return [...out];
}

/** Status fields of a host process (Uid, CapEff, ...). */
export function statusOf(pid: number): Record<string, string> {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Object.fromEntries(text.split('\n').filter((l) => l.includes(':')).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]));
}

/** Leftovers is everything a replica could leave behind, to assert it is empty after each test. */
export function leftovers(): { processes: string[]; cgroups: string[]; mounts: string[] } {
  const marker = `skiff-${process.pid}-`;
  const tag = `t${process.pid}`;
  const processes: string[] = [];
  for (const p of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const cg = readFileSync(`/proc/${p}/cgroup`, 'utf8');
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cg.includes(marker) || cmd.includes(marker) || cmd.includes(tag)) processes.push(`${p} ${cmd}`);
    } catch {
      // gone
    }
  }
  const cgroups: string[] = [];
  const walk = (dir: string, depth: number) => {
    if (depth > 6) return;
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      if (e.name.startsWith(marker)) cgroups.push(join(dir, e.name));
      else walk(join(dir, e.name), depth + 1);
    }
  };
  if (existsSync('/sys/fs/cgroup')) walk('/sys/fs/cgroup', 0);
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes('skiff-ct-') || l.includes('skiff-stage'));
  return { processes, cgroups, mounts };
}

/** waitNoLeftovers polls until nothing is left (bounded), then returns what remains. */
export async function waitNoLeftovers(timeoutMs = 5000): Promise<ReturnType<typeof leftovers>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const l = leftovers();
    if ((l.processes.length === 0 && l.cgroups.length === 0 && l.mounts.length === 0) || Date.now() > deadline) return l;
    await new Promise((r) => setTimeout(r, 50));
  }
}

// Shared by the vm tests: a busybox root file system, a ReplicaSpec for it, and the host checks.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import type { ReplicaSpec } from '../../src/workloads/index.js';
import { hasBinary } from '../helpers/system-deps.js';

export const REPO = resolve(import.meta.dirname, '..', '..');

/** vmHostReady builds the native helpers and says whether QEMU, a kernel and busybox are here (throws in CI when not). */
export function vmHostReady(): boolean {
  const ok = hasBinary('qemu-system-x86_64') && hasBinary('busybox');
  if (!ok) return false;
  const r = spawnSync(process.execPath, [join(REPO, 'scripts', 'build-native.mjs')], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`building native helpers failed: ${r.stderr}`);
  const kernels = readdirSync('/boot').filter((n) => /^vmlinuz-.+-cloud-amd64$/.test(n));
  if (!kernels.length) {
    if (process.env.SKIFF_REQUIRE_SYSTEM_DEPS === '1') throw new Error('no /boot/vmlinuz-*-cloud-amd64 and SKIFF_REQUIRE_SYSTEM_DEPS=1: add linux-image-cloud-amd64 to .ci/apt-packages.txt');
    return false;
  }
  return true;
}

/**
 * busyboxRootfs writes a root file system with a static busybox, an index page and two CGI scripts:
 * `q` echoes the query string, `probe?HOST:PORT` tries a TCP connection from inside the guest.
 */
export function busyboxRootfs(parent: string): string {
  const root = join(parent, 'rootfs');
  mkdirSync(join(root, 'bin'), { recursive: true });
  const busybox = execFileSync('sh', ['-c', 'command -v busybox'], { encoding: 'utf8' }).trim();
  copyFileSync(busybox, join(root, 'bin', 'busybox'));
  chmodSync(join(root, 'bin', 'busybox'), 0o755);
  for (const a of ['sh', 'echo', 'cat', 'nc', 'wget', 'sleep', 'kill']) symlinkSync('busybox', join(root, 'bin', a));
  mkdirSync(join(root, 'www', 'cgi-bin'), { recursive: true });
  writeFileSync(join(root, 'www', 'index.html'), 'hello from the vm\n');
  const cgi = (name: string, body: string) => {
    writeFileSync(join(root, 'www', 'cgi-bin', name), `#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\n${body}\n`);
    chmodSync(join(root, 'www', 'cgi-bin', name), 0o755);
  };
  cgi('q', 'printf "query=%s\\n" "$QUERY_STRING"');
  cgi(
    'probe',
    [
      'target="${QUERY_STRING%:*}"; port="${QUERY_STRING##*:}"',
      'if out=$(busybox nc -w 3 "$target" "$port" </dev/null 2>&1); then echo "connected $out"; else echo "failed $out"; fi',
    ].join('\n'),
  );
  return root;
}

/** vmSpec is a ReplicaSpec for the busybox rootfs; `lines` collects what the replica logged. */
export function vmSpec(root: string, argv: string[], port = 8080): { spec: ReplicaSpec; lines: string[] } {
  const lines: string[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'skiff-vm-replica-'));
  const spec: ReplicaSpec = {
    id: `default.vm-test.${randomBytes(3).toString('hex')}`,
    namespace: 'default',
    function: 'vm-test',
    image: { digest: `sha256:${'1'.repeat(64)}`, reference: `test:${root}`, rootfs: root, config: {}, sizeBytes: 0 },
    argv,
    env: { PORT: String(port), PATH: '/bin' },
    workingDir: '/www',
    port,
    resources: {},
    dir,
    log: (stream, line) => lines.push(`${stream}: ${line}`),
  };
  return { spec, lines };
}

/** alive says whether a host process exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** qemuProcesses lists host PIDs whose command line mentions `needle` (for leak checks). */
export function qemuProcesses(needle: string): number[] {
  const pids: number[] = [];
  for (const p of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      if (cmd.includes('qemu-system') && cmd.includes(needle)) pids.push(Number(p));
    } catch {
      // gone
    }
  }
  return pids;
}

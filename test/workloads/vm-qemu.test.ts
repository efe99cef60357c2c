import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type Replica, type ReplicaSpec, WorkloadError } from '../../src/workloads/index.js';
import { QemuHandler } from '../../src/workloads/vm/index.js';

import { alive, busyboxRootfs, qemuProcesses, REPO, vmHostReady, vmSpec } from './vm-fixture.js';

const ready = vmHostReady();

async function get(port: number, path: string, timeoutMs = 20_000): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(timeoutMs) });
  return { status: res.status, body: await res.text() };
}

/** firstAnswer polls until the replica's HTTP server answers (a closed guest port is refused at once). */
async function firstAnswer(port: number, path: string, deadlineMs = 30_000): Promise<{ status: number; body: string }> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    try {
      return await get(port, path, 5_000);
    } catch (err) {
      if (Date.now() > end) throw err;
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

function tcpPort(r: Replica): number {
  if (r.endpoint.kind !== 'tcp') throw new Error('expected a tcp endpoint');
  expect(r.endpoint.host).toBe('127.0.0.1');
  return r.endpoint.port;
}

describe.skipIf(!ready)('qemu runtime-class handler (microvm)', () => {
  let work: string;
  let root: string;
  let handler: QemuHandler;
  const dirs: string[] = [];
  const track = (s: { spec: ReplicaSpec; lines: string[] }) => (dirs.push(s.spec.dir), s);

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'skiff-vm-test-'));
    root = busyboxRootfs(work);
    handler = new QemuHandler({ cacheDir: join(work, 'cache') });
  });

  afterAll(() => {
    expect(qemuProcesses(work)).toEqual([]);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  });

  describe('a VM serving HTTP with busybox httpd', () => {
    let replica: Replica;
    let spec: ReplicaSpec;
    let lines: string[];
    let port: number;
    let hostServer: Server;
    let hostPort: number;
    let hostConnections = 0;

    beforeAll(async () => {
      hostServer = createServer((s) => (hostConnections++, s.end('secret\n')));
      await new Promise<void>((r) => hostServer.listen(0, '0.0.0.0', r));
      hostPort = (hostServer.address() as { port: number }).port;
      ({ spec, lines } = track(
        vmSpec(root, ['/bin/sh', '-c', 'trap "echo got-term; kill $pid; exit 0" TERM; busybox httpd -f -vv -p "$PORT" -h /www & pid=$!; echo serving on $PORT; wait $pid']),
      ));
      const t0 = Date.now();
      replica = await handler.start(spec);
      const started = Date.now() - t0;
      port = tcpPort(replica);
      await firstAnswer(port, '/');
      console.log(`vm cold start (initramfs not cached): start() ${started} ms, first HTTP answer ${Date.now() - t0} ms; QEMU RSS ${Math.round((replica.stats?.()?.memoryBytes ?? 0) / 2 ** 20)} MiB`);
    }, 90_000);

    afterAll(async () => {
      await replica?.stop(0);
      await new Promise((r) => hostServer.close(r));
    });

    it('answers HTTP through the forwarded loopback port, the query string unchanged', async () => {
      expect(await get(port, '/')).toEqual({ status: 200, body: 'hello from the vm\n' });
      const q = await get(port, '/cgi-bin/q?a=1&b=%20x&c=%2Fy&d');
      expect(q.status).toBe(200);
      expect(q.body).toBe('query=a=1&b=%20x&c=%2Fy&d\n');
    });

    it('sends the console to the log: the workload output and its own lines', () => {
      expect(lines).toContain('console: serving on 8080');
      expect(lines.some((l) => l.startsWith('console:') && l.includes('url:/cgi-bin/q'))).toBe(true);
    });

    it('reports the isolation it applied, read back from the QEMU process', () => {
      expect(replica.isolation).toMatchObject({
        handler: 'qemu',
        namespaces: [],
        capabilities: 'none (guest kernel)',
        seccomp: 'QEMU sandbox',
        noNewPrivs: true,
        limits: 'vm',
        network: 'qemu user-mode, restricted, hostfwd',
      });
      expect(replica.isolation.machine).toMatch(/^microvm, (TCG|KVM), 256 MiB$/);
      expect(replica.pid).toBeGreaterThan(0);
      expect(replica.stats?.()?.memoryBytes).toBeGreaterThan(16 * 2 ** 20);
    });

    it('cannot reach the host: 10.0.2.2 and the host addresses are cut off by restrict=on', async () => {
      const hostAddrs = Object.values(networkInterfaces())
        .flat()
        .filter((a) => a && a.family === 'IPv4' && !a.internal)
        .map((a) => a!.address);
      const targets = ['10.0.2.2', ...hostAddrs];
      // The same tool reaches the guest's own server, so a failure below is the network's doing.
      const control = await get(port, '/cgi-bin/probe?10.0.2.15:8080');
      expect(control.body).toMatch(/^connected/);
      const results = await Promise.all(targets.map((t) => get(port, `/cgi-bin/probe?${t}:${hostPort}`)));
      for (const [i, r] of results.entries()) {
        expect(r.body, `guest -> ${targets[i]}:${hostPort}`).toMatch(/^failed/);
        // A silently dropped SYN (slirp's restrict) times out; no route would say unreachable.
        expect(r.body, `guest -> ${targets[i]}:${hostPort}`).not.toMatch(/unreachable/i);
        expect(r.body).not.toContain('secret');
      }
      expect(hostConnections).toBe(0);
    });

    it('stop() asks the workload to stop, waits for it, and leaves no process or file', async () => {
      const pid = replica.pid!;
      const exit = await replica.stop(15_000);
      expect(exit).toMatchObject({ reason: 'Stopped', code: 0 });
      expect(lines).toContain('console: got-term');
      expect(alive(pid)).toBe(false);
      expect(readdirSync(spec.dir)).toEqual([]);
      expect(await replica.stop(0)).toBe(exit);
    });
  });

  it("a workload that exits at once ends the VM with its exit code, having run as the image's user", async () => {
    const { spec, lines } = track(vmSpec(root, ['/bin/sh', '-c', 'echo ids $(id -u) $(id -g); echo leaving; exit 7']));
    spec.user = { uid: 1000, gid: 1001 };
    const t0 = Date.now();
    const replica = await handler.start(spec);
    const exit = await replica.exited;
    console.log(`vm boot to exit (initramfs cached): ${Date.now() - t0} ms`);
    expect(exit).toMatchObject({ reason: 'Error', code: 7, signal: null });
    expect(lines).toContain('console: leaving');
    expect(lines).toContain('console: ids 1000 1001');
    expect(alive(replica.pid!)).toBe(false);
    expect(readdirSync(spec.dir)).toEqual([]);
  }, 60_000);

  it('a workload that ignores SIGTERM is killed with its VM once the grace period is over', async () => {
    const { spec, lines } = track(vmSpec(root, ['/bin/sh', '-c', 'trap "echo ignored" TERM; echo stubborn; while :; do sleep 1; done']));
    const replica = await handler.start(spec);
    const until = Date.now() + 20_000;
    while (!lines.includes('console: stubborn') && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    const t0 = Date.now();
    const exit = await replica.stop(1_500);
    const took = Date.now() - t0;
    expect(exit).toMatchObject({ reason: 'Stopped', code: null, signal: 'SIGKILL', message: 'the VM was stopped' });
    expect(took).toBeGreaterThanOrEqual(1_400);
    expect(took).toBeLessThan(8_000);
    expect(lines).toContain('console: ignored');
    expect(alive(replica.pid!)).toBe(false);
    expect(readdirSync(spec.dir)).toEqual([]);
  }, 60_000);

  it('a workload that panics the guest kernel ends the replica with KernelPanic', async () => {
    const { spec, lines } = track(vmSpec(root, ['/bin/sh', '-c', 'echo c > /proc/sysrq-trigger; sleep 30']));
    const replica = await handler.start(spec);
    const exit = await replica.exited;
    expect(exit.reason).toBe('KernelPanic');
    expect(exit.message).toMatch(/sysrq/i);
    expect(lines.some((l) => l.includes('Kernel panic - not syncing'))).toBe(true);
    expect(alive(replica.pid!)).toBe(false);
  }, 60_000);

  it('a guest whose init cannot run panics at boot: start() rejects with KernelPanic and leaves nothing', async () => {
    const broken = join(work, 'not-an-init');
    writeFileSync(broken, 'this is not an executable\n', { mode: 0o755 });
    const bad = new QemuHandler({ cacheDir: join(work, 'cache'), initBinary: broken });
    const { spec } = track(vmSpec(root, ['/bin/true']));
    const err = await bad.start(spec).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkloadError);
    expect((err as WorkloadError).reason, (err as Error).message).toBe('KernelPanic');
    expect((err as Error).message).toMatch(/Requested init \/\.skiff\/init failed|No working init found/);
    expect(readdirSync(spec.dir)).toEqual([]);
    expect(qemuProcesses(spec.dir)).toEqual([]);
  }, 60_000);

  it('QEMU dies with its Node parent, even when the parent is SIGKILLed', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'test', 'workloads', 'vm-parent.ts'), join(work, 'cache'), root], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    const info = await new Promise<{ pid: number; dir: string }>((resolve, reject) => {
      const timer = setTimeout(() => (child.kill('SIGKILL'), reject(new Error(`the parent did not start its VM: ${err}`))), 60_000);
      child.stdout.once('data', (d: Buffer) => (clearTimeout(timer), resolve(JSON.parse(d.toString()))));
    });
    dirs.push(info.dir);
    expect(alive(info.pid)).toBe(true);
    child.kill('SIGKILL');
    const end = Date.now() + 5_000;
    while (alive(info.pid) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    expect(alive(info.pid)).toBe(false);
  }, 90_000);

  it('says what to install when QEMU or the kernel is missing, and start() refuses', async () => {
    const noQemu = new QemuHandler({ cacheDir: join(work, 'cache'), qemu: join(work, 'no-such-qemu') });
    expect(await noQemu.unavailable()).toMatch(/^install qemu-system-x86 and linux-image-cloud-amd64/);
    const noKernel = new QemuHandler({ cacheDir: join(work, 'cache'), kernel: join(work, 'vmlinuz-none') });
    expect(await noKernel.unavailable()).toMatch(/^install qemu-system-x86 and linux-image-cloud-amd64/);
    const { spec } = track(vmSpec(root, ['/bin/true']));
    const err = await noKernel.start(spec).catch((e: unknown) => e);
    expect((err as WorkloadError).reason).toBe('HandlerUnavailable');
    expect(await handler.unavailable()).toBeUndefined();
  });

  it('refuses a VM too small to hold its image, before booting it', async () => {
    const { spec } = track(vmSpec(root, ['/bin/true']));
    spec.resources.memoryBytes = 64 * 2 ** 20;
    const err = await handler.start(spec).catch((e: unknown) => e);
    expect((err as WorkloadError).reason).toBe('StartFailed');
    expect((err as Error).message).toMatch(/raise it/);
    expect(existsSync(join(spec.dir, 'vm-initrd.cpio'))).toBe(false);
  });
});

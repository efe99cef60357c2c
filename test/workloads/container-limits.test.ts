import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { BwrapHandler, RuncHandler } from '../../src/workloads/container/index.js';
import type { RuntimeHandler } from '../../src/workloads/index.js';

import { buildNative, type Fixture, HANDLERS, hostPidsOf, makeFixture, runToEnd, usable, waitHttp, waitNoLeftovers } from './container-helpers.js';

const REPO = resolve(import.meta.dirname, '..', '..');

/** alive: the process exists and is not a zombie (a zombie holds nothing but its number). */
function alive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

describe('container handlers report why they cannot run', () => {
  it('names the missing tool or helper, and start() refuses with HandlerUnavailable', async () => {
    expect(await new BwrapHandler({ bwrap: '/nonexistent/bwrap' }).unavailable()).toBe('install bubblewrap');
    expect(await new RuncHandler({ runc: '/nonexistent/runc' }).unavailable()).toBe('install runc');
    const noInit = 'build the native helpers: install gcc and run npm run build';
    expect(await new BwrapHandler({ init: '/nonexistent/skiff-init' }).unavailable()).toBe(noInit);
    expect(await new RuncHandler({ init: '/nonexistent/skiff-init' }).unavailable()).toBe(noInit);
    await expect(new BwrapHandler({ bwrap: '/nonexistent/bwrap' }).start({} as never)).rejects.toMatchObject({ reason: 'HandlerUnavailable', message: 'handler bwrap: install bubblewrap' });
  });

  it.skipIf(!usable(['bwrap']))('says so when runc or bwrap is present but cannot work here', async () => {
    buildNative();
    const base = mkdtempSync(join(tmpdir(), 'skiff-ct-'));
    chmodSync(base, 0o755);
    try {
      const broken = join(base, 'broken-tool');
      writeFileSync(broken, '#!/bin/sh\necho "cannot create user namespace: Operation not permitted" >&2\nexit 1\n');
      chmodSync(broken, 0o755);
      const runc = await new RuncHandler({ runc: broken }).unavailable();
      expect(runc).toMatch(/^runc does not run here: cannot create user namespace/);
      const bwrap = await new BwrapHandler({ bwrap: broken }).unavailable();
      expect(bwrap).toMatch(/^bubblewrap cannot make an unprivileged sandbox here \(cannot create user namespace.*allow unprivileged user namespaces/);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});

for (const h of HANDLERS) {
  describe.skipIf(!usable(h.needs))(`container limits and lifecycle (${h.name})`, () => {
    let fx: Fixture;
    let handler: RuntimeHandler;

    beforeAll(() => {
      buildNative();
      fx = makeFixture();
      handler = h.make();
    });

    afterEach(async () => {
      expect(await waitNoLeftovers()).toEqual({ processes: [], cgroups: [], mounts: [] });
    });

    afterAll(() => {
      try {
        for (const d of readdirSync(fx.base).filter((n) => /^r\d+$/.test(n))) expect(readdirSync(join(fx.base, d))).toEqual([]);
      } finally {
        fx.cleanup();
      }
    });

    it('stops a fork bomb at the pids limit and the host carries on', async () => {
      const spec = fx.spec('forkbomb', ['/bin/attack', 'forkbomb', '1000'], { resources: { memoryBytes: 128 << 20, pids: 32 } });
      const replica = await handler.start(spec);
      try {
        await expect.poll(() => spec.lines.some((l) => l.line.startsWith('forked=')), { timeout: 10_000, interval: 50 }).toBe(true);
        const [, forked, failed] = /^forked=(\d+) failed=(\d+)$/.exec(spec.lines.find((l) => l.line.startsWith('forked='))!.line)!.map(Number);
        expect(forked).toBeLessThan(32);
        expect(failed).toBeGreaterThan(1000 - 32);
        // The launcher (bwrap or runc) counts too, so the sandbox holds at most the limit.
        expect(hostPidsOf(replica).length).toBeLessThanOrEqual(32 + 1);
        expect(replica.isolation.limits).toMatch(/^(cgroup-v1|cgroup-v2|rlimit)$/);
        // The host still forks.
        const r = await new Promise<number | null>((res) => spawn('true').on('exit', res));
        expect(r).toBe(0);
      } finally {
        const exit = await replica.stop(200);
        expect(exit.reason).toBe('Stopped');
      }
    });

    it('ends an allocation past the memory limit (OOMKilled with a cgroup, allocation failure with rlimits)', async () => {
      const { exit, out, replica } = await runToEnd(handler, fx.spec('oom', ['/bin/attack', 'alloc', '512'], { resources: { memoryBytes: 48 << 20, pids: 32 } }));
      expect(out).not.toMatch(/allocated all/);
      if (replica.isolation.limits === 'rlimit') {
        expect(exit).toMatchObject({ reason: 'Error', code: 12 });
        expect(out).toMatch(/alloc failed at \d+ MiB/);
      } else {
        expect(exit).toMatchObject({ reason: 'OOMKilled', signal: 'SIGKILL' });
      }
    });

    it('kills a process that ignores SIGTERM once the grace period is over', async () => {
      const spec = fx.spec('stubborn', ['/bin/sh', '-c', 'trap "" TERM; echo ready; while :; do sleep 1; done']);
      const replica = await handler.start(spec);
      await expect.poll(() => spec.lines.some((l) => l.line === 'ready'), { timeout: 5000 }).toBe(true);
      const pids = hostPidsOf(replica);
      const t0 = Date.now();
      const exit = await replica.stop(700);
      const took = Date.now() - t0;
      expect(took).toBeGreaterThanOrEqual(650);
      expect(took).toBeLessThan(5000);
      expect(exit.reason).toBe('Stopped');
      expect(pids.filter(alive)).toEqual([]);
      // A second stop returns the same outcome at once.
      expect(await replica.stop(700)).toBe(exit);
    });

    it('passes SIGTERM to a process that honours it, well within the grace period', async () => {
      const spec = fx.spec('polite', ['/bin/sh', '-c', 'trap "echo got-term; exit 0" TERM; echo ready; while :; do sleep 0.1; done']);
      const replica = await handler.start(spec);
      await expect.poll(() => spec.lines.some((l) => l.line === 'ready'), { timeout: 5000 }).toBe(true);
      const t0 = Date.now();
      const exit = await replica.stop(10_000);
      expect(Date.now() - t0).toBeLessThan(3000);
      expect(exit).toMatchObject({ reason: 'Stopped', code: 0 });
      expect(spec.lines.map((l) => l.line)).toContain('got-term');
    });

    it('reports a process that exits at once as an Error with its code, and a clean exit as Completed', async () => {
      const failed = await runToEnd(handler, fx.spec('exit3', ['/bin/sh', '-c', 'echo bye >&2; exit 3']));
      expect(failed.exit).toMatchObject({ reason: 'Error', code: 3, signal: null, message: 'exited with code 3' });
      expect(failed.err).toContain('bye');
      const ok = await runToEnd(handler, fx.spec('exit0', ['/bin/sh', '-c', 'exit 0']));
      expect(ok.exit).toMatchObject({ reason: 'Completed', code: 0 });
    });

    it('refuses to start a command that is not in the image, leaving nothing behind', async () => {
      const spec = fx.spec('missing', ['/bin/no-such-program']);
      await expect(handler.start(spec)).rejects.toMatchObject({ reason: 'StartFailed', message: expect.stringMatching(/cannot run "\/bin\/no-such-program" in image test-image: no such file in the image/) });
      expect(readdirSync(spec.dir)).toEqual([]);
    });

    it('leaves nothing running when Skiff itself is SIGKILLed', async () => {
      const dir = fx.specDir();
      const script = join(fx.base, `holder-${h.name}.mts`);
      writeFileSync(
        script,
        `import { ${h.name === 'bwrap' ? 'BwrapHandler as H' : 'RuncHandler as H'} } from ${JSON.stringify(join(REPO, 'src/workloads/container/index.ts'))};
const handler = new H();
const r = await handler.start({ id: 'holder.fn.0', namespace: 'holder', function: 'fn', image: { digest: 'sha256:0', reference: 'test', rootfs: ${JSON.stringify(fx.rootfs)}, config: {}, sizeBytes: 0 },
  argv: ['/bin/httpd', '-f', '-p', '127.0.0.1:8080', '-h', '/www'], env: { PATH: '/bin', PORT: '8080' }, workingDir: '/www', port: 8080,
  resources: { memoryBytes: 64 << 20, pids: 64 }, dir: ${JSON.stringify(dir)}, log: () => {} });
process.stdout.write(JSON.stringify({ pid: r.pid, endpoint: r.endpoint }) + '\\n');
setInterval(() => {}, 1000);
`,
      );
      const holder = spawn(process.execPath, ['--import', 'tsx', script], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
      try {
        const line = await new Promise<string>((res, rej) => {
          const t = setTimeout(() => rej(new Error('the holder did not start its replica')), 20_000);
          createInterface({ input: holder.stdout! }).once('line', (l) => {
            clearTimeout(t);
            res(l);
          });
        });
        const started = JSON.parse(line) as { pid: number; endpoint: { path: string } };
        expect((await waitHttp(started.endpoint.path, '/index.html')).body).toBe('hello from the container\n');
        const pids = hostPidsOf({ pid: started.pid } as never);
        expect(pids.length).toBeGreaterThanOrEqual(3);
        const gone = new Promise((r) => holder.once('exit', r));
        holder.kill('SIGKILL');
        await expect.poll(() => pids.filter(alive), { timeout: 5000, interval: 50 }).toEqual([]);
        await gone;
        // Its (empty) cgroups outlive it; the next handler to start a replica removes them.
        const stale = () => readdirSync('/sys/fs/cgroup', { withFileTypes: true }).some((c) => c.isDirectory() && findNamed(join('/sys/fs/cgroup', c.name), `skiff-${holder.pid}-`, 4));
        const sweeper = h.make();
        const { exit } = await runToEnd(sweeper, fx.spec('sweep', ['/bin/sh', '-c', 'exit 0']));
        expect(exit.reason).toBe('Completed');
        expect(stale()).toBe(false);
      } finally {
        holder.kill('SIGKILL');
      }
      // Files stay in the replica directory (Skiff had no chance to remove them); the manager removes it.
      expect(existsSync(join(dir, 'http.sock'))).toBe(true);
      for (const e of readdirSync(dir)) rmSync(join(dir, e), { recursive: true, force: true });
    });

    it('reports its memory use and runs under its CPU quota', async () => {
      const spec = fx.spec('stats', ['/bin/sh', '-c', 'echo ready; sleep 30'], { resources: { memoryBytes: 64 << 20, pids: 32, cpuMillis: 250 } });
      const replica = await handler.start(spec);
      try {
        await expect.poll(() => spec.lines.some((l) => l.line === 'ready'), { timeout: 5000 }).toBe(true);
        const stats = replica.stats?.();
        if (replica.isolation.limits !== 'rlimit') expect(stats?.memoryBytes).toBeGreaterThan(0);
        if (replica.isolation.limits === 'cgroup-v1') {
          // The sleeping shell's cpu cgroup, read from the host, carries a quarter of a core.
          // "ready" is printed before the shell execs sleep: wait for the sleep process itself.
          const findSleeper = () => hostPidsOf(replica).find((p) => { try { return readFileSync(`/proc/${p}/cmdline`, 'utf8').startsWith('sleep'); } catch { return false; } });
          await expect.poll(findSleeper, { timeout: 5000 }).toBeDefined();
          const sleeper = findSleeper()!;
          const cpuPath = /^\d+:cpu:(.*)$/m.exec(readFileSync(`/proc/${sleeper}/cgroup`, 'utf8'))![1]!;
          expect(cpuPath).toContain(`skiff-${process.pid}-`);
          const dir = join('/sys/fs/cgroup/cpu', cpuPath.split('/').slice(0, cpuPath.split('/').findIndex((c) => c.startsWith('skiff-')) + 1).join('/'));
          expect(readFileSync(join(dir, 'cpu.cfs_quota_us'), 'utf8').trim()).toBe('25000');
          expect(readFileSync(join(dir, 'cpu.cfs_period_us'), 'utf8').trim()).toBe('100000');
        }
      } finally {
        await replica.stop(100);
      }
    });
  });
}

function findNamed(dir: string, prefix: string, depth: number): boolean {
  if (depth < 0) return false;
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return false;
  }
  return entries.some((e) => e.isDirectory() && (e.name.startsWith(prefix) || findNamed(join(dir, e.name), prefix, depth - 1)));
}



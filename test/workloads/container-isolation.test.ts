import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import { join } from 'node:path';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import type { RuntimeHandler } from '../../src/workloads/index.js';

import { buildNative, type Fixture, HANDLERS, hostPidsOf, makeFixture, results, runToEnd, statusOf, usable, waitHttp, waitNoLeftovers } from './container-helpers.js';

/** Every call the profile must refuse with EPERM (clone3 answers ENOSYS so libc falls back to clone). */
const DENIED = [
  'mount', 'umount2', 'pivot_root', 'kexec_load', 'kexec_file_load', 'bpf', 'init_module', 'finit_module', 'delete_module', 'reboot',
  'swapon', 'swapoff', 'setns', 'open_by_handle_at', 'keyctl', 'add_key', 'request_key', 'perf_event_open', 'userfaultfd', 'chroot',
  'sethostname', 'socket_vsock', 'unshare_user', 'unshare_ns', 'unshare_net', 'ptrace_traceme', 'clone_newuser', 'personality_exec',
];
const EPERM = 1;
const ENOSYS = 38;

/** A digest of every path, mode and content under a directory: the image must be unchanged by any replica. */
function treeDigest(dir: string): string {
  const h = createHash('sha256');
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = statSync(p, { throwIfNoEntry: false });
      h.update(`${p} ${st?.mode} ${st?.size} ${st?.mtimeMs}\n`);
      if (st?.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return h.digest('hex');
}

for (const h of HANDLERS) {
  describe.skipIf(!usable(h.needs))(`container isolation (${h.name})`, () => {
    let fx: Fixture;
    let handler: RuntimeHandler;
    let imageDigest: string;

    beforeAll(() => {
      buildNative();
      fx = makeFixture();
      handler = h.make();
      imageDigest = treeDigest(fx.rootfs);
    });

    afterEach(async () => {
      expect(await waitNoLeftovers()).toEqual({ processes: [], cgroups: [], mounts: [] });
    });

    afterAll(() => {
      try {
        // No replica wrote the shared image, and every replica directory was emptied by its handler.
        expect(treeDigest(fx.rootfs)).toBe(imageDigest);
        for (const d of readdirSync(fx.base).filter((n) => /^r\d+$/.test(n))) expect(readdirSync(join(fx.base, d))).toEqual([]);
      } finally {
        fx.cleanup();
      }
    });

    it('is available on this host', async () => {
      expect(await handler.unavailable()).toBeUndefined();
    });

    it('runs with no capabilities, no_new_privs, a seccomp filter and an unprivileged host uid', async () => {
      const spec = fx.spec('status', ['/bin/sh', '-c', 'cat /proc/self/status; echo uidmap $(cat /proc/self/uid_map); sleep 30']);
      const replica = await handler.start(spec);
      try {
        await expect.poll(() => spec.lines.some((l) => l.line.startsWith('uidmap')), { timeout: 5000 }).toBe(true);
        const inside = Object.fromEntries(spec.lines.filter((l) => l.line.includes(':')).map((l) => [l.line.split(':')[0], l.line.split(':')[1]!.trim()]));
        expect(inside.CapEff).toBe('0000000000000000');
        expect(inside.CapPrm).toBe('0000000000000000');
        expect(inside.CapBnd).toBe('0000000000000000');
        expect(inside.NoNewPrivs).toBe('1');
        expect(inside.Seccomp).toBe('2');
        // Root inside is root of its own user namespace only.
        expect(inside.Uid!.split(/\s+/)[0]).toBe('0');
        // From the host: every process inside the sandbox runs as an unprivileged uid without
        // capabilities. With bwrap the sandbox tool itself does too; runc stays root outside, as a runtime.
        const ownPidNs = readlinkSync('/proc/self/ns/pid');
        const pids = hostPidsOf(replica).filter((pid) => h.name === 'bwrap' || readlinkSync(`/proc/${pid}/ns/pid`) !== ownPidNs);
        expect(pids.length).toBeGreaterThanOrEqual(2);
        // busybox sh execs its last command: the workload is `sleep 30` by now.
        const workload = pids.find((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('sleep'))!;
        for (const ns of ['user', 'pid', 'mnt', 'ipc', 'uts', 'net', 'cgroup']) {
          expect({ ns, same: readlinkSync(`/proc/${workload}/ns/${ns}`) === readlinkSync(`/proc/self/ns/${ns}`) }).toEqual({ ns, same: false });
        }
        for (const pid of pids) {
          const st = statusOf(pid);
          if (process.getuid?.() === 0) expect(st.Uid!.split(/\s+/)).toEqual(['65534', '65534', '65534', '65534']);
          expect(st.Uid!.split(/\s+/)).not.toContain('0');
          expect(st.CapEff).toBe('0000000000000000');
        }
        expect(replica.isolation).toMatchObject({ handler: h.name, capabilities: 'none', noNewPrivs: true, seccomp: 'RuntimeDefault' });
        expect(replica.isolation.namespaces).toEqual(expect.arrayContaining(['user', 'pid', 'mount', 'ipc', 'uts', 'net', 'cgroup']));
      } finally {
        expect((await replica.stop(100)).reason).toBe('Stopped');
      }
    });

    it('gets EPERM from every denied system call, which the same program outside the filter can make', async () => {
      const { exit, out } = await runToEnd(handler, fx.spec('syscalls', ['/bin/attack', 'syscalls']));
      expect(exit).toMatchObject({ reason: 'Completed', code: 0 });
      const inside = results(out);
      for (const name of DENIED) expect({ name, errno: inside[name] }).toEqual({ name, errno: EPERM });
      expect(inside.clone3).toBe(ENOSYS);
      expect(inside.getpid).toBe(0);
      expect(inside.personality_query).toBe(0);
      expect(inside.socket_inet).toBe(0);
      // int 0x80 reaches seccomp only where the kernel has the i386 ABI; without it the CPU faults (SIGSEGV).
      // Where it does, libseccomp (runc) kills a call of an architecture its filter does not list (SIGSYS).
      expect(h.name === 'bwrap' ? [EPERM, 211] : [EPERM, 211, 231]).toContain(inside.i386_getpid);
      // The x32 ABI: EPERM from the BPF filter; libseccomp (runc) kills the process instead (SIGSYS).
      expect(h.name === 'bwrap' ? [EPERM] : [EPERM, 231]).toContain(inside.x32_getpid);
      // The control run, as the same unprivileged uid without the filter, shows that the filter (not a
      // missing capability) refused these: outside they succeed or fail otherwise.
      const control = spawnSync(fx.attack, ['syscalls'], { encoding: 'utf8', ...(process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {}) });
      const outside = results(control.stdout);
      for (const name of ['keyctl', 'unshare_user', 'ptrace_traceme', 'clone_newuser', 'clone3', 'personality_exec', 'setns', 'perf_event_open', 'x32_getpid']) {
        expect({ name, outside: outside[name] }).not.toEqual({ name, outside: inside[name] });
      }
    });

    it('sees only its own processes and hostname', async () => {
      const { out } = await runToEnd(handler, fx.spec('ns', ['/bin/sh', '-c', 'echo pid1=$(cat /proc/1/cmdline | tr "\\0" " "); echo self=$$; echo host=$(hostname); ls /proc | grep -c "^[0-9]"']));
      expect(out).toMatch(/^pid1=\/\.skiff\/init /m);
      // The shell is one of the first processes of its own namespace (runc's set-up takes a few numbers).
      expect(Number(/^self=(\d+)$/m.exec(out)![1])).toBeLessThan(10);
      const host = /^host=(.*)$/m.exec(out)![1]!;
      expect(host).toMatch(/^t\d+-ns-\d+$/);
      expect(host).not.toBe(hostname());
      const visible = Number(out.split('\n')[3]);
      expect(visible).toBeLessThan(10);
      expect(readdirSync('/proc').filter((n) => /^\d+$/.test(n)).length).toBeGreaterThan(visible);
    });

    it('cannot reach a TCP server on the host loopback, nor any other host address', async () => {
      let accepted = 0;
      const server: Server = createServer((s) => {
        accepted++;
        s.destroy();
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const port = (server.address() as { port: number }).port;
      const hostIp = Object.values(networkInterfaces()).flat().find((i) => i && i.family === 'IPv4' && !i.internal)?.address;
      try {
        const direct = await runToEnd(handler, fx.spec('net', ['/bin/attack', 'connect', '127.0.0.1', String(port)]));
        // Its 127.0.0.1 is its own loopback, where nothing listens.
        expect(results(direct.out).connect).toBe(111 /* ECONNREFUSED */);
        const bb = await runToEnd(handler, fx.spec('net', ['/bin/sh', '-c', `nc -w 2 127.0.0.1 ${port} </dev/null; echo nc=$?; cat /proc/net/dev | grep -c :`]));
        expect(bb.out).toMatch(/^nc=1$/m);
        expect(bb.err).toMatch(/Connection refused/);
        // Only the loopback interface exists.
        expect(bb.out.split('\n').pop()).toBe('1');
        if (hostIp) {
          const other = await runToEnd(handler, fx.spec('net', ['/bin/attack', 'connect', hostIp, String(port)]));
          expect(results(other.out).connect).toBe(101 /* ENETUNREACH */);
        }
        expect(accepted).toBe(0);
      } finally {
        await new Promise((r) => server.close(r));
      }
    });

    it('cannot write the image, and sees no host file outside it', async () => {
      const secret = join(fx.base, 'host-secret.txt');
      writeFileSync(secret, 'do not read');
      const script = [
        'touch /bin/evil; echo bin=$?',
        'mkdir /evil; echo root=$?',
        'echo x > /www/index.html; echo www=$?',
        'echo ok > /tmp/scratch && cat /tmp/scratch',
        'echo shm > /dev/shm/x && cat /dev/shm/x',
        'echo gone > /dev/null && echo null=$?',
        'touch /dev/evil; echo dev=$?',
        `cat ${secret}; echo secret=$?`,
        'cat /etc/shadow; echo shadow=$?',
        'ls /sys | wc -l',
        'ls /',
      ].join('; ');
      const { out, err } = await runToEnd(handler, fx.spec('fs', ['/bin/sh', '-c', script]));
      expect(out).toMatch(/^bin=1$/m);
      expect(out).toMatch(/^root=1$/m);
      expect(out).toMatch(/^www=1$/m);
      expect(err).toMatch(/Read-only file system/);
      expect(out).toMatch(/^ok$/m);
      expect(out).toMatch(/^shm$/m);
      expect(out).toMatch(/^null=0$/m);
      // bwrap's /dev is read-only apart from /dev/shm; runc's is a small tmpfs, as Docker's.
      expect(out).toMatch(h.name === 'bwrap' ? /^dev=1$/m : /^dev=0$/m);
      expect(out).toMatch(/^secret=1$/m);
      expect(out).toMatch(/^shadow=1$/m);
      expect(out).not.toContain('do not read');
      const listing = out.split('\n').slice(out.split('\n').findIndex((l) => l === '0') + 1);
      expect(listing.sort()).toEqual(['.skiff', 'bin', 'data', 'dev', 'etc', 'proc', 'run', 'sbin', 'tmp', 'www'].filter((n) => n !== '.skiff').sort());
      expect(readFileSync(join(fx.rootfs, 'www', 'index.html'), 'utf8')).toBe('hello from the container\n');
    });

    it('answers HTTP through its Unix socket endpoint, the query string unchanged', async () => {
      const spec = fx.spec('http', ['/bin/httpd', '-f', '-p', '127.0.0.1:8080', '-h', '/www'], { workingDir: '/www' });
      const replica = await handler.start(spec);
      try {
        expect(replica.endpoint).toEqual({ kind: 'unix', path: join(spec.dir, 'http.sock') });
        const path = replica.endpoint.kind === 'unix' ? replica.endpoint.path : '';
        const answer = await waitHttp(path, '/cgi-bin/q?a=1&b=%20x&c=%2F..%2F');
        expect(answer).toEqual({ status: 200, body: 'query=a=1&b=%20x&c=%2F..%2F port=8080\n' });
        const page = await waitHttp(path, '/index.html');
        expect(page.body).toBe('hello from the container\n');
        // The socket belongs to the host's root alone.
        if (process.getuid?.() === 0) expect(statSync(path).mode & 0o777).toBe(0o600);
      } finally {
        await replica.stop(2000);
      }
    });

    it("runs as the image's user inside, an unprivileged id outside, and can still write /tmp", async () => {
      const spec = fx.spec('user', ['/bin/sh', '-c', 'echo ids $(id -u) $(id -g); touch /tmp/mine && echo wrote; sleep 30'], { user: { uid: 1000, gid: 1001 } });
      const replica = await handler.start(spec);
      try {
        await expect.poll(() => spec.lines.some((l) => l.line === 'wrote'), { timeout: 5000 }).toBe(true);
        expect(spec.lines.map((l) => l.line)).toContain('ids 1000 1001');
        const ownPidNs = readlinkSync('/proc/self/ns/pid');
        const findSleeper = () => hostPidsOf(replica).find((p) => { try { return readlinkSync(`/proc/${p}/ns/pid`) !== ownPidNs && readFileSync(`/proc/${p}/cmdline`, 'utf8').startsWith('sleep'); } catch { return false; } });
        await expect.poll(findSleeper, { timeout: 5000 }).toBeDefined();
        const st = statusOf(findSleeper()!);
        // bwrap maps the user onto the sandbox's one unprivileged host uid; runc onto BASE + uid.
        if (process.getuid?.() === 0) expect(st.Uid!.split(/\s+/)[0]).toBe(h.name === 'bwrap' ? '65534' : '101000');
        expect(st.Uid!.split(/\s+/)).not.toContain('0');
        expect(st.Gid!.split(/\s+/)).not.toContain('0');
      } finally {
        await replica.stop(100);
      }
    });

    it('gets exactly the environment and working directory of its spec', async () => {
      const { out } = await runToEnd(handler, fx.spec('env', ['/bin/sh', '-c', 'env | sort; pwd'], { env: { PATH: '/bin', PORT: '8080', GREETING: 'hi there' }, workingDir: '/www' }));
      const lines = out.split('\n');
      expect(lines.pop()).toBe('/www');
      // busybox sh adds PWD and SHLVL of its own; nothing of the host's environment arrives.
      expect(lines.filter((l) => !/^(PWD|SHLVL|OLDPWD)=/.test(l))).toEqual(['GREETING=hi there', 'PATH=/bin', 'PORT=8080']);
    });
  });
}

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';

import type { Registry } from '../../src/oci/index.js';
import { HostDirs } from '../../src/security/index.js';
import { ImageStore } from '../../src/workloads/image/index.js';
import { freePort, skopeo } from '../helpers/registry.js';
import { run } from '../helpers/run.js';
import { hasBinary } from '../helpers/system-deps.js';

const SCRIPT = join(import.meta.dirname, '..', '..', 'scripts', 'build-runtime-examples.mjs');
const tools = hasBinary('busybox') && hasBinary('skopeo');
const noRegistry = new Proxy({}, { get: () => () => Promise.reject(new Error('no registry in this test')) }) as Registry;

function build(out: string, env: NodeJS.ProcessEnv = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return run(process.execPath, [SCRIPT, '--out', out], { timeout: 60_000, env: { ...process.env, ...env } });
}

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, timeout: 5_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

describe.skipIf(!tools)('the runtime examples image (scripts/build-runtime-examples.mjs)', () => {
  let dir: string;
  let digest: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'skiff-example-image-'));
    const r = await build(join(dir, 'out'));
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    digest = r.stdout.trim().split('\n').pop()!;
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('builds a deterministic OCI layout that skopeo reads', async () => {
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    const layout = join(dir, 'out', 'image');
    expect((await build(join(dir, 'out'))).stdout).toContain(`image layout: ${layout}\n`);
    expect((await build(join(dir, 'again'))).stdout.trim().split('\n').pop()).toBe(digest);
    const info = JSON.parse(await skopeo(['inspect', `oci:${layout}`]));
    expect(info.Digest).toBe(digest);
    expect(info.Os).toBe('linux');
    expect(info.Layers).toHaveLength(2);
    const config = JSON.parse(await skopeo(['inspect', '--config', `oci:${layout}:latest`]));
    expect(config.config.Entrypoint[0]).toBe('/bin/sh');
    expect(config.rootfs.diff_ids).toHaveLength(2);
  });

  it('writes ready-to-apply manifests for the container and vm classes', () => {
    const layout = join(dir, 'out', 'image');
    for (const [file, cls, prefix] of [['container-hello.yaml', 'container', '/container'], ['vm-hello.yaml', 'vm', '/vm']] as const) {
      const docs = parseAllDocuments(readFileSync(join(dir, 'out', 'generated', file), 'utf8')).map((d) => d.toJSON());
      expect(docs.map((d) => d.kind)).toEqual(['Function', 'Route']);
      expect(docs[0].spec).toMatchObject({ runtimeClassName: cls, image: layout });
      expect(docs[1].spec.http[0].match[0].uri.prefix).toBe(prefix);
      expect(docs[1].spec.http[0].route[0].destination.function).toBe(docs[0].metadata.name);
    }
  });

  it('unpacks with ImageStore into a root file system whose httpd serves the CGI script', async () => {
    const data = join(dir, 'data');
    const store = new ImageStore({ dataDir: data, registry: noRegistry, hostDirs: HostDirs.from([dir]) });
    const img = await store.prepare(join(dir, 'out', 'image'));
    expect(img.digest).toBe(digest);
    expect(img.config.entrypoint?.[2]).toContain('httpd -f');
    expect(img.config.exposedPorts).toEqual(['8080/tcp']);
    expect(lstatSync(join(img.rootfs, 'bin/busybox')).mode & 0o7777).toBe(0o755);
    expect(readlinkSync(join(img.rootfs, 'bin/sh'))).toBe('busybox');
    expect(readFileSync(join(img.rootfs, 'www/cgi-bin/hello'), 'utf8')).toContain('hello from a container');
    if (process.getuid?.() !== 0) return;
    // As root, chroot stands in for a runtime: the image's own entrypoint, bound to loopback only.
    const port = await freePort();
    const argv = [...(img.config.entrypoint ?? []), ...(img.config.cmd ?? [])];
    const chroot = execFileSync('sh', ['-c', 'command -v chroot'], { encoding: 'utf8' }).trim();
    const proc: ChildProcess = spawn(chroot, [img.rootfs, ...argv], { env: { PATH: '/bin', PORT: `127.0.0.1:${port}` }, cwd: '/', stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    proc.stderr!.on('data', (d) => (stderr += d));
    try {
      let answer: { status: number; body: string } | undefined;
      for (const deadline = Date.now() + 10_000; !answer && Date.now() < deadline; ) {
        answer = await get(port, '/cgi-bin/hello?name=a%20b&x=1&y=%2F').catch(() => undefined);
        if (!answer) await new Promise((r) => setTimeout(r, 100));
      }
      expect(answer, stderr).toBeDefined();
      expect(answer!.status).toBe(200);
      expect(answer!.body).toContain('hello from a container\n');
      expect(answer!.body).toContain('query: name=a%20b&x=1&y=%2F\n');
      const index = await get(port, '/?q=1');
      expect(index.body).toContain('query: q=1\n');
    } finally {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3_000))]);
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    }
    // chroot execs the shell, which execs httpd: one process, now gone.
    expect(() => process.kill(proc.pid!, 0)).toThrow(/ESRCH/);
  });

  it('says what to install when busybox is missing', async () => {
    const r = await build(join(dir, 'none'), { SKIFF_BUSYBOX: join(dir, 'no-busybox-here') });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/apt-get install busybox-static/);
  });
});

import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { alive, descendants } from '../helpers/processes.js';
import { startWithExampleImage } from '../helpers/runtime-examples.js';
import { apiFetch, cli, type RunningSkiff, waitFor } from '../helpers/skiff-process.js';
import { hasBinary } from '../helpers/system-deps.js';

const tools = hasBinary('qemu-system-x86_64') && hasBinary('busybox') && hasBinary('cc');

describe.skipIf(!tools)('vm Functions behind the gateway', () => {
  let s: RunningSkiff;
  let dir: string;

  const status = async (name: string) => ((await (await apiFetch(s, `/apis/skiff.dev/v1/namespaces/default/functions/${name}`)).json()) as { status?: any }).status;

  beforeAll(async () => {
    ({ skiff: s, dir } = await startWithExampleImage('skiff-vm-'));
  }, 90_000);

  afterAll(async () => {
    await s?.stop();
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('boots the example image as a micro-VM behind a Route, next to the Wasm demo', async () => {
    const applied = await cli(['apply', '-f', join(dir, 'generated', 'vm-hello.yaml')], { skiff: s });
    expect(applied.code, applied.stderr).toBe(0);
    await waitFor(async () => (await status('vm-hello'))?.readyReplicas === 1, 'vm-hello ready', 60_000);
    const r = await fetch(`${s.gateway}/vm?via=vm&x=%2F`);
    const body = await r.text();
    expect(r.status).toBe(200);
    expect(body).toContain('query: via=vm&x=%2F');
    // The guest's own kernel answers, not the host's.
    const hostKernel = spawnSync('uname', ['-r'], { encoding: 'utf8' }).stdout.trim();
    expect(body).toMatch(/kernel: \S*cloud-amd64/);
    expect(body).not.toContain(`kernel: ${hostKernel}`);
    expect((await fetch(`${s.gateway}/hello`)).status).toBe(200);
    const st = await status('vm-hello');
    expect(st.runtimeClassName).toBe('vm/qemu');
    expect(st.isolation).toMatchObject({ handler: 'qemu', limits: 'vm' });
    expect(st.isolation.network).toContain('restrict');
    const logs = await cli(['logs', 'vm-hello'], { skiff: s });
    expect(logs.stdout).toMatch(/Linux version|skiff-vminit/);
  }, 120_000);

  it('stops the VM with its Function', async () => {
    const qemu = descendants(s.proc.pid!).filter((pid) => readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('qemu'));
    expect(qemu.length).toBe(1);
    expect((await cli(['delete', 'fn', 'vm-hello'], { skiff: s })).code).toBe(0);
    await waitFor(() => qemu.filter(alive).length === 0, 'QEMU gone', 20_000);
    expect((await fetch(`${s.gateway}/vm`)).status).toBe(503);
  }, 60_000);
});

import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { buildImage, writeLayout } from '../helpers/oci-image.js';
import { alive, descendants } from '../helpers/processes.js';
import { startWithExampleImage } from '../helpers/runtime-examples.js';
import { apiFetch, cli, type RunningSkiff, startSkiff, waitFor } from '../helpers/skiff-process.js';
import { hasBinary } from '../helpers/system-deps.js';

const tools = hasBinary('bwrap') && hasBinary('busybox') && hasBinary('cc');

describe.skipIf(!tools)('container Functions behind the gateway', () => {
  let s: RunningSkiff;
  let dir: string;
  let image: string;

  const fn = (name: string, extra: string) => `apiVersion: skiff.dev/v1
kind: Function
metadata: { name: ${name}, namespace: default }
spec:
  runtimeClassName: container
  image: ${image}
${extra}`;
  const route = (name: string, prefix: string, dests: string, rewrite = '/cgi-bin/hello') => `apiVersion: skiff.dev/v1
kind: Route
metadata: { name: ${name}, namespace: default }
spec:
  hosts: ["*"]
  http:
    - match: [{ uri: { prefix: ${prefix} } }]
      rewrite: { uri: ${rewrite} }
      route: ${dests}
`;
  const apply = async (yaml: string) => {
    const r = await cli(['apply', '-f', '-'], { skiff: s, input: yaml });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  };
  const status = async (name: string) => ((await (await apiFetch(s, `/apis/skiff.dev/v1/namespaces/default/functions/${name}`)).json()) as { status?: any }).status;
  const ready = async (name: string) => ((await status(name))?.conditions ?? []).find((c: { type: string }) => c.type === 'Ready');
  const get = async (path: string) => {
    const r = await fetch(`${s.gateway}${path}`);
    return { status: r.status, body: await r.text(), headers: Object.fromEntries(r.headers) };
  };

  beforeAll(async () => {
    ({ skiff: s, dir, image } = await startWithExampleImage('skiff-ct-'));
  }, 90_000);

  afterAll(async () => {
    await s?.stop();
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('serves a container Function through a Route, query string unchanged, and shows its isolation', async () => {
    await apply(fn('web', '  port: 8080\n') + '---\n' + route('web', '/container', '[{ destination: { function: web } }]'));
    await waitFor(async () => (await ready('web'))?.status === 'True', 'web Ready', 30_000);
    const r = await get('/container?name=a%20b&x=1&y=%2F');
    expect(r.status).toBe(200);
    expect(r.body).toContain('hello from a container');
    expect(r.body).toContain('query: name=a%20b&x=1&y=%2F');
    const st = await status('web');
    expect(st.runtimeClassName).toBe('container/bwrap');
    expect(st.readyReplicas).toBe(1);
    expect(st.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(st.isolation).toMatchObject({ handler: 'bwrap', capabilities: 'none', noNewPrivs: true, seccomp: 'RuntimeDefault' });
    expect(st.isolation.namespaces).toEqual(expect.arrayContaining(['user', 'pid', 'mount', 'ipc', 'uts', 'net']));
    const d = await cli(['describe', 'fn', 'web'], { skiff: s });
    expect(d.stdout).toContain('runtimeClassName: container/bwrap');
    expect(d.stdout).toMatch(/Ready\s+True\s+ReplicasReady/);
    // Replicas as a table with their state, and the isolation one property a line.
    expect(d.stdout).toMatch(/Replicas:\n\s+NAME\s+STATE\s+READY\s+RESTARTS/);
    expect(d.stdout).toMatch(/\n\s+default\.web\.\S+\s+Ready\s+yes\s+0\s/);
    expect(d.stdout).toMatch(/Isolation:\n\s+Handler:\s+bwrap\n/);
    expect(d.stdout).toMatch(/\n\s+Seccomp:\s+RuntimeDefault\n/);
    expect(d.stdout).toMatch(/\n\s+No new privileges:\s+yes\n/);
    const rc = await cli(['get', 'runtimeclasses', '-o', 'json'], { skiff: s });
    const items = JSON.parse(rc.stdout).items as Array<{ metadata: { name: string }; handler: string }>;
    expect(Object.fromEntries(items.map((i) => [i.metadata.name, i.handler]))).toMatchObject({ wasm: 'wasm', container: 'bwrap', vm: 'qemu' });
  }, 60_000);

  it('splits one Route 90/10 between a Wasm Function and a container', async () => {
    await apply(route('split', '/split', '[{ destination: { function: hello }, weight: 90 }, { destination: { function: web }, weight: 10 }]', '/'));
    let wasm = 0;
    let container = 0;
    for (let i = 0; i < 200; i++) {
      const r = await get('/split');
      expect(r.status).toBe(200);
      if (r.body.includes('hello from a container')) container++;
      else wasm++;
    }
    // 10% of 200 is 20; a fair draw lands well inside 5..45.
    expect(container).toBeGreaterThanOrEqual(5);
    expect(container).toBeLessThanOrEqual(45);
    expect(wasm + container).toBe(200);
  }, 60_000);

  it('cannot reach the API on the host loopback from inside, and its output reaches skiff logs', async () => {
    const api = new URL(s.api);
    const cmd = `echo probing; if wget -T 2 -q -O- http://127.0.0.1:${api.port}/version; then echo reached-api; else echo api-unreachable; fi; exec /bin/busybox httpd -f -p "$PORT" -h /www`;
    await apply(fn('prober', `  command: ["/bin/sh", "-c", ${JSON.stringify(cmd)}]\n`));
    await waitFor(async () => (await ready('prober'))?.status === 'True', 'prober Ready', 30_000);
    const logs = await waitFor(async () => {
      const r = await cli(['logs', 'prober'], { skiff: s });
      return /api-unreachable|reached-api/.test(r.stdout) ? r.stdout : undefined;
    }, 'the probe result in the logs', 15_000);
    expect(logs).toContain('probing');
    expect(logs).toContain('api-unreachable');
    expect(logs).not.toContain('reached-api');
    expect(logs).not.toContain('gitVersion');
  }, 60_000);

  it('backs off a process that exits at once (CrashLoopBackOff) and says why', async () => {
    await apply(fn('crasher', '  command: ["/bin/sh", "-c", "echo boom; exit 3"]\n'));
    const c = await waitFor(async () => {
      const r = await ready('crasher');
      return r?.reason === 'CrashLoopBackOff' ? r : undefined;
    }, 'CrashLoopBackOff', 30_000);
    expect(c.status).toBe('False');
    expect(c.message).toMatch(/back-off .*exit|code 3|status 3/);
    const st = await status('crasher');
    expect(st.replicaStatuses[0].lastExit).toMatchObject({ code: 3, reason: 'Error' });
    const r = await get('/crasher-none');
    expect(r.status).toBe(404);
  }, 60_000);

  it('reports a replica that never becomes ready, and a handler this host does not have', async () => {
    await apply(fn('unready', '  readinessProbe: { httpGet: { path: /nope }, periodSeconds: 1 }\n'));
    // The replica runs, but /nope answers 404: never ready, never sent traffic.
    await waitFor(async () => (await status('unready'))?.replicaStatuses?.[0]?.state === 'Starting', 'unready replica running', 20_000);
    const st = await status('unready');
    expect(st.readyReplicas).toBe(0);
    expect((await ready('unready'))?.status).not.toBe('True');

    await apply(`apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata: { name: gvisor }\nhandler: runsc\n`);
    await apply(fn('nohandler', '').replace('runtimeClassName: container', 'runtimeClassName: gvisor'));
    const c = await waitFor(async () => {
      const r = await ready('nohandler');
      return r?.status === 'False' ? r : undefined;
    }, 'HandlerUnavailable', 20_000);
    expect(c.reason).toBe('HandlerUnavailable');
    expect(c.message).toContain('runsc');
  }, 60_000);

  it('runs a module under a RuntimeClass of its own whose handler is wasm, and says when a class does not fit', async () => {
    const hello = ((await (await apiFetch(s, '/apis/skiff.dev/v1/namespaces/default/functions/hello')).json()) as { spec: { module: string } }).spec;
    const wasmFn = (name: string, cls: string) => `apiVersion: skiff.dev/v1\nkind: Function\nmetadata: { name: ${name}, namespace: default }\nspec: { runtimeClassName: ${cls}, module: ${JSON.stringify(hello.module)} }\n`;
    // The class does not exist yet: not Ready, and it says which class is missing.
    await apply(wasmFn('own-class', 'edge-wasm') + '---\n' + route('own-class', '/own-class', '[{ destination: { function: own-class } }]', '/'));
    const missing = await waitFor(async () => {
      const r = await ready('own-class');
      return r?.status === 'False' ? r : undefined;
    }, 'RuntimeClassNotFound', 20_000);
    expect(missing.reason).toBe('RuntimeClassNotFound');
    expect(missing.message).toContain('edge-wasm');
    // Creating the class is enough: the Function is requeued, loads and serves.
    await apply(`apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata: { name: edge-wasm }\nhandler: wasm\n`);
    await waitFor(async () => (await ready('own-class'))?.status === 'True', 'own-class Ready', 20_000);
    const r = await get('/own-class');
    expect(r.status).toBe(200);
    expect(r.body).not.toContain('hello from a container');

    // A module under a class whose handler runs images, and an image under one whose handler is wasm.
    await apply(`apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata: { name: sandboxed }\nhandler: bwrap\n`);
    await apply(wasmFn('module-on-bwrap', 'sandboxed'));
    await apply(fn('image-on-wasm', '').replace('runtimeClassName: container', 'runtimeClassName: edge-wasm'));
    for (const [name, needle] of [['module-on-bwrap', 'set spec.image'], ['image-on-wasm', 'set spec.module']] as const) {
      const c = await waitFor(async () => {
        const x = await ready(name);
        return x?.status === 'False' ? x : undefined;
      }, `${name} HandlerMismatch`, 20_000);
      expect(c.reason).toBe('HandlerMismatch');
      expect(c.message).toContain(needle);
    }
    // Neither a module nor an image: refused at admission, naming the field.
    const none = await cli(['apply', '-f', '-'], { skiff: s, input: `apiVersion: skiff.dev/v1\nkind: Function\nmetadata: { name: empty, namespace: default }\nspec: { runtimeClassName: edge-wasm }\n` });
    expect(none.code).not.toBe(0);
    expect(none.stderr).toMatch(/spec\.module.*RuntimeClass edge-wasm/);
  }, 60_000);

  it("adds the class's overhead to each replica's limits and keeps a class off a node its selector does not match", async () => {
    await apply(`apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata: { name: padded }\nhandler: bwrap\noverhead: { podFixed: { memory: 32Mi, cpu: 100m } }\nscheduling: { nodeSelector: { kubernetes.io/os: linux } }\n`);
    await apply(fn('padded', '  resources: { memory: 64Mi, cpu: 250m }\n').replace('runtimeClassName: container', 'runtimeClassName: padded'));
    await waitFor(async () => (await ready('padded'))?.status === 'True', 'padded Ready', 30_000);
    expect((await status('padded')).resources).toEqual({ memory: '96Mi', cpu: '350m', overhead: { memory: '32Mi', cpu: '100m' } });

    await apply(`apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata: { name: mainframe }\nhandler: bwrap\nscheduling: { nodeSelector: { kubernetes.io/arch: s390x } }\n`);
    await apply(fn('elsewhere', '').replace('runtimeClassName: container', 'runtimeClassName: mainframe'));
    const c = await waitFor(async () => {
      const r = await ready('elsewhere');
      return r?.status === 'False' ? r : undefined;
    }, 'Unschedulable', 20_000);
    expect(c.reason).toBe('Unschedulable');
    expect(c.message).toContain('kubernetes.io/arch=s390x');
    expect(c.message).toMatch(/this node has kubernetes\.io\/arch=(amd64|arm64)/);
    expect((await status('elsewhere')).replicas ?? 0).toBe(0);

    // An overhead in a unit Skiff cannot account is refused at admission, naming the field.
    const bad = await cli(['apply', '-f', '-'], { skiff: s, input: `apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata: { name: bad-overhead }\nhandler: bwrap\noverhead: { podFixed: { memory: lots } }\n` });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('overhead.podFixed.memory');
  }, 60_000);

  it('refuses an image whose layer escapes its root, naming the layer, and runs nothing', async () => {
    const evil = join(dir, 'evil');
    const img = await buildImage([{ entries: [{ name: 'bin/', type: 'directory' }, { name: '../../escaped', content: 'x' }] }], { config: { config: { Entrypoint: ['/bin/sh'] } } });
    writeLayout(evil, [img]);
    await apply(`apiVersion: skiff.dev/v1\nkind: Function\nmetadata: { name: evil, namespace: default }\nspec: { runtimeClassName: container, image: ${evil} }\n`);
    const c = await waitFor(async () => {
      const r = await ready('evil');
      return r?.status === 'False' ? r : undefined;
    }, 'evil refused', 20_000);
    expect(c.reason).toBe('LayerEscapesRoot');
    expect(c.message).toContain('../../escaped');
    expect((await status('evil')).replicas ?? 0).toBe(0);
    expect(existsSync(join(dir, '..', 'escaped'))).toBe(false);
    expect((await cli(['delete', 'fn', 'evil'], { skiff: s })).code).toBe(0);
  }, 60_000);

  it('starts a replica for the first request at zero (minScale 0) and stops it when idle', async () => {
    await apply(fn('lazy', '  scale: { minScale: 0, initialScale: 0, stableWindow: 6s, scaleToZeroGracePeriod: 2s }\n') + '---\n' + route('lazy', '/lazy', '[{ destination: { function: lazy } }]'));
    await waitFor(async () => (await ready('lazy'))?.reason === 'ScaledToZero', 'lazy at zero', 20_000);
    // Several requests at zero at once: the activator holds them all and lets them go when the replica is ready.
    const t0 = Date.now();
    const rs = await Promise.all([1, 2, 3].map((i) => get(`/lazy?first=${i}`)));
    for (const [i, r] of rs.entries()) {
      expect(r.status).toBe(200);
      expect(r.body).toContain(`query: first=${i + 1}`);
    }
    expect(Date.now() - t0).toBeLessThan(15_000);
    await waitFor(async () => (await status('lazy'))?.readyReplicas === 1, 'lazy scaled up', 10_000);
    await waitFor(async () => /activation|reactive/.test((await status('lazy'))?.autoscaler?.reason ?? ''), 'the autoscaler\'s reason in status', 10_000);
    // Idle for the 6 s stable window and the 2 s grace: back to zero.
    await waitFor(async () => (await status('lazy'))?.replicas === 0 && (await ready('lazy'))?.reason === 'ScaledToZero', 'lazy back at zero', 30_000).catch(async (err: Error) => {
      throw new Error(`${err.message}: ${JSON.stringify(await status('lazy'))}\n${s.stderr().split('\n').filter((l) => /autoscal|lazy/.test(l)).slice(-15).join('\n')}`);
    });
    const events = await cli(['describe', 'fn', 'lazy'], { skiff: s });
    expect(events.stdout).toMatch(/ScaledUp\s+\S+\s+\d+\s+0 → 1 replica\(s\): activation/);
    expect(events.stdout).toMatch(/ScaledDown\s+\S+\s+\d+\s+1 → 0 replica\(s\)/);
  }, 60_000);

  it('answers 503 at once to requests waiting at zero when their Function is deleted, and nothing hangs', async () => {
    // The replica needs 20 s to become ready: requests wait in the activator meanwhile.
    await apply(fn('slowstart', '  scale: { minScale: 0, initialScale: 0 }\n  readinessProbe: { httpGet: { path: / }, initialDelaySeconds: 20 }\n') + '---\n' + route('slowstart', '/slowstart', '[{ destination: { function: slowstart } }]'));
    await waitFor(async () => (await ready('slowstart'))?.reason === 'ScaledToZero', 'slowstart at zero', 20_000);
    const t0 = Date.now();
    const waiting = Promise.all([1, 2].map(() => get('/slowstart')));
    await new Promise((r) => setTimeout(r, 500));
    expect((await cli(['delete', 'fn', 'slowstart'], { skiff: s })).code).toBe(0);
    for (const r of await waiting) {
      expect(r.status).toBe(503);
      expect(r.headers['retry-after']).toBe('1');
    }
    expect(Date.now() - t0).toBeLessThan(10_000);
  }, 60_000);

  it('stops every replica on delete, and none survives a SIGKILL of the server', async () => {
    await apply(`apiVersion: skiff.dev/v1\nkind: Function\nmetadata: { name: crasher, namespace: default }\nspec: { runtimeClassName: container, image: ${image}, command: ["/bin/sh", "-c", "exit 0"] }\n`);
    for (const name of ['prober', 'crasher', 'unready', 'nohandler', 'lazy']) expect((await cli(['delete', 'fn', name], { skiff: s })).code).toBe(0);
    expect((await get('/container')).status).toBe(200);

    // A second server, killed with SIGKILL while its replica runs.
    const data = mkdtempSync(join(tmpdir(), 'skiff-ct-kill-'));
    const other = await startSkiff({ dataDir: data, args: ['--allow-host-dir', dir], timeoutMs: 30_000 });
    try {
      await cli(['apply', '-f', '-'], { skiff: other, input: fn('victim', '') });
      await waitFor(async () => (((await (await apiFetch(other, '/apis/skiff.dev/v1/namespaces/default/functions/victim')).json()) as { status?: any }).status?.readyReplicas ?? 0) === 1, 'victim ready', 30_000);
      expect(readdirSync(join(data, 'run')).length).toBe(1);
      const tree = descendants(other.proc.pid!);
      expect(tree.length).toBeGreaterThan(1);
      other.proc.kill('SIGKILL');
      await waitFor(() => tree.filter(alive).length === 0, 'no replica process left after SIGKILL', 10_000);
    } finally {
      other.proc.kill('SIGKILL');
      rmSync(data, { recursive: true, force: true });
    }
  }, 90_000);
});


import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { hasRegistryTools, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { apiFetch, cli, type RunningSkiff, startSkiff, waitFor } from '../helpers/skiff-process.js';
import { wagiWat, wat } from '../helpers/wat.js';

const tools = hasRegistryTools();
const account = { username: 'puller', password: 's3cret-pull' };

function fnManifest(name: string, module: string, extra = ''): string {
  return `apiVersion: skiff.dev/v1
kind: Function
metadata: { name: ${name} }
spec:
  module: ${module}
${extra}---
apiVersion: skiff.dev/v1
kind: Route
metadata: { name: ${name} }
spec:
  http:
    - match: [{ uri: { prefix: /${name} } }]
      route: [{ destination: { function: ${name} } }]
`;
}

describe.skipIf(!tools)('Functions from oci:// modules pushed with skiff push', { timeout: 180_000 }, async () => {
  let reg: TestRegistry;
  let priv: TestRegistry;
  let s: RunningSkiff;
  let dir: string;

  const upArgs = () => ['--insecure-registry', reg.host, '--insecure-registry', priv.host, '--allow-upstream', reg.host, '--allow-upstream', priv.host];
  const status = async (name: string) => {
    const r = await apiFetch(s, `/apis/skiff.dev/v1/namespaces/default/functions/${name}`);
    return r.ok ? ((await r.json()) as { status?: Record<string, any> }).status : undefined;
  };
  const ready = async (name: string) => (await status(name))?.conditions?.find((c: { type: string }) => c.type === 'Ready') as { status: string; reason: string; message: string } | undefined;
  const body = async (path: string) => (await fetch(`${s.gateway}${path}`)).text();
  const push = async (file: string, ref: string, extra: string[] = []) => await cli(['push', file, ref, '--insecure-registry', ref.split('/')[0]!, ...extra], { env: { DOCKER_CONFIG: dir } });
  const apply = async (name: string, yaml: string) => {
    writeFileSync(join(dir, `${name}.yaml`), yaml);
    const r = await cli(['apply', '-f', join(dir, `${name}.yaml`)], { skiff: s });
    expect(r.stderr).toBe('');
    return r;
  };

  beforeAll(async () => {
    [reg, priv] = await Promise.all([startRegistry(), startRegistry({ basic: account })]);
    dir = mkdtempSync(join(tmpdir(), 'skiff-oci-fn-'));
    writeFileSync(join(dir, 'one.wasm'), await wat(wagiWat('Content-Type: text/plain\n\nversion one\n')));
    writeFileSync(join(dir, 'two.wasm'), await wat(wagiWat('Content-Type: text/plain\n\nversion two\n')));
    writeFileSync(join(dir, 'not.wasm'), 'plain text, not a module');
    s = await startSkiff({ args: upArgs() });
  });
  afterAll(async () => {
    if (s) expect(await s.stop()).toBe(0);
    await Promise.all([reg?.stop(), priv?.stop()]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('skiff push refuses a file that is not a module and prints the digest last', async () => {
    const bad = await push(join(dir, 'not.wasm'), `${reg.host}/fns/hello:v1`);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('not a core WebAssembly module');
    const ok = await push(join(dir, 'one.wasm'), `${reg.host}/fns/hello:v1`);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout.trim().split('\n').at(-1)).toMatch(/^sha256:[0-9a-f]{64}$/);
    const refused = await cli(['push', join(dir, 'one.wasm'), `${reg.host}/fns/hello:v1`], { env: { DOCKER_CONFIG: dir } });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`--insecure-registry ${reg.host}`);
  });

  it('pins a tag to its digest in status, keeps running it after the tag moves, and moves only when spec.module changes', async () => {
    const first = (await push(join(dir, 'one.wasm'), `${reg.host}/fns/hello:v1`)).stdout.trim().split('\n').at(-1)!;
    await apply('hello', fnManifest('hello', `oci://${reg.host}/fns/hello:v1`));
    await waitFor(async () => (await ready('hello'))?.status === 'True', 'hello ready', 15_000);
    expect((await status('hello'))!.resolvedModule).toBe(`oci://${reg.host}/fns/hello:v1@${first}`);
    expect(await body('/hello')).toBe('version one\n');
    const yaml = (await cli(['get', 'fn', 'hello', '-o', 'yaml'], { skiff: s })).stdout;
    expect(yaml).toContain(`resolvedModule: oci://${reg.host}/fns/hello:v1@${first}`);

    // The tag moves to another module; a spec change that keeps spec.module, and a restart, keep the pin.
    const second = (await push(join(dir, 'two.wasm'), `${reg.host}/fns/hello:v1`)).stdout.trim().split('\n').at(-1)!;
    expect(second).not.toBe(first);
    await apply('hello', fnManifest('hello', `oci://${reg.host}/fns/hello:v1`, '  env: { GREETING: again }\n'));
    await waitFor(async () => (await status('hello'))?.observedGeneration === 2 && (await ready('hello'))?.status === 'True', 'generation 2 loaded', 15_000);
    expect(await body('/hello')).toBe('version one\n');
    expect((await status('hello'))!.resolvedModule).toContain(first);
    expect(await s.stop()).toBe(0);
    s = await startSkiff({ dataDir: s.dataDir, args: upArgs() });
    await waitFor(async () => (await body('/hello')) === 'version one\n', 'the pinned module serving after a restart', 15_000);

    // An explicit change of spec.module (to the new digest) rolls out the new module.
    await apply('hello', fnManifest('hello', `oci://${reg.host}/fns/hello@${second}`, '  env: { GREETING: again }\n'));
    await waitFor(async () => (await body('/hello')) === 'version two\n', 'the new digest serving', 15_000);
    expect((await status('hello'))!.resolvedModule).toBe(`oci://${reg.host}/fns/hello@${second}`);
  });

  it('pulls from a private registry with spec.imagePullSecrets and says which Secret is missing', async () => {
    const pushed = await cli(['push', join(dir, 'two.wasm'), `${priv.host}/team/app:v1`, '--insecure-registry', priv.host, '--registry-config', writeConfig(priv.host)]);
    expect(pushed.stderr).toBe('');
    expect(pushed.code).toBe(0);
    await apply('private', fnManifest('private', `oci://${priv.host}/team/app:v1`, '  imagePullSecrets: [{ name: regcred }]\n'));
    await waitFor(async () => (await ready('private'))?.reason === 'PullSecretNotFound', 'missing secret reported', 15_000);
    expect((await ready('private'))!.message).toContain('Secret default/regcred');
    const secret = `apiVersion: v1
kind: Secret
metadata: { name: regcred }
type: kubernetes.io/dockerconfigjson
stringData:
  .dockerconfigjson: '${JSON.stringify({ auths: { [priv.host]: { username: account.username, password: account.password } } })}'
`;
    writeFileSync(join(dir, 'secret.yaml'), secret);
    expect((await cli(['apply', '-f', join(dir, 'secret.yaml')], { skiff: s })).code).toBe(0);
    const table = (await cli(['get', 'secrets'], { skiff: s })).stdout;
    expect(table).toMatch(/regcred\s+kubernetes.io\/dockerconfigjson\s+1/);
    expect(table).not.toContain(account.password);
    expect(table).not.toContain(Buffer.from(account.password).toString('base64'));
    const stored = JSON.parse((await cli(['get', 'secret', 'regcred', '-o', 'json'], { skiff: s })).stdout) as { data: Record<string, string>; stringData?: unknown };
    expect(stored.stringData).toBeUndefined();
    expect(Buffer.from(stored.data['.dockerconfigjson']!, 'base64').toString()).toContain(account.username);
    await waitFor(async () => (await body('/private')) === 'version two\n', 'private module serving', 20_000);
  });

  it('reports a missing tag and a refused registry in the Ready condition', async () => {
    await apply('missing', fnManifest('missing', `oci://${reg.host}/fns/nothing:v9`));
    await waitFor(async () => (await ready('missing'))?.reason === 'ModuleNotFound', 'missing module reported', 15_000);
    expect((await ready('missing'))!.message).toContain(`${reg.host}/fns/nothing:v9`);
    writeFileSync(join(dir, 'refused.yaml'), fnManifest('refused', 'oci://127.0.0.2:5999/x/y:v1'));
    const refused = await cli(['apply', '-f', join(dir, 'refused.yaml')], { skiff: s });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('--allow-upstream');
  });

  function writeConfig(host: string): string {
    const path = join(dir, `${host.replace(/[:.]/g, '-')}.json`);
    writeFileSync(path, JSON.stringify({ auths: { [host]: { auth: Buffer.from(`${account.username}:${account.password}`).toString('base64') } } }));
    return path;
  }
});

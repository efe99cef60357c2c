import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { hasRegistryTools, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { apiFetch, cli as cli, type RunningSkiff, startSkiff, waitFor } from '../helpers/skiff-process.js';
import { wagiWat, wat } from '../helpers/wat.js';

const tools = hasRegistryTools();

// The supply chain end to end: modules pushed with skiff push and signed with skiff sign run from
// oci:// under an ImagePolicy; unsigned, wrongly signed and retagged modules are refused with the
// artifact, the policy and the authority named; the Gatekeeper path sees the same verdicts.
describe.skipIf(!tools)('ImagePolicy over a real registry', { timeout: 240_000 }, () => {
  let reg: TestRegistry;
  let s: RunningSkiff;
  let dir: string;
  const at = (f: string) => join(dir, f);
  const regFlags = () => ['--insecure-registry', reg.host];
  const push = async (file: string, ref: string) => {
    const r = await cli(['push', at(file), ref, ...regFlags()], { env: { DOCKER_CONFIG: dir } });
    expect(r.stderr).toBe('');
    return r.stdout.trim().split('\n').at(-1)!;
  };
  const sign = async (key: string, ref: string) => {
    const r = await cli(['sign', '--key', at(key), ref, ...regFlags()], { env: { DOCKER_CONFIG: dir, COSIGN_PASSWORD: '' } });
    expect(r.code, r.stderr).toBe(0);
  };
  const applyYaml = async (name: string, yaml: string) => {
    writeFileSync(at(`${name}.yaml`), yaml);
    return await cli(['apply', '-f', at(`${name}.yaml`)], { skiff: s });
  };
  const fn = (name: string, module: string) => `apiVersion: skiff.dev/v1
kind: Function
metadata: { name: ${name} }
spec:
  module: ${module}
---
apiVersion: skiff.dev/v1
kind: Route
metadata: { name: ${name} }
spec:
  http:
    - match: [{ uri: { prefix: /${name} } }]
      route: [{ destination: { function: ${name} } }]
`;
  const ready = async (name: string) => {
    const r = await apiFetch(s, `/apis/skiff.dev/v1/namespaces/default/functions/${name}`);
    const st = r.ok ? ((await r.json()) as { status?: { conditions?: Array<{ type: string; status: string; reason: string; message: string }> } }).status : undefined;
    return st?.conditions?.find((c) => c.type === 'Ready');
  };

  beforeAll(async () => {
    reg = await startRegistry();
    dir = mkdtempSync(join(tmpdir(), 'skiff-imgpol-'));
    writeFileSync(at('hello.wasm'), await wat(wagiWat('Content-Type: text/plain\n\nsigned hello\n')));
    writeFileSync(at('other.wasm'), await wat(wagiWat('Content-Type: text/plain\n\nunsigned other\n')));
    for (const k of ['release', 'stranger']) {
      const g = await cli(['generate-key-pair', '--output-key-prefix', at(k)], { env: { COSIGN_PASSWORD: '' } });
      expect(g.code, g.stderr).toBe(0);
    }
    s = await startSkiff({ args: [...regFlags(), '--allow-upstream', reg.host, '--decision-log', 'decisions.ndjson'] });
    const policy = `apiVersion: skiff.dev/v1
kind: ImagePolicy
metadata: { name: signed-modules }
spec:
  images: [{ glob: "${reg.host}/mods/**" }]
  authorities:
    - name: release-key
      key:
        data: |
${readFileSync(at('release.pub'), 'utf8').trim().split('\n').map((l) => `          ${l}`).join('\n')}
`;
    const r = await applyYaml('policy', policy);
    expect(r.stderr).toBe('');
  });
  afterAll(async () => {
    if (s) expect(await s.stop()).toBe(0);
    await reg?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('runs a module pushed and signed with the trusted key', async () => {
    const digest = await push('hello.wasm', `${reg.host}/mods/hello:v1`);
    await sign('release.key', `${reg.host}/mods/hello@${digest}`);
    const r = await applyYaml('hello', fn('hello', `oci://${reg.host}/mods/hello:v1`));
    expect(r.stderr).toBe('');
    await waitFor(async () => (await ready('hello'))?.status === 'True', 'hello Ready', 60_000);
    expect(await (await fetch(`${s.gateway}/hello`)).text()).toContain('signed hello');
  });

  it('refuses an unsigned module, naming the artifact, the policy and the authority', async () => {
    const digest = await push('other.wasm', `${reg.host}/mods/other:v1`);
    const r = await applyYaml('other', fn('other', `oci://${reg.host}/mods/other:v1`));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`oci://${reg.host}/mods/other:v1`);
    expect(r.stderr).toContain(digest);
    expect(r.stderr).toContain('ImagePolicy "signed-modules"');
    expect(r.stderr).toContain('authority "release-key"');
  });

  it('refuses a module signed by a key the policy does not trust', async () => {
    const digest = await push('other.wasm', `${reg.host}/mods/stranger:v1`);
    await sign('stranger.key', `${reg.host}/mods/stranger@${digest}`);
    const r = await applyYaml('stranger', fn('stranger', `oci://${reg.host}/mods/stranger@${digest}`));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('authority "release-key"');
  });

  it('refuses a tag moved to an unsigned digest, while the admitted Function keeps its pinned, signed digest', async () => {
    await push('other.wasm', `${reg.host}/mods/hello:v1`);
    const r = await applyYaml('hello-again', fn('hello-again', `oci://${reg.host}/mods/hello:v1`));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('ImagePolicy "signed-modules"');
    expect(await (await fetch(`${s.gateway}/hello`)).text()).toContain('signed hello');
  });

  it('leaves artifacts outside the globs alone and records verdicts in the decision log', async () => {
    await push('other.wasm', `${reg.host}/free/other:v1`);
    const r = await applyYaml('free', fn('free', `oci://${reg.host}/free/other:v1`));
    expect(r.stderr).toBe('');
    await waitFor(async () => (await ready('free'))?.status === 'True', 'free Ready', 60_000);
    const log = readFileSync(join(s.dataDir, 'decisions.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { query: string; input: { reference: string; phase: string }; result: { allowed: boolean } });
    const verdicts = log.filter((d) => d.query === 'skiff.imagepolicy');
    expect(verdicts.some((d) => d.input.reference.endsWith('/mods/hello:v1') && d.result.allowed && d.input.phase === 'admission')).toBe(true);
    expect(verdicts.some((d) => d.input.reference.endsWith('/mods/hello:v1') && d.result.allowed && d.input.phase === 'pull')).toBe(true);
    expect(verdicts.some((d) => d.input.reference.endsWith('/mods/other:v1') && !d.result.allowed)).toBe(true);
    expect(verdicts.some((d) => d.input.reference.includes('/free/'))).toBe(false);
  });

  it('hands the verdicts to Gatekeeper templates through external_data', async () => {
    const template = `apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: { name: k8sverifiedonly }
spec:
  crd: { spec: { names: { kind: K8sVerifiedOnly } } }
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package k8sverifiedonly
        violation[{"msg": msg}] {
          m := input.review.object.spec.module
          startswith(m, "oci://")
          resp := external_data({"provider": "skiff-image-verification", "keys": [m]})
          not ok(resp, m)
          msg := sprintf("gatekeeper: %v is not verified", [m])
        }
        ok(resp, m) {
          some i
          resp.responses[i][0] == m
          resp.responses[i][1].verified
        }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sVerifiedOnly
metadata: { name: verified-only }
spec:
  match: { kinds: [{ apiGroups: [skiff.dev], kinds: [Function] }] }
`;
    expect((await applyYaml('gk', template)).stderr).toBe('');
    // A module outside the ImagePolicy's globs is admitted by the ImagePolicy but not verified, so the constraint refuses it.
    await waitFor(async () => {
      const r = await applyYaml('free2', fn('free2', `oci://${reg.host}/free/other:v1`));
      return r.code !== 0 && r.stderr.includes('gatekeeper: ') && r.stderr.includes('is not verified');
    }, 'the constraint refuses an unverified module', 30_000);
    const signed = readFileSync(at('hello.yaml'), 'utf8').replace(/hello/g, 'hello-gk');
    const digest = await push('hello.wasm', `${reg.host}/mods/hello:v2`);
    await sign('release.key', `${reg.host}/mods/hello@${digest}`);
    const r = await applyYaml('hello-gk', signed.replace(`mods/hello-gk:v1`, `mods/hello:v2`));
    expect(r.stderr).toBe('');
  });
});

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { functionKind } from '../../src/api/kinds/function.js';
import { cli, REPO, type RunningSkiff, startSkiff, waitFor } from '../helpers/skiff-process.js';

const TENANT = join(REPO, 'examples/policies/runtime-class-by-tenant');
const REGISTRY = join(REPO, 'examples/policies/untrusted-registry-vm');
const dir = mkdtempSync(join(tmpdir(), 'skiff-rc-policies-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const DIGEST = `sha256:${'0'.repeat(64)}`;
let seq = 0;
const write = (text: string) => {
  const f = join(dir, `m${seq++}.yaml`);
  writeFileSync(f, text);
  return f;
};
const ns = (name: string, tenant?: string) => `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${name}\n${tenant ? `  labels: {skiff.dev/tenant: ${tenant}}\n` : ''}`;
/** A Function manifest: `spec` is YAML flow mapping content. */
const fn = (name: string, namespace: string, spec: string) => `apiVersion: skiff.dev/v1\nkind: Function\nmetadata: {name: ${name}, namespace: ${namespace}}\nspec: {${spec}}\n`;

interface Verdict {
  file: string;
  kind: string;
  name: string;
  allowed: boolean;
  violations: Array<{ policy: string; message: string }>;
}

/** check runs `skiff admission check` over the documents with the given policies, and returns the Functions' verdicts by name. */
async function check(policies: string[], docs: string[]): Promise<Record<string, Verdict>> {
  const r = await cli(['admission', 'check', ...policies.flatMap((p) => ['--policies', p]), '-f', write(docs.join('---\n')), '-o', 'json']);
  expect(r.stderr).toBe('');
  expect([0, 1]).toContain(r.code);
  const out = JSON.parse(r.stdout) as Verdict[];
  expect(r.code).toBe(out.some((v) => !v.allowed) ? 1 : 0);
  return Object.fromEntries(out.filter((v) => v.kind === 'Function').map((v) => [v.name, v]));
}

const messages = (v: Verdict) => v.violations.map((x) => x.message);

describe('K8sRuntimeClassByTenant offline (skiff admission check)', () => {
  it('the example constraint: tenants by namespace label, unlisted tenants wasm only, absent class counts as wasm', async () => {
    const out = await check([TENANT], [
      ns('acme-prod', 'acme'),
      ns('tools', 'internal'),
      ns('plain'),
      fn('acme-container', 'acme-prod', `runtimeClassName: container, image: "oci://registry.example.com/web@${DIGEST}"`),
      fn('acme-vm', 'acme-prod', `runtimeClassName: vm, image: "oci://registry.example.com/web@${DIGEST}"`),
      fn('acme-default', 'acme-prod', 'module: hello.wasm'),
      fn('tools-container', 'tools', `runtimeClassName: container, image: "oci://registry.example.com/t@${DIGEST}"`),
      fn('plain-vm', 'plain', `runtimeClassName: vm, image: "oci://registry.example.com/t@${DIGEST}"`),
      fn('plain-wasm', 'plain', 'runtimeClassName: wasm, module: hello.wasm'),
      fn('unknown-ns-vm', 'nowhere', `runtimeClassName: vm, image: "oci://registry.example.com/t@${DIGEST}"`),
    ]);
    expect(out['acme-container']).toMatchObject({ allowed: false, violations: [{ policy: 'K8sRuntimeClassByTenant/tenant-runtime-classes', message: '[tenant-runtime-classes] Function acme-prod/acme-container runs as runtimeClassName "container", but tenant "acme" (namespace acme-prod has label skiff.dev/tenant=acme) may use only wasm, vm' }] });
    expect(out['acme-vm']!.allowed).toBe(true);
    expect(out['acme-default']!.allowed).toBe(true);
    expect(out['tools-container']!.allowed).toBe(true);
    expect(messages(out['plain-vm']!)).toEqual(['[tenant-runtime-classes] Function plain/plain-vm runs as runtimeClassName "vm", but namespace plain has no skiff.dev/tenant label naming a listed tenant, and such Functions may use only wasm']);
    expect(out['plain-wasm']!.allowed).toBe(true);
    // A namespace the inventory does not know has no tenant label: the default rule applies.
    expect(messages(out['unknown-ns-vm']!)[0]).toMatch(/namespace nowhere has no skiff.dev\/tenant label/);
  });

  it('tenants by namespace name (and a list of namespaces); unlisted namespaces unrestricted without defaultAllowedClasses', async () => {
    const constraint = write(`apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sRuntimeClassByTenant
metadata: {name: by-namespace}
spec:
  match: {kinds: [{apiGroups: ["skiff.dev"], kinds: ["Function"]}]}
  parameters:
    tenants:
      - {name: acme, namespaces: [acme-dev, acme-prod], allowedClasses: [wasm]}
      - {name: lab, allowedClasses: []}
`);
    const out = await check([join(TENANT, 'template.yaml'), constraint], [
      fn('a', 'acme', 'runtimeClassName: container, image: /x'),
      fn('b', 'acme-dev', 'runtimeClassName: vm, image: /x'),
      fn('c', 'acme-prod', 'module: m.wasm'),
      fn('d', 'lab', 'module: m.wasm'),
      fn('e', 'other', 'runtimeClassName: vm, image: /x'),
    ]);
    expect(messages(out.a!)).toEqual(['[by-namespace] Function acme/a runs as runtimeClassName "container", but tenant "acme" (namespace acme) may use only wasm']);
    expect(messages(out.b!)).toEqual(['[by-namespace] Function acme-dev/b runs as runtimeClassName "vm", but tenant "acme" (namespace acme-dev) may use only wasm']);
    expect(out.c!.allowed).toBe(true);
    expect(messages(out.d!)).toEqual(['[by-namespace] Function lab/d runs as runtimeClassName "wasm", but tenant "lab" (namespace lab) may use only nothing']);
    expect(out.e!.allowed).toBe(true);
  });
});

describe('K8sUntrustedRegistryVM offline (skiff admission check)', () => {
  const constraint = write(`apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sUntrustedRegistryVM
metadata: {name: untrusted-vm}
spec:
  match: {kinds: [{apiGroups: ["skiff.dev"], kinds: ["Function"]}]}
  parameters:
    trustedRegistries: [registry.example.com, "127.0.0.1:5000", "*.corp.example", "ghcr.io/acme", "quay.io/team/", /srv/skiff/images, docker.io/library/busybox]
`);
  const image = (name: string, ref: string, cls?: string) => fn(name, 'apps', `${cls ? `runtimeClassName: ${cls}, ` : ''}image: "${ref}"`);

  it('allows trusted images as any class, and untrusted ones only as vm', async () => {
    const trusted: Array<[string, string]> = [
      ['host', `oci://registry.example.com/web@${DIGEST}`],
      ['host-case', `oci://REGISTRY.example.com/web@${DIGEST}`],
      ['host-port', `oci://127.0.0.1:5000/web@${DIGEST}`],
      ['subdomain', `oci://eu.corp.example:8443/web@${DIGEST}`],
      ['repo', `oci://ghcr.io/acme@${DIGEST}`],
      ['under-repo', `oci://ghcr.io/acme/web@${DIGEST}`],
      ['under-prefix', `oci://quay.io/team/web@${DIGEST}`],
      ['layout', '/srv/skiff/images/hello'],
      ['layout-dir-itself', '/srv/skiff/images'],
      ['file-url', 'file:///srv/skiff/images/hello'],
      ['docker-short', 'busybox'],
      ['docker-tag', 'busybox:1.36'],
    ];
    const untrusted: Array<[string, string, string]> = [
      ['other-port', `oci://127.0.0.1:5001/web@${DIGEST}`, 'registry 127.0.0.1:5001'],
      ['lookalike-host', `oci://registry.example.com.evil.io/web@${DIGEST}`, 'registry registry.example.com.evil.io'],
      ['bare-domain', `oci://corp.example/web@${DIGEST}`, 'registry corp.example'],
      ['repo-lookalike', `oci://ghcr.io/acmevil/web@${DIGEST}`, 'registry ghcr.io'],
      ['prefix-lookalike', `oci://quay.io/teamx/web@${DIGEST}`, 'registry quay.io'],
      ['layout-elsewhere', '/tmp/images/hello', 'the local image layout /tmp/images/hello'],
      ['layout-sibling', '/srv/skiff/images-evil/hello', 'the local image layout /srv/skiff/images-evil/hello'],
      ['layout-dotdot', '/srv/skiff/images/../../../tmp/x', 'the local image layout /srv/skiff/images/../../../tmp/x'],
      ['docker-other', 'alpine', 'registry docker.io'],
      ['docker-user', 'someone/busybox', 'registry docker.io'],
    ];
    const docs = [
      ...trusted.map(([n, ref]) => image(n, ref, 'container')),
      ...untrusted.map(([n, ref]) => image(n, ref, 'container')),
      ...untrusted.map(([n, ref]) => image(`${n}-vm`, ref, 'vm')),
      image('no-class', `oci://evil.example/x@${DIGEST}`),
      fn('module-only', 'apps', 'module: hello.wasm'),
    ];
    const out = await check([join(REGISTRY, 'template.yaml'), constraint], docs);
    for (const [n] of trusted) expect(out[n], n).toMatchObject({ allowed: true, violations: [] });
    for (const [n, ref, source] of untrusted) {
      expect(messages(out[n]!), n).toEqual([`[untrusted-vm] Function apps/${n} runs image "${ref}" from ${source}, which is not trusted (trusted: registry.example.com, 127.0.0.1:5000, *.corp.example, ghcr.io/acme, quay.io/team/, /srv/skiff/images, docker.io/library/busybox): an image from outside the trusted registries must run as runtimeClassName "vm", not "container"`]);
      expect(out[`${n}-vm`]!.allowed, `${n}-vm`).toBe(true);
    }
    expect(messages(out['no-class']!)[0]).toMatch(/must run as runtimeClassName "vm", not "wasm"$/);
    expect(out['module-only']!.allowed).toBe(true);
  });

  it('the example constraint as shipped', async () => {
    const out = await check([REGISTRY], [image('ok', `oci://127.0.0.1:5000/web@${DIGEST}`, 'container'), image('bad', `oci://127.0.0.1:5001/web@${DIGEST}`, 'container')]);
    expect(out.ok!.allowed).toBe(true);
    expect(messages(out.bad!)[0]).toMatch(/^\[untrusted-images-run-as-vm\] Function apps\/bad runs image .* from registry 127\.0\.0\.1:5001, which is not trusted/);
  });
});

describe('the gator suites beside the examples', () => {
  it('pass under skiff policy verify', async () => {
    const r = await cli(['policy', 'verify', join(TENANT, 'samples/suite.yaml'), join(REGISTRY, 'samples/suite.yaml')]);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().split('\n').at(-1)).toBe('8 passed, 0 failed');
    expect(r.code).toBe(0);
  });
});

// The API refuses these Functions on schema grounds before admission when the Function kind lacks
// runtimeClassName and image (before issue 15's API change); the block runs where the kind has them.
// Registries are public names: the API refuses loopback registries unless --allow-upstream grants them.
const hasRuntimeClassFields = !!(functionKind.specSchema as { properties?: Record<string, unknown> }).properties?.runtimeClassName;

describe.skipIf(!hasRuntimeClassFields)('the runtime-class policies through skiff up', () => {
  let skiff: RunningSkiff;
  const run = (...args: string[]) => cli(args, { skiff });
  const layouts = join(dir, 'layouts');
  beforeAll(async () => {
    mkdirSync(join(layouts, 'web'), { recursive: true });
    skiff = await startSkiff({ dataDir: join(dir, 'data'), args: ['--allow-host-dir', layouts], timeoutMs: 45_000 });
  }, 60_000);
  afterAll(async () => {
    await skiff?.stop();
  });

  // Nothing stored names a remote registry, so no replica of these Functions ever pulls from the network.
  // Each CLI call spawns a process: the steps get time for a loaded machine.
  it('applies both policies and the tenants\' namespaces', async () => {
    const applied = await run('apply', '-f', TENANT, '-f', REGISTRY);
    expect(applied.stderr).toBe('');
    expect(applied.stdout).toContain('k8sruntimeclassbytenant.constraints.gatekeeper.sh/tenant-runtime-classes created');
    expect(applied.stdout).toContain('k8suntrustedregistryvm.constraints.gatekeeper.sh/untrusted-images-run-as-vm created');
    expect((await run('apply', '-f', write([ns('acme-prod', 'acme'), ns('tools', 'internal')].join('---\n')))).code).toBe(0);
  }, 60_000);

  it('denies a Function that breaks either rule, with the message', async () => {
    const acmeContainer = write(fn('web', 'acme-prod', `runtimeClassName: container, image: "oci://registry.example.com/web@${DIGEST}", port: 8080`));
    const denied = (await waitFor(async () => {
      const r = await run('apply', '-f', acmeContainer);
      return r.code === 1 && r.stderr.includes('[tenant-runtime-classes]') ? r : undefined;
    }, 'the tenant constraint to be enforced', 30_000))!;
    expect(denied.stderr).toMatch(/Forbidden/);
    expect(denied.stderr).toContain('[tenant-runtime-classes] Function acme-prod/web runs as runtimeClassName "container", but tenant "acme" (namespace acme-prod has label skiff.dev/tenant=acme) may use only wasm, vm');

    const untrusted = await run('apply', '-f', write(fn('tool', 'tools', `runtimeClassName: container, image: "oci://ghcr.io/someone/tool@${DIGEST}", port: 8080`)));
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr).toContain('[untrusted-images-run-as-vm] Function tools/tool runs image "oci://ghcr.io/someone/tool@');
    expect(untrusted.stderr).toContain('from registry ghcr.io, which is not trusted');
    expect(untrusted.stderr).toContain('must run as runtimeClassName "vm", not "container"');
    const untrustedLayout = await run('apply', '-f', write(fn('local', 'tools', `runtimeClassName: container, image: "${join(layouts, 'web')}", port: 8080`)));
    expect(untrustedLayout.code).toBe(1);
    expect(untrustedLayout.stderr).toContain(`from the local image layout ${join(layouts, 'web')}, which is not trusted`);
  }, 90_000);

  it('admits Functions that comply with both', async () => {
    // Tenant acme may run vm, and an untrusted image may run as vm.
    const okVm = await run('apply', '-f', write(fn('web', 'acme-prod', `runtimeClassName: vm, image: "${join(layouts, 'web')}", port: 8080`)));
    expect(okVm.stderr).toBe('');
    expect(okVm.code).toBe(0);
    expect(okVm.stdout).toContain('function.skiff.dev/web created');
    // A trusted registry's image as a container in tenant internal: admitted (a server dry run, so nothing pulls it).
    const okContainer = await run('apply', '--dry-run=server', '-f', write(fn('tool', 'tools', `runtimeClassName: container, image: "oci://registry.example.com/tool@${DIGEST}", port: 8080`)));
    expect(okContainer.stderr).toBe('');
    expect(okContainer.code).toBe(0);
    expect(okContainer.stdout).toContain('(server dry run)');
  }, 60_000);
});

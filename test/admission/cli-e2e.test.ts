import { mkdtempSync, rmSync,writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll,beforeAll, describe, expect, it } from 'vitest';

import { cli, type RunningSkiff,startSkiff, waitFor } from '../helpers/skiff-process.js';

const FIX = join(import.meta.dirname, 'fixtures');

let skiff: RunningSkiff;
let dir: string;
const run = (...args: string[]) => cli(args, { server: skiff.api, env: { SKIFF_DATA_DIR: skiff.dataDir } });

beforeAll(async () => {
  skiff = await startSkiff();
  dir = mkdtempSync(join(tmpdir(), 'skiff-admission-'));
  writeFileSync(
    join(dir, 'constraints.yaml'),
    `apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sRequiredLabels
metadata: {name: fn-owner}
spec:
  match: {kinds: [{apiGroups: ["skiff.dev"], kinds: ["Function"]}]}
  parameters: {labels: [{key: owner}]}
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sRequiredLabels
metadata: {name: fn-team}
spec:
  enforcementAction: warn
  match: {kinds: [{apiGroups: ["skiff.dev"], kinds: ["Function"]}]}
  parameters: {labels: [{key: team}]}
`,
  );
  // skiff apply uploads the module file, so it must exist; admission decides before anything loads it.
  writeFileSync(join(dir, 'none.wasm'), 'not loaded by this test');
  const fn = (name: string, labels: string) => `apiVersion: skiff.dev/v1\nkind: Function\nmetadata:\n  name: ${name}\n  labels: {${labels}}\nspec:\n  module: ${join(dir, 'none.wasm')}\n`;
  writeFileSync(join(dir, 'bare.yaml'), fn('bare', ''));
  writeFileSync(join(dir, 'owned.yaml'), fn('owned', 'owner: me'));
});

afterAll(async () => {
  await skiff?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('admission through the CLI against skiff up', async () => {
  it('applies a template and its constraints in one go, then denies, warns and dry-runs', async () => {
    const applied = await run('apply', '-f', join(FIX, 'templates/k8srequiredlabels.yaml'), '-f', join(dir, 'constraints.yaml'));
    expect(applied.stderr).toBe('');
    expect(applied.stdout).toContain('k8srequiredlabels.constraints.gatekeeper.sh/fn-owner created');
    const denied = (await waitFor(async () => {
      const r = await run('apply', '-f', join(dir, 'bare.yaml'));
      return r.code === 1 && r.stderr.includes('[fn-owner] you must provide labels: {"owner"}') ? r : undefined;
    }, 'the constraint to be enforced'))!;
    expect(denied.stderr).toMatch(/Forbidden/);
    const dry = await run('apply', '--dry-run=server', '-f', join(dir, 'owned.yaml'));
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('(server dry run)');
    expect(dry.stderr).toContain('Warning: [fn-team] you must provide labels: {"team"}');
    expect((await run('get', 'function', 'owned')).code).toBe(1);
    const ok = await run('apply', '-f', join(dir, 'owned.yaml'));
    expect(ok.code).toBe(0);
    expect(ok.stderr).toContain('Warning: [fn-team]');
  });

  it('skiff audit reports violations from every constraint status', async () => {
    const r = await run('audit', '-o', 'json');
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout) as Array<{ name: string; totalViolations: number; violations: Array<{ name: string; message: string }> }>;
    expect(out.find((c) => c.name === 'fn-owner')!.totalViolations).toBe(0);
    const team = out.find((c) => c.name === 'fn-team')!;
    expect(team.totalViolations).toBe(1);
    expect(team.violations[0]).toMatchObject({ name: 'owned', message: 'you must provide labels: {"team"}' });
    const table = await run('audit');
    expect(table.stdout).toMatch(/k8srequiredlabels\/fn-team\s+warn\s+1/);
    expect((await run('get', 'k8srequiredlabels')).stdout).toMatch(/fn-team\s+warn\s+1/);
  });
});

describe('skiff webhook (the command)', () => {
  it('serves with --policies, prints its ready line, and exits 0 on SIGTERM', async () => {
    const { spawn } = await import('node:child_process');
    const { readFileSync } = await import('node:fs');
    const { Agent, fetch } = await import('undici');
    const { BIN, REPO } = await import('../helpers/skiff-process.js');
    const proc = spawn(process.execPath, [BIN, 'webhook', '--tls-cert', join(FIX, 'tls/cert.pem'), '--tls-key', join(FIX, 'tls/key.pem'), '--policies', join(FIX, 'templates/k8srequiredlabels.yaml'), '--policies', join(FIX, 'constraints/must-have-owner.yaml'), '--listen', '127.0.0.1:0'], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((r) => proc.on('exit', (c) => r(c)));
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let out = '';
        proc.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('\n')) resolve(out);
        });
        proc.once('exit', (c) => reject(new Error(`webhook exited ${c}`)));
        setTimeout(() => reject(new Error('webhook not ready in time')), 15_000).unref();
      });
      expect(line).toMatch(/^skiff webhook ready https:\/\/127\.0\.0\.1:\d+ templates=1 constraints=1 inventory=0\n/);
      const port = Number(/:(\d+) /.exec(line)![1]);
      const agent = new Agent({ connect: { ca: readFileSync(join(FIX, 'tls/cert.pem')) } });
      const res = await fetch(`https://localhost:${port}/validate`, {
        method: 'POST',
        dispatcher: agent,
        body: JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE', namespace: 'apps', object: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'apps' } } } }),
      });
      const body = (await res.json()) as { response: { allowed: boolean } };
      expect(body.response.allowed).toBe(false);
      await agent.close();
    } finally {
      proc.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });

  it('exits 2 when the certificate cannot be read', async () => {
    const r = await cli(['webhook', '--tls-cert', join(FIX, 'tls/missing.pem'), '--tls-key', join(FIX, 'tls/key.pem'), '--listen', '127.0.0.1:0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/cannot read --tls-cert .*missing.pem: ENOENT/);
  });
});

describe('skiff admission check from stdin', () => {
  it('reads -f - for CI pipelines', async () => {
    const pod = 'apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: apps}\nspec:\n  hostNetwork: true\n  containers: [{name: c, image: nginx}]\n';
    const r = await cli(['admission', 'check', '--pss', 'baseline', '-f', '-', '-o', 'json'], { input: pod });
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toEqual([{ file: '-', kind: 'Pod', name: 'p', allowed: false, violations: [{ policy: 'pod-security/baseline', message: 'violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true)' }] }]);
  });
});

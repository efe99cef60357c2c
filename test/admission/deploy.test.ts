import { mkdirSync, mkdtempSync, readdirSync,readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect,it } from 'vitest';

import { listManifestFiles, loadPolicies, readObjects } from '../../src/admission/index.js';

const DEPLOY = join(import.meta.dirname, '..', '..', 'deploy', 'kubernetes');
const FIX = join(import.meta.dirname, 'fixtures');

describe('deploy/kubernetes manifests', () => {
  it('parse, and wire the webhook, service, deployment and probes together', () => {
    const all = listManifestFiles([DEPLOY]).flatMap((f) => readObjects(f));
    const by = (kind: string) => all.find((o) => o.kind === kind) as Record<string, any>;
    const hook = by('ValidatingWebhookConfiguration').webhooks[0];
    expect(hook.clientConfig.service).toMatchObject({ name: 'skiff-webhook', namespace: 'skiff-system', path: '/validate', port: 443 });
    expect(hook.admissionReviewVersions).toEqual(['v1']);
    expect(['Ignore', 'Fail']).toContain(hook.failurePolicy);
    expect(hook.timeoutSeconds).toBeLessThanOrEqual(10);
    expect(hook.sideEffects).toBe('None');
    const dep = by('Deployment').spec.template.spec;
    expect(dep.containers[0].args).toEqual(expect.arrayContaining(['webhook', '--tls-cert=/tls/tls.crt', '--tls-key=/tls/tls.key', '--policies=/policies']));
    expect(dep.containers[0].readinessProbe.httpGet.path).toBe('/readyz');
    expect(by('Service').spec.selector).toEqual(by('Deployment').spec.selector.matchLabels);
    expect(by('ServiceAccount').metadata.name).toBe(dep.serviceAccountName);
  });

  it('reads a policies directory mounted from a ConfigMap (..data symlinks) once', () => {
    const dir = mkdtempSync(join(tmpdir(), 'skiff-policies-'));
    try {
      const stamp = join(dir, '..2026_01_01_00_00_00.000000001');
      mkdirSync(stamp);
      writeFileSync(join(stamp, 'template.yaml'), readFileSync(join(FIX, 'templates/k8srequiredlabels.yaml')));
      writeFileSync(join(stamp, 'constraint.yaml'), readFileSync(join(FIX, 'constraints/must-have-owner.yaml')));
      symlinkSync(stamp, join(dir, '..data'));
      symlinkSync(join('..data', 'template.yaml'), join(dir, 'template.yaml'));
      symlinkSync(join('..data', 'constraint.yaml'), join(dir, 'constraint.yaml'));
      const client = loadPolicies([dir]);
      expect(client.allTemplates().map((t) => t.kind)).toEqual(['K8sRequiredLabels']);
      expect(client.constraints().map((c) => c.name)).toEqual(['must-have-owner']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('documented error codes', () => {
  it('docs/admission.md lists exactly the codes the code raises', async () => {
    const { ADMISSION_ERROR_CODES } = await import('../../src/admission/index.js');
    const doc = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'admission.md'), 'utf8');
    const table = doc.slice(doc.indexOf('## Errors'), doc.indexOf('## Differences'));
    const documented = [...table.matchAll(/^\| `([a-z_]+)`/gm)].map((m) => m[1]);
    expect([...documented].sort()).toEqual([...ADMISSION_ERROR_CODES].sort());
    const sources = [...listManifestFilesTs(join(import.meta.dirname, '..', '..', 'src', 'admission')), join(import.meta.dirname, '..', '..', 'src', 'cli', 'commands', 'audit.ts')];
    const used = new Set(sources.flatMap((f) => [...readFileSync(f, 'utf8').matchAll(/'((?:template|constraint|review|suite|pss|policies|file|manifest|audit)_[a-z_]+)'/g)].map((m) => m[1]!)));
    for (const code of used) expect(ADMISSION_ERROR_CODES, code).toContain(code);
  });
});

function listManifestFilesTs(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts')).map((f) => join(dir, f));
}

describe('deploy/kubernetes/example-policies', () => {
  it('loads, and keeps untrusted namespaces in the wasm sandbox', async () => {
    const { decide, reviewFromObject } = await import('../../src/admission/index.js');
    const client = loadPolicies([join(DEPLOY, 'example-policies')]);
    const deploy = (ns: string, rc: string) => ({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'w', namespace: ns, labels: { owner: 'me' } }, spec: { template: { spec: { runtimeClassName: rc, securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } }, containers: [{ name: 'w', image: 'x', securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } } }] } } } });
    const ctx = (ns: string) => ({ namespaceObject: client.inventory.namespace(ns) });
    expect(decide(client, reviewFromObject(deploy('sandbox', 'runc')), ctx('sandbox')).denials.map((d) => d.policy)).toEqual(['K8sRuntimeClass/untrusted-wasm-only']);
    expect(decide(client, reviewFromObject(deploy('sandbox', 'wasm')), ctx('sandbox')).allowed).toBe(true);
    expect(decide(client, reviewFromObject(deploy('default', 'runc')), ctx('default')).allowed).toBe(true);
  });
});

import { describe, it, expect } from 'vitest';
import { mkdtempSync, mkdirSync, writeFileSync, symlinkSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { cli, type RunningSkiff, startSkiff, waitFor } from '../helpers/skiff-process.js';

// A template that quotes whatever it reviews in its message: a Secret's values reach the result too.
const TEMPLATE = `apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: { name: k8sechoall }
spec:
  crd:
    spec:
      names: { kind: K8sEchoAll }
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package k8sechoall

        violation[{"msg": msg}] {
          msg := sprintf("reviewed %v", [input.review])
        }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sEchoAll
metadata: { name: echo-everything }
spec:
  enforcementAction: dryrun
`;

const secrets = {
  first: { password: 'hunter2-first-value', token: 'tok-FIRST-3f9a1c' },
  second: { password: 'hunter2-second-value', token: 'tok-SECOND-77be02' },
};

function secretYaml(v: { password: string; token: string }): string {
  const manifest = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'db', namespace: 'default' }, stringData: { password: v.password }, data: { token: Buffer.from(v.token).toString('base64') } };
  // kubectl apply keeps the whole manifest, values included, in this annotation
  return `apiVersion: v1
kind: Secret
metadata:
  name: db
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: '${JSON.stringify(manifest)}'
stringData:
  password: ${v.password}
data:
  token: ${Buffer.from(v.token).toString('base64')}
`;
}

describe('the decision log and Secrets', { timeout: 120_000 }, () => {
  let s: RunningSkiff;
  let dir: string;
  let log: string;
  const decisions = () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>) : []);
  const apply = async (name: string, yaml: string) => {
    writeFileSync(join(dir, `${name}.yaml`), yaml);
    const r = await cli(['apply', '-f', join(dir, `${name}.yaml`)], { skiff: s });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'skiff-dl-secret-'));
    log = join(dir, 'decisions.ndjson');
    s = await startSkiff({ args: ['--decision-log', log] });
  });
  afterAll(async () => {
    if (s) expect(await s.stop()).toBe(0);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('records reviews of a Secret without any of its values, created and updated', async () => {
    await apply('template', TEMPLATE);
    // the constraint is in force once a Namespace's review is logged
    let n = 0;
    await waitFor(async () => {
      await apply('probe', `apiVersion: v1\nkind: Namespace\nmetadata: { name: probe, labels: { round: "${++n}" } }\n`);
      return decisions().some((d) => d.input?.review?.object?.kind === 'Namespace');
    }, 'a Namespace review in the decision log', 30_000);
    const probe = decisions().find((d) => d.input?.review?.object?.kind === 'Namespace')!;
    // other kinds are logged as they are
    expect(probe.input.review.object.metadata.labels).toEqual({ round: expect.any(String) });
    expect(probe.erased).toBeUndefined();

    await apply('secret-1', secretYaml(secrets.first));
    await apply('secret-2', secretYaml(secrets.second));
    const reviews = (await waitFor(() => {
      const ds = decisions().filter((d) => d.input?.review?.kind?.kind === 'Secret');
      return ds.some((d) => d.input.review.operation === 'UPDATE') ? ds : undefined;
    }, 'Secret reviews in the decision log', 15_000))!;

    const create = reviews.find((d) => d.input.review.operation === 'CREATE')!;
    expect(create.input.review.object.data).toBe('**REDACTED**');
    expect(create.input.review.object.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration']).toBe('**REDACTED**');
    expect(create.erased).toEqual(expect.arrayContaining(['/input/review/object/data', '/input/review/object/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration']));
    // the constraint still decided: its message is there, minus the values it quoted
    expect(JSON.stringify(create.result)).toContain('reviewed');
    expect(JSON.stringify(create.result)).toContain('**REDACTED**');
    const update = reviews.find((d) => d.input.review.operation === 'UPDATE')!;
    expect(update.input.review.oldObject.data).toBe('**REDACTED**');
    expect(update.erased).toEqual(expect.arrayContaining(['/input/review/object/data', '/input/review/oldObject/data']));

    const text = readFileSync(log, 'utf8');
    for (const v of [secrets.first, secrets.second]) {
      for (const value of [v.password, v.token]) {
        expect(text).not.toContain(value);
        expect(text).not.toContain(Buffer.from(value).toString('base64'));
      }
    }
    // the Secret itself was stored with its values
    const stored = JSON.parse((await cli(['get', 'secret', 'db', '-o', 'json'], { skiff: s })).stdout) as { data: Record<string, string> };
    expect(Buffer.from(stored.data.password!, 'base64').toString()).toBe(secrets.second.password);
  });
});

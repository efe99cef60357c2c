import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect,it } from 'vitest';
import { parse } from 'yaml';

import { evaluatePod, formatViolations, functionAsPod, type LevelVersion,namespacePolicy, parseLevel, podViewOf } from '../../src/admission/index.js';
import { applyMergePatch } from '../../src/api/patch/merge-patch.js';

type Answer = 'pass' | string[];
interface Case {
  name: string;
  at?: string;
  patch?: unknown;
  baseline: Answer;
  restricted: Answer;
}
const file = parse(readFileSync(join(import.meta.dirname, 'fixtures', 'pss', 'cases.yaml'), 'utf8')) as { base: Record<string, unknown>; cases: Case[] };

describe('Pod Security Standards checks, per level and version', () => {
  for (const c of file.cases) {
    it(`${c.name}${c.at ? ` @${c.at}` : ''}`, () => {
      const pod = podViewOf(c.patch ? applyMergePatch(file.base, c.patch) : file.base)!;
      for (const level of ['baseline', 'restricted'] as const) {
        const res = evaluatePod(pod, parseLevel(`${level}${c.at ? `:${c.at}` : ''}`));
        const got: Answer = res.length ? res.map((r) => r.id) : 'pass';
        expect(got, `${level}: ${JSON.stringify(res)}`).toEqual(c[level]);
      }
      expect(evaluatePod(pod, parseLevel(`privileged${c.at ? `:${c.at}` : ''}`))).toEqual([]);
    });
  }

  it('checks the pod template of every workload kind', () => {
    const bad = { spec: { hostNetwork: true, containers: [{ name: 'c' }] } };
    const objs = [
      { apiVersion: 'apps/v1', kind: 'Deployment', spec: { template: bad } },
      { apiVersion: 'apps/v1', kind: 'StatefulSet', spec: { template: bad } },
      { apiVersion: 'apps/v1', kind: 'DaemonSet', spec: { template: bad } },
      { apiVersion: 'apps/v1', kind: 'ReplicaSet', spec: { template: bad } },
      { apiVersion: 'batch/v1', kind: 'Job', spec: { template: bad } },
      { apiVersion: 'batch/v1', kind: 'CronJob', spec: { jobTemplate: { spec: { template: bad } } } },
    ];
    for (const o of objs) expect(evaluatePod(podViewOf(o)!, parseLevel('baseline')).map((r) => r.id), o.kind).toEqual(['hostNamespaces']);
    expect(podViewOf({ apiVersion: 'v1', kind: 'ConfigMap' })).toBeUndefined();
  });

  it("renders PSA's message", () => {
    const pod = podViewOf(applyMergePatch(file.base, { spec: { hostNetwork: true, hostPID: true } }))!;
    const lv = parseLevel('baseline:v1.30');
    expect(formatViolations(evaluatePod(pod, lv), lv)).toBe('violates PodSecurity "baseline:v1.30": host namespaces (hostNetwork=true, hostPID=true)');
  });

  it('maps Functions: plain and read-only dirs are restricted, a read-write host directory is not', () => {
    const fn = (dirs: unknown[]) => ({ apiVersion: 'skiff.dev/v1', kind: 'Function', metadata: { name: 'f' }, spec: { module: 'x.wasm', capabilities: { dirs } } });
    const restricted = parseLevel('restricted');
    expect(evaluatePod(podViewOf(fn([]))!, restricted)).toEqual([]);
    expect(evaluatePod(functionAsPod(fn([{ host: '/srv', guest: '/data', readOnly: true }])), restricted)).toEqual([]);
    const rw = evaluatePod(podViewOf(fn([{ host: '/srv', guest: '/data' }]))!, restricted);
    expect(rw.map((r) => r.id)).toEqual(['restrictedVolumes']);
    expect(evaluatePod(podViewOf(fn([{ host: '/srv', guest: '/data' }]))!, parseLevel('baseline'))).toEqual([]);
  });

  it('reads namespace labels as Kubernetes does, versions included, and reports bad ones', () => {
    const p = namespacePolicy({ 'pod-security.kubernetes.io/enforce': 'baseline', 'pod-security.kubernetes.io/enforce-version': 'v1.29', 'pod-security.kubernetes.io/warn': 'restricted', 'pod-security.kubernetes.io/audit': 'strict' });
    expect(p.enforce).toEqual<LevelVersion>({ level: 'baseline', version: [1, 29] });
    expect(p.warn).toEqual<LevelVersion>({ level: 'restricted', version: 'latest' });
    expect(p.audit).toBeUndefined();
    expect(p.errors[0]).toMatch(/audit="strict" must be privileged, baseline or restricted/);
    expect(() => parseLevel('restricted:2.0')).toThrow(/must be "latest" or a Kubernetes version/);
  });
});

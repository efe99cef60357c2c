import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { GatekeeperClient, type K8sObject,Matcher, reviewFromObject, wildcardMatches } from '../../src/admission/index.js';
import { DecisionLogger } from '../../src/policy/index.js';

// The client keeps a review plan (every constraint with its template) between reviews and binds its
// time budget and decision log into each template's prepared query; these tests pin that the cached
// plan follows every change and that nothing about the verdicts moved.

const template = (kind: string, rego: string): K8sObject => ({
  apiVersion: 'templates.gatekeeper.sh/v1',
  kind: 'ConstraintTemplate',
  metadata: { name: kind.toLowerCase() },
  spec: { crd: { spec: { names: { kind } } }, targets: [{ target: 'admission.k8s.gatekeeper.sh', rego }] },
});
const constraint = (kind: string, name: string, spec: Record<string, unknown> = {}): K8sObject => ({ apiVersion: 'constraints.gatekeeper.sh/v1beta1', kind, metadata: { name }, spec });
const pod = (name: string, ns = 'apps'): K8sObject => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: ns }, spec: { containers: [{ name: 'c', image: 'nginx' }] } });
const say = (kind: string, msg: string) => template(kind, `package ${kind.toLowerCase()}\nviolation[{"msg": "${msg}"}] { true }`);
const names = (gk: GatekeeperClient) => gk.review(reviewFromObject(pod('p'))).violations.map((v) => `${v.kind}/${v.name}:${v.msg}`);

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('GatekeeperClient review plan', () => {
  it('follows constraints and templates added, replaced and removed between reviews, kinds in the order their first constraint came', () => {
    const gk = new GatekeeperClient();
    gk.addTemplate(say('A', 'a1'));
    gk.addTemplate(say('B', 'b1'));
    gk.addConstraint(constraint('B', 'b'));
    expect(names(gk)).toEqual(['B/b:b1']);
    gk.addConstraint(constraint('A', 'x'));
    gk.addConstraint(constraint('A', 'y'));
    expect(names(gk)).toEqual(['B/b:b1', 'A/x:a1', 'A/y:a1']);
    gk.addTemplate(say('A', 'a2'));
    expect(names(gk)).toEqual(['B/b:b1', 'A/x:a2', 'A/y:a2']);
    gk.removeConstraint('A', 'x');
    expect(names(gk)).toEqual(['B/b:b1', 'A/y:a2']);
    gk.removeTemplate('B');
    expect(names(gk)).toEqual(['A/y:a2']);
    gk.addTemplate(say('B', 'b2'));
    expect(names(gk)).toEqual(['A/y:a2']);
    gk.addConstraint(constraint('B', 'b'));
    expect(names(gk)).toEqual(['A/y:a2', 'B/b:b2']);
  });

  it('keeps no part of a constraint whose violation set holds a bad result, and still evaluates the others', () => {
    const gk = new GatekeeperClient();
    gk.addTemplate(template('Mixed', 'package mixed\nviolation[{"msg": "fine"}] { true }\nviolation[{"msg": 7}] { true }'));
    gk.addTemplate(say('Ok', 'ok'));
    gk.addConstraint(constraint('Mixed', 'm'));
    gk.addConstraint(constraint('Ok', 'o'));
    const r = gk.review(reviewFromObject(pod('p')));
    expect(r.violations.map((v) => v.name)).toEqual(['o']);
    expect(r.errors).toEqual([{ kind: 'Mixed', name: 'm', enforcementAction: 'deny', message: expect.stringMatching(/string "msg"/) }]);
  });

  it('records one decision per evaluated constraint when the client has a decision log', () => {
    const dir = mkdtempSync(join(tmpdir(), 'skiff-admission-decisions-'));
    dirs.push(dir);
    const path = join(dir, 'decisions.ndjson');
    const gk = new GatekeeperClient({ decisionLog: new DecisionLogger({ path }) });
    gk.addTemplate(say('A', 'a'));
    gk.addConstraint(constraint('A', 'x', { parameters: { n: 1 } }));
    gk.addConstraint(constraint('A', 'skipped', { match: { namespaces: ['other'] } }));
    gk.review(reviewFromObject(pod('p')));
    const lines = readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { query: string; input: { parameters: unknown } });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ query: 'data.a.violation', input: { parameters: { n: 1 } } });
  });
});

describe('per-constraint time budget', () => {
  const slow = (kind: string): K8sObject => ({
    ...template(kind, ''),
    spec: { crd: { spec: { names: { kind } } }, targets: [{ target: 'admission.k8s.gatekeeper.sh', code: [{ engine: 'Rego', source: { version: 'v1', rego: `package ${kind.toLowerCase()}\nviolation contains {"msg": m} if {\n  n := count([x | some i in numbers.range(1, 3000); some j in numbers.range(1, 3000); x := i * j])\n  m := sprintf("%v", [n])\n}` } }] }] },
  });

  it('gives every constraint its own budget: one that runs out fails alone, the ones after it still run', () => {
    const gk = new GatekeeperClient({ evalTimeoutMs: 30 });
    gk.addTemplate(slow('SlowA'));
    gk.addTemplate(say('Fast', 'fast'));
    gk.addTemplate(slow('SlowB'));
    gk.addConstraint(constraint('SlowA', 'a'));
    gk.addConstraint(constraint('Fast', 'f'));
    gk.addConstraint(constraint('SlowB', 'b', { enforcementAction: 'warn' }));
    const t0 = Date.now();
    const r = gk.review(reviewFromObject(pod('p')));
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(r.violations.map((v) => v.name)).toEqual(['f']);
    expect(r.errors).toEqual([
      { kind: 'SlowA', name: 'a', enforcementAction: 'deny', message: 'eval_cancel_error: evaluation exceeded its deadline' },
      { kind: 'SlowB', name: 'b', enforcementAction: 'warn', message: 'eval_cancel_error: evaluation exceeded its deadline' },
    ]);
    // the next review starts every budget afresh
    expect(gk.review(reviewFromObject(pod('q'))).violations.map((v) => v.name)).toEqual(['f']);
  });

  it('leaves other evaluation errors as the engine reports them', () => {
    const gk = new GatekeeperClient({ evalTimeoutMs: 1000 });
    gk.addTemplate(template('Boom', 'package boom\nviolation[{"msg": msg}] { msg := 1 }'));
    gk.addConstraint(constraint('Boom', 'b'));
    expect(gk.review(reviewFromObject(pod('p'))).errors[0]!.message).toMatch(/string "msg"/);
  });
});

describe('Matcher outcomes', () => {
  const spec = { namespaceSelector: { matchLabels: { trust: 'low' } } };
  const nsObj = (name: string, labels: Record<string, string>): K8sObject => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });

  it('reports the object’s error first, and the old object’s when only it has one', () => {
    const m = new Matcher(spec);
    const ghost = pod('p', 'ghost');
    const other = pod('p', 'elsewhere');
    expect(m.matches({ object: ghost, oldObject: other }).error).toMatch(/"ghost"/);
    expect(m.matches({ object: { apiVersion: 'v1', kind: 'Node', metadata: { name: 'n' } }, oldObject: ghost })).toEqual({ matched: true });
    expect(m.matches({ oldObject: ghost }).error).toMatch(/"ghost"/);
    expect(m.matches({})).toEqual({ matched: false });
  });

  it('gives each call its own verdict (outcomes are shared and never changed)', () => {
    const m = new Matcher({ ...spec, excludedNamespaces: ['kube-*'] });
    const low = m.matches({ object: pod('p', 'sb'), namespaceObject: nsObj('sb', { trust: 'low' }) });
    const high = m.matches({ object: pod('p', 'core'), namespaceObject: nsObj('core', { trust: 'high' }) });
    const kube = m.matches({ object: pod('p', 'kube-system'), namespaceObject: nsObj('kube-system', { trust: 'low' }) });
    expect([low, high, kube]).toEqual([{ matched: true }, { matched: false }, { matched: false }]);
    expect(Object.isFrozen(low)).toBe(true);
  });

  it('treats a lone * as matching every name', () => {
    expect(wildcardMatches('*', 'anything')).toBe(true);
    expect(new Matcher({ namespaces: ['*'] }).matches({ object: pod('p', 'x') }).matched).toBe(true);
    expect(new Matcher({ name: '*' }).matches({ object: pod('q') }).matched).toBe(true);
  });
});

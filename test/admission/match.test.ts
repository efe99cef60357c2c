import { describe, expect,it } from 'vitest';

import { Matcher, type MatchSpec,wildcardMatches } from '../../src/admission/index.js';

const pod = (ns: string, name = 'p', labels: Record<string, string> = {}) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: ns, labels } });
const deploy = (ns: string) => ({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd', namespace: ns } });
const node = { apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1', labels: { role: 'x' } } };
const nsObj = (name: string, labels: Record<string, string> = {}) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });
const m = (spec: MatchSpec, target: Parameters<Matcher['matches']>[0]) => new Matcher(spec).matches(target);

describe('constraint match: every spec.match field', () => {
  it('wildcards: prefix, suffix, contains and exact', () => {
    expect(wildcardMatches('kube-*', 'kube-system')).toBe(true);
    expect(wildcardMatches('*-system', 'gatekeeper-system')).toBe(true);
    expect(wildcardMatches('*bank*', 'agilebank-prod')).toBe(true);
    expect(wildcardMatches('prod', 'production')).toBe(false);
    expect(wildcardMatches('kube-*', 'default')).toBe(false);
  });

  it('kinds: group and kind must both match one entry; empty lists and * match all', () => {
    expect(m({ kinds: [{ apiGroups: [''], kinds: ['Pod'] }] }, { object: pod('a') }).matched).toBe(true);
    expect(m({ kinds: [{ apiGroups: [''], kinds: ['Pod'] }] }, { object: deploy('a') }).matched).toBe(false);
    expect(m({ kinds: [{ apiGroups: ['apps'], kinds: ['Pod'] }] }, { object: pod('a') }).matched).toBe(false);
    expect(m({ kinds: [{ apiGroups: ['*'], kinds: ['Deployment'] }] }, { object: deploy('a') }).matched).toBe(true);
    expect(m({ kinds: [{ kinds: ['*'] }] }, { object: deploy('a') }).matched).toBe(true);
    expect(m({ kinds: [{ apiGroups: [''], kinds: ['Service'] }, { apiGroups: ['apps'], kinds: ['Deployment'] }] }, { object: deploy('a') }).matched).toBe(true);
  });

  it('scope: Cluster matches cluster-scoped objects and Namespaces; Namespaced the rest; * both', () => {
    expect(m({ scope: 'Cluster' }, { object: node }).matched).toBe(true);
    expect(m({ scope: 'Cluster' }, { object: nsObj('a') }).matched).toBe(true);
    expect(m({ scope: 'Cluster' }, { object: pod('a') }).matched).toBe(false);
    expect(m({ scope: 'Namespaced' }, { object: pod('a') }).matched).toBe(true);
    expect(m({ scope: 'Namespaced' }, { object: node }).matched).toBe(false);
    expect(m({ scope: '*' }, { object: node }).matched).toBe(true);
  });

  it('namespaces and excludedNamespaces: globbed, a Namespace by its own name, cluster-scoped objects unaffected', () => {
    expect(m({ namespaces: ['prod-*'] }, { object: pod('prod-eu') }).matched).toBe(true);
    expect(m({ namespaces: ['prod-*'] }, { object: pod('dev') }).matched).toBe(false);
    expect(m({ namespaces: ['prod-*'] }, { object: nsObj('prod-us') }).matched).toBe(true);
    expect(m({ namespaces: ['prod-*'] }, { object: node }).matched).toBe(true);
    expect(m({ excludedNamespaces: ['kube-*', '*-system'] }, { object: pod('kube-public') }).matched).toBe(false);
    expect(m({ excludedNamespaces: ['kube-*', '*-system'] }, { object: pod('gatekeeper-system') }).matched).toBe(false);
    expect(m({ excludedNamespaces: ['kube-*'] }, { object: pod('apps') }).matched).toBe(true);
    expect(m({ excludedNamespaces: ['kube-*'] }, { object: nsObj('kube-system') }).matched).toBe(false);
    expect(m({ excludedNamespaces: ['kube-*'] }, { object: node }).matched).toBe(true);
  });

  it('labelSelector: matchLabels and every matchExpressions operator', () => {
    const o = pod('a', 'p', { app: 'web', tier: 'front' });
    expect(m({ labelSelector: { matchLabels: { app: 'web' } } }, { object: o }).matched).toBe(true);
    expect(m({ labelSelector: { matchLabels: { app: 'db' } } }, { object: o }).matched).toBe(false);
    expect(m({ labelSelector: { matchExpressions: [{ key: 'tier', operator: 'In', values: ['front', 'edge'] }] } }, { object: o }).matched).toBe(true);
    expect(m({ labelSelector: { matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['front'] }] } }, { object: o }).matched).toBe(false);
    expect(m({ labelSelector: { matchExpressions: [{ key: 'owner', operator: 'NotIn', values: ['x'] }] } }, { object: o }).matched).toBe(true);
    expect(m({ labelSelector: { matchExpressions: [{ key: 'app', operator: 'Exists' }] } }, { object: o }).matched).toBe(true);
    expect(m({ labelSelector: { matchExpressions: [{ key: 'app', operator: 'DoesNotExist' }] } }, { object: o }).matched).toBe(false);
  });

  it('labelSelector: an UPDATE matches when the old object matches even if the new one does not', () => {
    const spec = { labelSelector: { matchLabels: { protected: 'true' } } };
    expect(m(spec, { object: pod('a', 'p', {}), oldObject: pod('a', 'p', { protected: 'true' }) }).matched).toBe(true);
    expect(m(spec, { object: pod('a', 'p', {}), oldObject: pod('a', 'p', {}) }).matched).toBe(false);
  });

  it('namespaceSelector: the namespace labels, a Namespace its own labels, cluster-scoped always, unknown namespace an error', () => {
    const spec = { namespaceSelector: { matchLabels: { trust: 'untrusted' } } };
    expect(m(spec, { object: pod('sb'), namespaceObject: nsObj('sb', { trust: 'untrusted' }) }).matched).toBe(true);
    expect(m(spec, { object: pod('core'), namespaceObject: nsObj('core', { trust: 'trusted' }) }).matched).toBe(false);
    expect(m(spec, { object: nsObj('sb', { trust: 'untrusted' }) }).matched).toBe(true);
    expect(m(spec, { object: node }).matched).toBe(true);
    const unknown = m(spec, { object: pod('ghost') });
    expect(unknown.matched).toBe(false);
    expect(unknown.error).toMatch(/namespace "ghost" is not known/);
  });

  it('name: exact and globbed', () => {
    expect(m({ name: 'p' }, { object: pod('a', 'p') }).matched).toBe(true);
    expect(m({ name: 'web-*' }, { object: pod('a', 'web-1') }).matched).toBe(true);
    expect(m({ name: 'web-*' }, { object: pod('a', 'db-1') }).matched).toBe(false);
  });

  it('all criteria must hold together', () => {
    const spec: MatchSpec = { kinds: [{ apiGroups: [''], kinds: ['Pod'] }], namespaces: ['prod'], labelSelector: { matchLabels: { app: 'web' } }, name: 'w*' };
    expect(m(spec, { object: pod('prod', 'w1', { app: 'web' }) }).matched).toBe(true);
    expect(m(spec, { object: pod('prod', 'x1', { app: 'web' }) }).matched).toBe(false);
    expect(m(spec, { object: pod('dev', 'w1', { app: 'web' }) }).matched).toBe(false);
  });
});

import { createHash } from 'node:crypto';

import type { KindRegistry } from '../kinds/registry.js';
import { compareVersions, CORE_GROUP, DEFAULT_GROUP, groupOf, groupVersionString, type KindDefinition, versionOf } from '../kinds/types.js';

/** The verbs every kind's collection and objects answer (`deletecollection` is DELETE on the collection). */
export const RESOURCE_VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'] as const;

/** The verbs of the `status` subresource: read, replace, merge patch. */
export const STATUS_VERBS = ['get', 'patch', 'update'] as const;

/** Where clients reach this server, as `/api` and `/apis/GROUP` report it (kube-apiserver's advertise address). */
export interface ServerAddress {
  clientCIDR: string;
  serverAddress: string;
}

/** A subresource of a kind as discovery lists it. */
interface Subresource {
  name: string;
  verbs: readonly string[];
  /** What the subresource answers when it is not the kind itself (a Function's scale is an autoscaling/v1 Scale). */
  responseKind?: { group: string; version: string; kind: string };
}

/** The verbs of the `scale` subresource: read, replace, patch (kubectl scale). */
export const SCALE_VERBS = ['get', 'patch', 'update'] as const;

/** subresourcesOf lists a kind's subresources: `status` unless the kind has none, a Function's `log` and `scale`. */
export function subresourcesOf(def: KindDefinition): Subresource[] {
  const out: Subresource[] = [];
  if (def.statusSubresource !== false) out.push({ name: 'status', verbs: STATUS_VERBS });
  if (def.kind === 'Function' && groupOf(def) === DEFAULT_GROUP) {
    out.push({ name: 'log', verbs: ['get'] });
    out.push({ name: 'scale', verbs: SCALE_VERBS, responseKind: { group: 'autoscaling', version: 'v1', kind: 'Scale' } });
  }
  return out;
}

/**
 * storageVersionHash is an opaque digest of the version objects are stored in, which clients compare
 * to notice a storage migration: the first 8 bytes of SHA-256 over `GROUP/VERSION/KIND`, base64.
 */
export function storageVersionHash(def: KindDefinition): string {
  return createHash('sha256').update(`${groupOf(def)}/${versionOf(def)}/${def.kind}`).digest().subarray(0, 8).toString('base64');
}

/** apiVersions is `/api`: the core group's versions. */
export function apiVersions(address: ServerAddress[]) {
  return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: address };
}

/**
 * groupsOf lists the named groups (the core group is served under `/api`), each with its versions in
 * Kubernetes' version priority (v1 before v1beta1 before v1alpha1), the first being the preferred one
 * as for a CRD's versions. Skiff's own group leads: kubectl resolves a resource name found in two
 * groups to the first.
 */
export function groupsOf(kinds: KindRegistry): Array<{ name: string; versions: string[] }> {
  const byGroup = new Map<string, string[]>();
  for (const { group, version } of kinds.groupVersions()) {
    if (group === CORE_GROUP) continue;
    const list = byGroup.get(group) ?? [];
    if (!list.includes(version)) list.push(version);
    byGroup.set(group, list);
  }
  return [...byGroup]
    .map(([name, versions]) => ({ name, versions: versions.sort(compareVersions) }))
    .sort((a, b) => Number(b.name === DEFAULT_GROUP) - Number(a.name === DEFAULT_GROUP));
}

function apiGroupOf(g: { name: string; versions: string[] }) {
  const gvs = g.versions.map((v) => ({ groupVersion: `${g.name}/${v}`, version: v }));
  return { name: g.name, versions: gvs, preferredVersion: gvs[0]! };
}

/** apiGroupList is `/apis`: every named group with its versions. */
export function apiGroupList(kinds: KindRegistry) {
  return { kind: 'APIGroupList', apiVersion: 'v1', groups: groupsOf(kinds).map(apiGroupOf) };
}

/** apiGroup is `/apis/GROUP`, or undefined when the server has no such group. */
export function apiGroup(kinds: KindRegistry, group: string, address: ServerAddress[]) {
  const g = groupsOf(kinds).find((x) => x.name === group);
  return g ? { kind: 'APIGroup', apiVersion: 'v1', ...apiGroupOf(g), serverAddressByClientCIDRs: address } : undefined;
}

/**
 * apiResourceList is `/api/v1` or `/apis/GROUP/VERSION`: each kind with its verbs and names, then its
 * subresources as `PLURAL/SUB`. `columns` is Skiff's own addition (the `skiff` CLI prints kinds it
 * learns at run time with them); Kubernetes clients ignore it.
 */
export function apiResourceList(kinds: KindRegistry, group: string, version: string) {
  const resources = [];
  for (const k of sorted(kinds.inGroupVersion(group, version))) {
    resources.push({
      name: k.plural,
      singularName: k.singular,
      namespaced: k.namespaced,
      kind: k.kind,
      verbs: [...RESOURCE_VERBS],
      ...(k.shortNames?.length ? { shortNames: k.shortNames } : {}),
      ...(k.categories?.length ? { categories: k.categories } : {}),
      storageVersionHash: storageVersionHash(k),
      columns: k.printerColumns.map((c) => ({ name: c.name, wide: !!c.wide, ...(c.jsonPath ? { jsonPath: c.jsonPath } : {}) })),
    });
    for (const sub of subresourcesOf(k)) {
      // A subresource of another kind names its group and version, as kube lists deployments/scale.
      const other = sub.responseKind ? { group: sub.responseKind.group, version: sub.responseKind.version, kind: sub.responseKind.kind } : { kind: k.kind };
      resources.push({ name: `${k.plural}/${sub.name}`, singularName: '', namespaced: k.namespaced, ...other, verbs: [...sub.verbs] });
    }
  }
  // kube-apiserver leaves apiVersion out of the core group's list.
  return { kind: 'APIResourceList', ...(group === CORE_GROUP ? {} : { apiVersion: 'v1' }), groupVersion: groupVersionString(group, version), resources };
}

/** The versions of the aggregated discovery format Skiff speaks, newest first. */
export type AggregatedVersion = 'v2' | 'v2beta1';

/**
 * aggregatedList is the aggregated discovery document (APIGroupDiscoveryList): for `/api` the core group
 * alone, for `/apis` every named group, each version with all its resources, so a client learns
 * everything in one request. The v2beta1 shape is the same as v2's.
 */
export function aggregatedList(kinds: KindRegistry, which: 'core' | 'named', version: AggregatedVersion) {
  const groups = which === 'core' ? [{ name: CORE_GROUP, versions: kinds.inGroupVersion(CORE_GROUP, 'v1').length ? ['v1'] : [] }] : groupsOf(kinds);
  return {
    kind: 'APIGroupDiscoveryList',
    apiVersion: `apidiscovery.k8s.io/${version}`,
    metadata: {},
    items: groups
      .filter((g) => g.versions.length)
      .map((g) => ({
        metadata: g.name === CORE_GROUP ? {} : { name: g.name },
        versions: g.versions.map((v) => ({ version: v, resources: sorted(kinds.inGroupVersion(g.name, v)).map((k) => aggregatedResource(k, v)), freshness: 'Current' })),
      })),
  };
}

/** aggregatedResource is a kind as listed under one of its versions (its storage version unless another is named). */
function aggregatedResource(k: KindDefinition, version = versionOf(k)) {
  const responseKind = { group: groupOf(k), version, kind: k.kind };
  const subs = subresourcesOf(k);
  return {
    resource: k.plural,
    responseKind,
    scope: k.namespaced ? 'Namespaced' : 'Cluster',
    singularResource: k.singular,
    verbs: [...RESOURCE_VERBS],
    ...(k.shortNames?.length ? { shortNames: k.shortNames } : {}),
    ...(k.categories?.length ? { categories: k.categories } : {}),
    ...(subs.length ? { subresources: subs.map((s) => ({ subresource: s.name, responseKind: s.responseKind ?? responseKind, verbs: [...s.verbs] })) } : {}),
  };
}

function sorted(defs: KindDefinition[]): KindDefinition[] {
  return [...defs].sort((a, b) => a.plural.localeCompare(b.plural));
}

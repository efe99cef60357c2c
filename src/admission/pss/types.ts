/** PssLevel is a Pod Security Standards level. */
export type PssLevel = 'privileged' | 'baseline' | 'restricted';

/** Version is a Kubernetes minor version as [major, minor]. */
export type Version = readonly [number, number];

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

/** PodView is what checks read: the pod's metadata (annotations) and spec, whichever object it came from. */
export interface PodView {
  metadata: { name?: string; annotations?: Record<string, string> };
  spec: Json;
}

/** CheckResult is one failed check: its id and PSA's forbidden reason and detail. */
export interface CheckResult {
  id: string;
  reason: string;
  detail: string;
}

/** Forbidden is what a behaviour returns when the pod fails: PSA's reason and detail (the table adds the id). */
export interface Forbidden {
  reason: string;
  detail: string;
}

/** Behaviour is one check's rule for a range of versions: undefined when the pod passes. */
export type Behaviour = (pod: PodView) => Forbidden | undefined;

/** VersionedBehaviour is a behaviour and the first version it applies to (until the next entry's version). */
export interface VersionedBehaviour {
  since: Version;
  run: Behaviour;
}

/**
 * Check is one row of the Pod Security table: a check id, its level, the baseline checks it replaces
 * at the restricted level (from its first version on), and its behaviours in increasing version order.
 */
export interface Check {
  id: string;
  level: Exclude<PssLevel, 'privileged'>;
  overrides?: readonly string[];
  versions: readonly VersionedBehaviour[];
}

/** ContainerRef is one container of any of the three container lists. */
export interface ContainerRef {
  name: string;
  c: Json;
}

/** containersOf lists init, regular and ephemeral containers, in that order (as PSA visits them). */
export function containersOf(spec: Json): ContainerRef[] {
  const out: ContainerRef[] = [];
  for (const list of ['initContainers', 'containers', 'ephemeralContainers'])
    for (const c of Array.isArray(spec?.[list]) ? spec[list] : []) out.push({ name: String(c?.name ?? ''), c: c ?? {} });
  return out;
}

/** quoteList renders names as PSA's joinQuote does: `"a", "b"` (no escaping, as Go's `"` + Join + `"`). */
export function quoteList(xs: readonly string[]): string {
  return xs.length ? `"${xs.join('", "')}"` : '';
}

/** plural picks the singular or plural word as PSA's pluralize does. */
export function plural(n: number, one: string, many: string): string {
  return n === 1 ? one : many;
}

/** containers renders `container "a"` or `containers "a", "b"`. */
export function containerNames(names: readonly string[]): string {
  return `${plural(names.length, 'container', 'containers')} ${quoteList(names)}`;
}

/** sortedUnique sorts and de-duplicates as Go's sets.List does. */
export function sortedUnique(xs: Iterable<string>): string[] {
  return [...new Set(xs)].sort();
}

/** isWindowsPod tells whether the pod declares `spec.os.name: windows` (exempt from Linux-only checks from v1.25). */
export function isWindowsPod(pod: PodView): boolean {
  return pod.spec?.os?.name === 'windows';
}

/** inUserNamespace tells whether the pod runs in a user namespace (`spec.hostUsers: false`). */
export function inUserNamespace(pod: PodView): boolean {
  return pod.spec?.hostUsers === false;
}

/** parseVersionText reads `v1.30` or `1.30` into a Version, or undefined when it is not one. */
export function parseVersionText(text: string): Version | undefined {
  const m = /^v?(\d+)\.(\d+)$/.exec(text.trim());
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

/** compareVersions orders versions: negative when a is older than b. */
export function compareVersions(a: Version, b: Version): number {
  return a[0] - b[0] || a[1] - b[1];
}

/** formatVersion renders a version as `v1.30`. */
export function formatVersion(v: Version): string {
  return `v${v[0]}.${v[1]}`;
}

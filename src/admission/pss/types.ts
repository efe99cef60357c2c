/** PssLevel is a Pod Security Standards level. */
export type PssLevel = 'privileged' | 'baseline' | 'restricted';

/** Version is a Kubernetes minor version as [major, minor]; `latest` is the highest known. */
export type Version = readonly [number, number];

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

/** PodView is what checks read: the pod's metadata (annotations) and spec, whichever object it came from. */
export interface PodView {
  metadata: { name?: string; annotations?: Record<string, string> };
  spec: Json;
}

/** CheckResult is one failed check: PSA's forbidden reason and detail. */
export interface CheckResult {
  id: string;
  reason: string;
  detail: string;
}

/** Check is one Pod Security check with its behaviour per Kubernetes version (the newest version ≤ the requested one applies). */
export interface Check {
  id: string;
  level: Exclude<PssLevel, 'privileged'>;
  versions: Array<{ since: Version; run: (pod: PodView) => CheckResult | undefined }>;
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

/** quoteList renders names as PSA does: `"a", "b"`. */
export function quoteList(xs: string[]): string {
  return xs.map((x) => JSON.stringify(x)).join(', ');
}

/** plural picks "container" or "containers" as PSA's messages do. */
export function plural(n: number, one: string, many: string): string {
  return n === 1 ? one : many;
}

export const V = (minor: number): Version => [1, minor];

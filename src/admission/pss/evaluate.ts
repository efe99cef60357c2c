import { PssLevelError } from '../errors.js';
import { baselineChecks } from './checks-baseline.js';
import { restrictedChecks } from './checks-restricted.js';
import { functionAsPod } from './function-pod.js';
import type { CheckResult, Json, PodView, PssLevel, Version } from './types.js';

/** The newest Kubernetes minor version whose Pod Security behaviour Skiff knows; `latest` means this. */
export const LATEST: Version = [1, 35];
const LEVELS: ReadonlySet<string> = new Set(['privileged', 'baseline', 'restricted']);

/** LevelVersion is a level pinned to a version (`latest` when not pinned). */
export interface LevelVersion {
  level: PssLevel;
  version: Version | 'latest';
}

/** parseVersion reads `latest`, `v1.30` or `1.30`. */
export function parseVersion(text: string | undefined): Version | 'latest' {
  if (text === undefined || text === '' || text === 'latest') return 'latest';
  const m = /^v?(\d+)\.(\d+)$/.exec(text.trim());
  if (!m || m[1] !== '1') throw new PssLevelError(`Pod Security version "${text}" must be "latest" or a Kubernetes version such as v1.30`);
  return [1, Number(m[2])];
}

/** parseLevel reads `LEVEL[:VERSION]` (as `skiff admission check --pss` takes it). */
export function parseLevel(text: string): LevelVersion {
  const [level, version] = text.split(':');
  if (!level || !LEVELS.has(level)) throw new PssLevelError(`Pod Security level "${level}" must be privileged, baseline or restricted`);
  return { level: level as PssLevel, version: parseVersion(version) };
}

/** label renders a level as PSA does in messages: `restricted:latest`, `baseline:v1.30`. */
export function levelLabel(lv: LevelVersion): string {
  return `${lv.level}:${lv.version === 'latest' ? 'latest' : `v${lv.version[0]}.${lv.version[1]}`}`;
}

const atOrBefore = (a: Version, b: Version) => a[0] < b[0] || (a[0] === b[0] && a[1] <= b[1]);

/** evaluatePod runs every check of the level (restricted includes baseline) at the pinned version. */
export function evaluatePod(pod: PodView, lv: LevelVersion): CheckResult[] {
  if (lv.level === 'privileged') return [];
  const v = lv.version === 'latest' ? LATEST : lv.version;
  const checks = lv.level === 'restricted' ? [...baselineChecks, ...restrictedChecks] : baselineChecks;
  const out: CheckResult[] = [];
  for (const c of checks) {
    let run: ((p: PodView) => CheckResult | undefined) | undefined;
    for (const ver of c.versions) if (atOrBefore(ver.since, v)) run = ver.run;
    const r = run?.(pod);
    if (r) out.push(r);
  }
  return out;
}

/** POD_TEMPLATE_KINDS are the workload kinds whose pod template Pod Security checks. */
export const POD_TEMPLATE_KINDS: ReadonlySet<string> = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'Job', 'CronJob', 'ReplicaSet', 'ReplicationController', 'PodTemplate']);

/** podViewOf finds the pod in an object: a Pod, a workload's pod template, or a Skiff Function; undefined for other kinds. */
export function podViewOf(obj: Json): PodView | undefined {
  const kind = obj?.kind;
  const group = String(obj?.apiVersion ?? '').includes('/') ? String(obj.apiVersion).split('/')[0] : '';
  if (kind === 'Pod' && group === '') return { metadata: obj.metadata ?? {}, spec: obj.spec ?? {} };
  if (kind === 'Function' && group === 'skiff.dev') return functionAsPod(obj);
  if (!POD_TEMPLATE_KINDS.has(kind)) return undefined;
  const tpl = kind === 'CronJob' ? obj.spec?.jobTemplate?.spec?.template : kind === 'PodTemplate' ? obj.template : obj.spec?.template;
  if (!tpl) return undefined;
  return { metadata: tpl.metadata ?? {}, spec: tpl.spec ?? {} };
}

/** formatViolations renders PSA's message: `violates PodSecurity "restricted:latest": reason (detail), ...`. */
export function formatViolations(results: CheckResult[], lv: LevelVersion, verb = 'violates'): string {
  return `${verb} PodSecurity "${levelLabel(lv)}": ${results.map((r) => `${r.reason} (${r.detail})`).join(', ')}`;
}

/** NamespacePolicy is the Pod Security a namespace's labels ask for, per mode. */
export interface NamespacePolicy {
  enforce?: LevelVersion;
  audit?: LevelVersion;
  warn?: LevelVersion;
  /** label problems (bad level or version), reported rather than thrown */
  errors: string[];
}

/** namespacePolicy reads `pod-security.kubernetes.io/{enforce,audit,warn}[-version]` labels. */
export function namespacePolicy(labels: Record<string, string> | undefined): NamespacePolicy {
  const out: NamespacePolicy = { errors: [] };
  for (const mode of ['enforce', 'audit', 'warn'] as const) {
    const level = labels?.[`pod-security.kubernetes.io/${mode}`];
    if (level === undefined) continue;
    try {
      if (!LEVELS.has(level)) throw new PssLevelError(`label pod-security.kubernetes.io/${mode}="${level}" must be privileged, baseline or restricted`);
      out[mode] = { level: level as PssLevel, version: parseVersion(labels?.[`pod-security.kubernetes.io/${mode}-version`]) };
    } catch (e) {
      out.errors.push((e as Error).message);
    }
  }
  return out;
}

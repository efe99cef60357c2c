import { PssLevelError } from '../errors.js';

import { functionAsPod } from './function-pod.js';
import { NEWEST_RELEASE, PSS_TABLE } from './table.js';
import { type Behaviour, type Check, type CheckResult, compareVersions, formatVersion, type Json, parseVersionText, type PodView, type PssLevel, type Version } from './types.js';

/** The newest Kubernetes release whose Pod Security policy Skiff knows; `latest` means this. */
export const LATEST: Version = NEWEST_RELEASE;
const LEVELS: ReadonlySet<string> = new Set(['privileged', 'baseline', 'restricted']);

/** LevelVersion is a level pinned to a version (`latest` when not pinned). */
export interface LevelVersion {
  level: PssLevel;
  version: Version | 'latest';
}

/** parseVersion reads `latest`, `v1.30` or `1.30`. */
export function parseVersion(text: string | undefined): Version | 'latest' {
  if (text === undefined || text === '' || text === 'latest') return 'latest';
  const v = parseVersionText(text);
  if (!v || v[0] !== 1) throw new PssLevelError(`Pod Security version "${text}" must be "latest" or a Kubernetes version such as v1.30`);
  return v;
}

/** parseLevel reads `LEVEL[:VERSION]` (as `skiff admission check --pss` takes it). */
export function parseLevel(text: string): LevelVersion {
  const [level, version] = text.split(':');
  if (!level || !LEVELS.has(level)) throw new PssLevelError(`Pod Security level "${level}" must be privileged, baseline or restricted`);
  return { level: level as PssLevel, version: parseVersion(version) };
}

/** label renders a level as PSA does in messages: `restricted:latest`, `baseline:v1.30`. */
export function levelLabel(lv: LevelVersion): string {
  return `${lv.level}:${lv.version === 'latest' ? 'latest' : formatVersion(lv.version)}`;
}

/**
 * validateTable lists what is wrong with a version table, as upstream's registry refuses it: a
 * duplicate id, a check without versions or with versions not strictly increasing, a version
 * newer than NEWEST_RELEASE, an override by a baseline check or of a check that is not baseline.
 */
export function validateTable(table: readonly Check[], newest: Version = NEWEST_RELEASE): string[] {
  const problems: string[] = [];
  const levels = new Map<string, string>();
  for (const c of table) {
    if (levels.has(c.id)) problems.push(`check ${c.id}: listed twice`);
    levels.set(c.id, c.level);
    if (!c.versions.length) problems.push(`check ${c.id}: no versions`);
    c.versions.forEach((v, i) => {
      if (v.since[0] !== 1) problems.push(`check ${c.id}: version ${formatVersion(v.since)} is not a Kubernetes 1.x version`);
      if (i > 0 && compareVersions(c.versions[i - 1]!.since, v.since) >= 0) problems.push(`check ${c.id}: versions must be strictly increasing (${formatVersion(v.since)})`);
      if (compareVersions(v.since, newest) > 0) problems.push(`check ${c.id}: version ${formatVersion(v.since)} is newer than the newest release ${formatVersion(newest)}`);
    });
  }
  for (const c of table)
    for (const o of c.overrides ?? []) {
      if (c.level !== 'restricted') problems.push(`check ${c.id}: only restricted checks may override others`);
      if (levels.get(o) !== 'baseline') problems.push(`check ${c.id}: overrides ${o}, which is not a baseline check`);
    }
  return problems;
}

interface Step {
  id: string;
  run: Behaviour;
}

/** Resolved is the table inflated per minor version: the checks, in PSA's order, each level runs. */
interface Resolved {
  maxMinor: number;
  baseline: ReadonlyMap<number, readonly Step[]>;
  restricted: ReadonlyMap<number, readonly Step[]>;
}

/**
 * resolveTable inflates the table as upstream's registry does: per minor version, the newest
 * behaviour of each check at or before it; baseline checks by id, then restricted checks by id;
 * the restricted level drops the baseline checks its active checks override.
 */
function resolveTable(table: readonly Check[]): Resolved {
  const problems = validateTable(table);
  if (problems.length) throw new Error(`Pod Security table is invalid: ${problems.join('; ')}`);
  const maxMinor = Math.max(...table.flatMap((c) => c.versions.map((v) => v.since[1])));
  const byId = (a: Check, b: Check) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  const baselineChecks = table.filter((c) => c.level === 'baseline').sort(byId);
  const restrictedChecks = table.filter((c) => c.level === 'restricted').sort(byId);
  const at = (c: Check, minor: number): Behaviour | undefined => {
    let run: Behaviour | undefined;
    for (const v of c.versions) if (v.since[1] <= minor) run = v.run;
    return run;
  };
  const baseline = new Map<number, Step[]>();
  const restricted = new Map<number, Step[]>();
  for (let minor = 0; minor <= maxMinor; minor++) {
    const b = baselineChecks.flatMap((c) => stepOf(c, at(c, minor)));
    const r = restrictedChecks.flatMap((c) => stepOf(c, at(c, minor)));
    const overridden = new Set(restrictedChecks.filter((c) => at(c, minor)).flatMap((c) => c.overrides ?? []));
    baseline.set(minor, b);
    restricted.set(minor, [...b.filter((s) => !overridden.has(s.id)), ...r]);
  }
  return { maxMinor, baseline, restricted };
}

const stepOf = (c: Check, run: Behaviour | undefined): Step[] => (run ? [{ id: c.id, run }] : []);

const RESOLVED = resolveTable(PSS_TABLE);

/** policyMinor is the policy version a level is evaluated at: newer versions than the table's use its newest. */
function policyMinor(version: Version | 'latest'): number {
  const v = version === 'latest' ? LATEST : version;
  return Math.min(v[1], RESOLVED.maxMinor);
}

/** evaluatePod runs every check of the level (restricted includes the baseline checks it does not override) at the pinned version. */
export function evaluatePod(pod: PodView, lv: LevelVersion): CheckResult[] {
  if (lv.level === 'privileged') return [];
  const steps = (lv.level === 'restricted' ? RESOLVED.restricted : RESOLVED.baseline).get(policyMinor(lv.version)) ?? [];
  const out: CheckResult[] = [];
  for (const s of steps) {
    const f = s.run(pod);
    if (f) out.push({ id: s.id, reason: f.reason, detail: f.detail });
  }
  return out;
}

/** checksAt lists the ids of the checks a level runs at a version, in PSA's order. */
export function checksAt(lv: LevelVersion): string[] {
  if (lv.level === 'privileged') return [];
  return ((lv.level === 'restricted' ? RESOLVED.restricted : RESOLVED.baseline).get(policyMinor(lv.version)) ?? []).map((s) => s.id);
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

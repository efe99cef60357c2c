import { isAbsolute, resolve, sep } from 'node:path';

import type { AdmissionHook } from '../api/admission.js';
import { invalid } from '../api/errors.js';
import type { FieldError } from '../api/kinds/types.js';
import { DEFAULT_FUNCTION_MAXIMA, type FunctionMaxima,HostDirs } from '../security/index.js';
import { SkiffError } from '../util/errors.js';
import { parseBytes, parseDurationMs } from '../util/quantity.js';

/**
 * FunctionGrants are the operator's grants a Function is held to: the host directories it may mount
 * (`--allow-host-dir`) and the ceilings on its limits (`--max-function-*`). The composition root builds
 * them from `skiff up`'s flags; admission refuses what exceeds them, and the invoker checks again
 * before it serves, because a server restarted with fewer grants still holds the Functions admitted
 * under the old ones.
 */
export interface FunctionGrants {
  hostDirs: HostDirs;
  maxima: FunctionMaxima;
}

/** The grants of a server started without flags: no host directory, the default maxima. */
export function defaultFunctionGrants(): FunctionGrants {
  return { hostDirs: HostDirs.none(), maxima: { ...DEFAULT_FUNCTION_MAXIMA } };
}

/**
 * Limits a Function runs with when its spec leaves them out: 128Mi memory, 10s timeout, 16Mi output,
 * 64 concurrent runs and 256 queued beyond those. Each is clamped to the operator's maximum
 * (`--max-function-*`), so a server started with a lower ceiling lowers the default too.
 */
export const DEFAULT_LIMITS = { memoryBytes: 128 * 1024 * 1024, timeoutMs: 10_000, maxOutputBytes: 16 * 1024 * 1024, concurrency: 64, queue: 256 };

/** ResolvedLimits are the limits one Function runs with. */
export type ResolvedLimits = typeof DEFAULT_LIMITS;

/** FunctionGrantError: a stored Function asks for more than this server grants (Ready=False with this reason). */
export class FunctionGrantError extends SkiffError {
  constructor(code: 'host_dir_not_allowed' | 'limits_exceed_maxima', message: string) {
    super(code, message);
  }
}

interface SpecLike {
  capabilities?: { dirs?: Array<{ host?: unknown; guest?: unknown; readOnly?: unknown }> };
  limits?: { memory?: unknown; timeout?: unknown; concurrency?: unknown; queue?: unknown; output?: unknown };
}

/** The maxima flags, per limit field, with how each value is read and shown. */
const LIMIT_FIELDS = [
  { key: 'memory', flag: '--max-function-memory', max: (m: FunctionMaxima) => m.memoryBytes, read: bytes, show: showBytes },
  { key: 'timeout', flag: '--max-function-timeout', max: (m: FunctionMaxima) => m.timeoutMs, read: duration, show: showMs },
  { key: 'concurrency', flag: '--max-function-concurrency', max: (m: FunctionMaxima) => m.concurrency, read: count, show: String },
  { key: 'queue', flag: '--max-function-queue', max: (m: FunctionMaxima) => m.queue, read: count, show: String },
  { key: 'output', flag: '--max-function-output', max: (m: FunctionMaxima) => m.outputBytes, read: bytes, show: showBytes },
] as const;

/**
 * hostDirProblems lists the `spec.capabilities.dirs[i].host` entries the grants do not cover: `/`
 * always, relative paths, and anything outside every `--allow-host-dir` (after resolving symlinks
 * in the part of the path that exists).
 */
export function hostDirProblems(spec: SpecLike, hostDirs: HostDirs): FieldError[] {
  const out: FieldError[] = [];
  const dirs = Array.isArray(spec.capabilities?.dirs) ? spec.capabilities!.dirs! : [];
  dirs.forEach((d, i) => {
    const field = `spec.capabilities.dirs[${i}].host`;
    const host = d?.host;
    if (typeof host !== 'string') return;
    if (!isAbsolute(host)) {
      out.push({ field, message: `"${host}" must be an absolute host path inside a directory that skiff up grants with --allow-host-dir DIR`, reason: 'FieldValueInvalid' });
    } else if (resolve(host) === sep) {
      out.push({ field, message: 'the host root "/" can never be mounted; mount a directory inside one that skiff up grants with --allow-host-dir DIR', reason: 'FieldValueForbidden' });
    } else if (!hostDirs.contains(host)) {
      out.push({ field, message: hostDirs.refusal(host, field).slice(field.length + 2), reason: 'FieldValueForbidden' });
    }
  });
  return out;
}

/** limitProblems lists the `spec.limits` fields above the operator's maxima, naming the flag that sets each. */
export function limitProblems(spec: SpecLike, maxima: FunctionMaxima): FieldError[] {
  const out: FieldError[] = [];
  const l = spec.limits ?? {};
  for (const f of LIMIT_FIELDS) {
    const raw = (l as Record<string, unknown>)[f.key];
    if (raw === undefined) continue;
    const v = f.read(raw);
    if (v === undefined) continue;
    const max = f.max(maxima);
    if (v > max) {
      out.push({ field: `spec.limits.${f.key}`, message: `${String(raw)} is above this server's maximum of ${f.show(max)}; ask for less, or start skiff up with a larger ${f.flag}`, reason: 'FieldValueForbidden' });
    }
  }
  return out;
}

/** grantProblems is every way a Function spec exceeds the grants. */
export function grantProblems(spec: SpecLike, grants: FunctionGrants): FieldError[] {
  return [...hostDirProblems(spec, grants.hostDirs), ...limitProblems(spec, grants.maxima)];
}

/**
 * resolveLimits turns `spec.limits` into the limits a run gets: a value left out takes its default
 * clamped to the maximum, and a value above its maximum is refused (FunctionGrantError naming the flag).
 */
export function resolveLimits(spec: SpecLike, maxima: FunctionMaxima): ResolvedLimits {
  const over = limitProblems(spec, maxima);
  if (over.length) throw new FunctionGrantError('limits_exceed_maxima', over.map((e) => `${e.field}: ${e.message}`).join('; '));
  const l = spec.limits ?? {};
  const pick = (raw: unknown, read: (v: unknown) => number | undefined, def: number, max: number) => (raw !== undefined ? (read(raw) ?? Math.min(def, max)) : Math.min(def, max));
  return {
    memoryBytes: pick(l.memory, bytes, DEFAULT_LIMITS.memoryBytes, maxima.memoryBytes),
    timeoutMs: pick(l.timeout, duration, DEFAULT_LIMITS.timeoutMs, maxima.timeoutMs),
    maxOutputBytes: pick(l.output, bytes, DEFAULT_LIMITS.maxOutputBytes, maxima.outputBytes),
    concurrency: pick(l.concurrency, count, DEFAULT_LIMITS.concurrency, maxima.concurrency),
    queue: pick(l.queue, count, DEFAULT_LIMITS.queue, maxima.queue),
  };
}

/** checkHostDirs throws a FunctionGrantError when a Function's directories are not (or no longer) granted. */
export function checkHostDirs(namespace: string, name: string, spec: SpecLike, hostDirs: HostDirs): void {
  const bad = hostDirProblems(spec, hostDirs);
  if (bad.length) {
    throw new FunctionGrantError('host_dir_not_allowed', `function ${namespace}/${name} cannot mount its directories: ${bad.map((e) => `${e.field}: ${e.message}`).join('; ')}`);
  }
}

/**
 * functionGrantsHook refuses, at admission, a Function whose directories or limits exceed the grants:
 * 422 Invalid naming each field and the flag that would allow it.
 */
export function functionGrantsHook(grants: FunctionGrants): AdmissionHook {
  return {
    name: 'function-grants',
    admit(req) {
      if (req.kind !== 'Function' || req.operation === 'DELETE' || !req.object) return { allowed: true };
      const problems = grantProblems((req.object.spec ?? {}) as SpecLike, grants);
      if (problems.length) throw invalid('Function', req.name, problems);
      return { allowed: true };
    },
  };
}

function bytes(v: unknown): number | undefined {
  return typeof v === 'string' || typeof v === 'number' ? parseBytes(v) : undefined;
}

function duration(v: unknown): number | undefined {
  return typeof v === 'string' || typeof v === 'number' ? parseDurationMs(v) : undefined;
}

function count(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : undefined;
}

function showBytes(n: number): string {
  for (const [unit, size] of [['Gi', 2 ** 30], ['Mi', 2 ** 20], ['Ki', 2 ** 10]] as const) if (n >= size && n % size === 0) return `${n / size}${unit}`;
  return `${n} bytes`;
}

function showMs(n: number): string {
  if (n >= 60_000 && n % 60_000 === 0) return `${n / 60_000}m`;
  if (n >= 1000 && n % 1000 === 0) return `${n / 1000}s`;
  return `${n}ms`;
}

import { parseBytes, parseDurationMs } from '../util/quantity.js';

import { type AdviseInput, AdviseInputError } from './advise.js';

/** The annotation prefix under which a Function manifest may state its needs for `skiff advise`. */
export const ADVISE_ANNOTATION_PREFIX = 'advise.skiff.dev/';

const FLAG_ANNOTATIONS = {
  untrusted: 'untrusted',
  'hardware-isolation': 'hardwareIsolation',
  'needs-linux-syscalls': 'needsLinuxSyscalls',
  stateful: 'stateful',
  gpu: 'gpu',
} as const;

/**
 * parseDensity reads a density: `200` or `200/GiB` (replicas per GiB), `20/node` (replicas per node,
 * turned into per GiB with the node's memory). `what` names the flag or field in the error.
 */
export function parseDensity(text: string, nodeMemoryBytes: number, what: string): NonNullable<AdviseInput['density']> {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:\/\s*(gib|node))?\s*$/i.exec(text);
  const replicas = m ? Number(m[1]) : NaN;
  if (!m || !(replicas > 0)) throw new AdviseInputError(`${what}: "${text}" is not a density; give replicas per GiB (200, 200/GiB) or per node (20/node), more than 0`);
  return m[2]?.toLowerCase() === 'node' ? { replicas, per: 'node', nodeMemoryBytes } : { replicas, per: 'GiB' };
}

/** parseColdStart reads a cold-start limit (`50ms`, `2s`, or a bare number of milliseconds). */
export function parseColdStart(text: string, what: string): number {
  const ms = parseDurationMs(text);
  if (ms === undefined) throw new AdviseInputError(`${what}: "${text}" is not a duration (e.g. 50ms, 2s)`);
  return ms;
}

/** FunctionNeeds is what a Function manifest says about its needs, and which Function it is. */
export interface FunctionNeeds {
  input: AdviseInput;
  /** `NAMESPACE/NAME` of the Function. */
  name: string;
}

/**
 * functionNeeds reads what a Function manifest implies: `spec.image` means an existing container image,
 * `spec.module` a Wasm module, `spec.runtimeClassName` the class the author chose, `spec.resources.memory`
 * each replica's memory, and `advise.skiff.dev/*` annotations (`untrusted`, `hardware-isolation`,
 * `needs-linux-syscalls`, `stateful`, `gpu` set to "true"; `max-cold-start: 50ms`; `density: 200` or
 * `20/node`) the needs a manifest cannot otherwise express. Errors name the field.
 */
export function functionNeeds(obj: unknown, nodeMemoryBytes: number): FunctionNeeds {
  const o = obj as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown; annotations?: Record<string, unknown> }; spec?: Record<string, unknown> } | null;
  if (!o || typeof o !== 'object' || o.kind !== 'Function') throw new AdviseInputError(`not a Function (kind: ${o && typeof o === 'object' ? String(o.kind ?? 'none') : typeof o})`);
  const spec = o.spec && typeof o.spec === 'object' ? o.spec : {};
  const name = `${typeof o.metadata?.namespace === 'string' ? o.metadata.namespace : 'default'}/${String(o.metadata?.name ?? '<unnamed>')}`;
  const input: AdviseInput = {};
  const nonEmpty = (field: string) => {
    const v = spec[field];
    if (v === undefined || v === null) return false;
    if (typeof v !== 'string' || !v) throw new AdviseInputError(`Function ${name}: spec.${field} must be a non-empty string`);
    return true;
  };
  if (nonEmpty('image')) input.image = true;
  if (nonEmpty('module')) input.module = true;
  if (nonEmpty('runtimeClassName')) input.chosen = spec.runtimeClassName as string;
  const resources = spec.resources as { memory?: unknown } | undefined;
  if (resources?.memory !== undefined) {
    const bytes = typeof resources.memory === 'string' || typeof resources.memory === 'number' ? parseBytes(resources.memory) : undefined;
    if (!bytes) throw new AdviseInputError(`Function ${name}: spec.resources.memory "${String(resources.memory)}" is not a byte quantity (e.g. 256Mi)`);
    input.memoryBytes = bytes;
  }
  for (const [key, raw] of Object.entries(o.metadata?.annotations ?? {})) {
    if (!key.startsWith(ADVISE_ANNOTATION_PREFIX)) continue;
    const what = `Function ${name}: annotation ${key}`;
    const short = key.slice(ADVISE_ANNOTATION_PREFIX.length);
    const value = String(raw);
    if (short in FLAG_ANNOTATIONS) {
      if (value !== 'true' && value !== 'false') throw new AdviseInputError(`${what} must be "true" or "false", not "${value}"`);
      input[FLAG_ANNOTATIONS[short as keyof typeof FLAG_ANNOTATIONS]] = value === 'true';
    } else if (short === 'max-cold-start') input.maxColdStartMs = parseColdStart(value, what);
    else if (short === 'density') input.density = parseDensity(value, nodeMemoryBytes, what);
    else throw new AdviseInputError(`${what} is not one skiff advise knows (${[...Object.keys(FLAG_ANNOTATIONS), 'max-cold-start', 'density'].map((k) => ADVISE_ANNOTATION_PREFIX + k).join(', ')})`);
  }
  return { input, name };
}

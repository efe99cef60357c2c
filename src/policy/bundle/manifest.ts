import { RE2JS } from 're2js';

import { globToRegExp } from '../builtins/glob.js';

import { BundleError } from './errors.js';

/** Manifest is a bundle's `.manifest`, as OPA reads it. */
export interface Manifest {
  revision: string;
  /** data paths the bundle owns, slash-separated without leading or trailing slash; `[""]` (everything) when absent */
  roots: string[];
  /** whether the manifest named roots (OPA defaults them, but writes back only what was given) */
  rootsGiven: boolean;
  /** Rego version of the bundle's modules (0 or 1) when the manifest sets one */
  regoVersion?: 0 | 1;
  /** per-file overrides: glob over the module path (`/dir/x.rego`, gobwas syntax) → version */
  fileRegoVersions?: Record<string, 0 | 1>;
  metadata?: Record<string, unknown>;
  wasm?: Array<{ entrypoint?: string; module?: string }>;
}

const FILE = '.manifest';

/** parseManifest checks the fields OPA reads and their types; unknown fields are ignored, as OPA ignores them. */
export function parseManifest(value: unknown, bundle: string): Manifest {
  const bad = (detail: string): never => {
    throw new BundleError('bundle_manifest_invalid', bundle, FILE, detail);
  };
  if (!value || typeof value !== 'object' || Array.isArray(value)) return bad('must be a JSON object');
  const m = value as Record<string, unknown>;
  const out: Manifest = { revision: '', roots: [''], rootsGiven: false };
  if (m.revision !== undefined && m.revision !== null) {
    if (typeof m.revision !== 'string') bad('revision must be a string');
    out.revision = m.revision as string;
  }
  if (m.roots !== undefined && m.roots !== null) {
    if (!Array.isArray(m.roots) || m.roots.some((r) => typeof r !== 'string')) bad('roots must be a list of strings');
    out.roots = (m.roots as string[]).map((r) => r.replace(/^\/+|\/+$/g, ''));
    out.rootsGiven = true;
  }
  const version = (v: unknown, field: string): 0 | 1 => (v === 0 || v === 1 ? v : bad(`${field} must be 0 or 1, not ${JSON.stringify(v)}`));
  if (m.rego_version !== undefined && m.rego_version !== null) out.regoVersion = version(m.rego_version, 'rego_version');
  if (m.file_rego_versions !== undefined && m.file_rego_versions !== null) {
    if (typeof m.file_rego_versions !== 'object' || Array.isArray(m.file_rego_versions)) bad('file_rego_versions must be an object of glob → 0 or 1');
    out.fileRegoVersions = {};
    for (const [glob, v] of Object.entries(m.file_rego_versions as Record<string, unknown>)) out.fileRegoVersions[glob] = version(v, `file_rego_versions[${JSON.stringify(glob)}]`);
  }
  if (m.metadata !== undefined && m.metadata !== null) {
    if (typeof m.metadata !== 'object' || Array.isArray(m.metadata)) bad('metadata must be an object');
    out.metadata = m.metadata as Record<string, unknown>;
  }
  if (m.wasm !== undefined && m.wasm !== null) {
    if (!Array.isArray(m.wasm)) bad('wasm must be a list of {entrypoint, module}');
    out.wasm = m.wasm as Manifest['wasm'];
  }
  checkRootsOverlap(out.roots, bundle);
  return out;
}

/** manifestJSON is the manifest as `opa build` writes it (its fields in OPA's order, absent ones left out). */
export function manifestJSON(m: Manifest): Record<string, unknown> {
  return {
    revision: m.revision,
    roots: m.roots,
    ...(m.wasm?.length ? { wasm: m.wasm } : {}),
    ...(m.regoVersion !== undefined ? { rego_version: m.regoVersion } : {}),
    ...(m.fileRegoVersions && Object.keys(m.fileRegoVersions).length ? { file_rego_versions: m.fileRegoVersions } : {}),
    ...(m.metadata && Object.keys(m.metadata).length ? { metadata: m.metadata } : {}),
  };
}

const segments = (p: string): string[] => p.split('/');

/** rootContains tells whether `path` lies under `root` (`""` contains everything), segment by segment. */
export function rootContains(root: string, path: string): boolean {
  if (root === '') return true;
  const r = segments(root);
  const p = segments(path);
  return r.length <= p.length && r.every((s, i) => s === p[i]);
}

/** rootsOverlap tells whether either root contains the other (`a/b` and `a` overlap; `a/b` and `a/bc` do not). */
export function rootsOverlap(a: string, b: string): boolean {
  return rootContains(a, b) || rootContains(b, a);
}

function checkRootsOverlap(roots: string[], bundle: string): void {
  for (let i = 0; i < roots.length; i++) {
    for (let j = i + 1; j < roots.length; j++) {
      if (rootsOverlap(roots[i]!, roots[j]!)) throw new BundleError('bundle_roots', bundle, FILE, `roots "${roots[i]}" and "${roots[j]}" overlap`);
    }
  }
}

/**
 * regoVersionOf picks a module's Rego version as OPA does: the first `file_rego_versions` glob that
 * matches `/PATH` (the path OPA records, with its leading slash), else the manifest's `rego_version`,
 * else `fallback` (v1 in OPA 1.x; v0 with `--v0`).
 */
export function regoVersionOf(m: Manifest, path: string, fallback: 0 | 1, bundle: string): 0 | 1 {
  for (const [glob, v] of Object.entries(m.fileRegoVersions ?? {})) {
    let re: RE2JS;
    try {
      // gobwas globs without separators: `*` crosses `/`
      re = RE2JS.compile(globToRegExp(glob, []));
    } catch (err) {
      throw new BundleError('bundle_manifest_invalid', bundle, FILE, `file_rego_versions glob ${JSON.stringify(glob)} does not compile (${(err as Error).message})`);
    }
    if (re.matches(`/${path}`)) return v;
  }
  return m.regoVersion ?? fallback;
}

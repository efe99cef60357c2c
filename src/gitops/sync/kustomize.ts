import { parseLabelSelector } from '../../api/label-selector.js';
import { applyJsonPatch, decodeJsonPatch } from '../../api/patch/json-patch.js';
import { isJsonObject } from '../../api/patch/json-value.js';
import { applyStrategicAsMerge } from '../../api/patch/strategic-patch.js';
import { parseYamlLikeGo } from '../../util/yaml-go.js';
import type { ArtifactFiles } from '../artifact.js';

import { SyncBuildError, SyncLimitError } from './errors.js';
import { isManifestFile, parseManifests, type SourcedObject } from './manifests.js';
import { artifactPath, directChildren, inFolder, isFolder } from './paths.js';

/*
 * No maintained JavaScript implementation of kustomize exists, so the common subset is written here:
 * resources (files, folders, nested kustomizations), namespace, namePrefix, nameSuffix, commonLabels,
 * commonAnnotations, patches / patchesStrategicMerge / patchesJson6902. Anything else in a
 * kustomization is refused by name rather than ignored, so an overlay never applies half of what it says.
 */

/** The file names that make a folder a kustomization, in the order kustomize looks for them. */
export const KUSTOMIZATION_FILES = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'];

const SUPPORTED = new Set(['apiVersion', 'kind', 'metadata', 'resources', 'namespace', 'namePrefix', 'nameSuffix', 'commonLabels', 'commonAnnotations', 'patches', 'patchesStrategicMerge', 'patchesJson6902']);

/** BuildLimits bound what one revision may make a Sync read. */
export interface BuildLimits {
  maxObjects: number;
  /** Bytes of manifest and kustomization files read, in all. */
  maxBytes: number;
  /** Nesting of kustomizations and folders. */
  maxDepth: number;
  /** Patches in one kustomization. */
  maxPatches: number;
}

export const DEFAULT_BUILD_LIMITS: BuildLimits = { maxObjects: 5000, maxBytes: 64 * 1024 * 1024, maxDepth: 16, maxPatches: 512 };

/** Scope tells whether a kind is namespaced: `undefined` when the API does not (yet) serve it. */
export type ScopeOf = (apiVersion: string, kind: string) => boolean | undefined;

interface Ctx {
  files: ArtifactFiles;
  limits: BuildLimits;
  scope: ScopeOf;
  bytes: number;
  objects: number;
  errors: string[];
  stack: string[];
}

/**
 * buildFolder reads the objects a Sync's folder describes: its kustomization when it has one, else
 * every manifest in it and its sub-folders (a sub-folder with a kustomization is built as one).
 * Every parse problem of every file is collected and thrown together as a `SyncBuildError`.
 */
export function buildFolder(files: ArtifactFiles, dir: string, scope: ScopeOf, limits: BuildLimits = DEFAULT_BUILD_LIMITS): SourcedObject[] {
  const ctx: Ctx = { files, limits, scope, bytes: 0, objects: 0, errors: [], stack: [] };
  if (!isFolder(files.keys(), dir)) throw new SyncBuildError(`the folder ${dir === '' ? './' : `./${dir}`} is not in the source's artifact (or holds no files)`);
  const out = loadFolder(ctx, dir, 0);
  if (ctx.errors.length) throw new SyncBuildError(ctx.errors.join('\n'), ctx.errors);
  return out;
}

function kustomizationIn(files: ArtifactFiles, dir: string): string | undefined {
  for (const f of KUSTOMIZATION_FILES) {
    const p = dir === '' ? f : `${dir}/${f}`;
    if (files.has(p)) return p;
  }
  return undefined;
}

function read(ctx: Ctx, path: string): string {
  const bytes = ctx.files.get(path);
  if (!bytes) throw new SyncBuildError(`${path}: no such file in the artifact`);
  ctx.bytes += bytes.length;
  if (ctx.bytes > ctx.limits.maxBytes) throw new SyncLimitError(`the manifests under the Sync's path are larger than ${ctx.limits.maxBytes} bytes`);
  return new TextDecoder().decode(bytes);
}

function count(ctx: Ctx, objs: SourcedObject[]): SourcedObject[] {
  ctx.objects += objs.length;
  if (ctx.objects > ctx.limits.maxObjects) throw new SyncLimitError(`the revision has more than ${ctx.limits.maxObjects} objects under the Sync's path`);
  return objs;
}

function enter(ctx: Ctx, dir: string, depth: number): void {
  if (depth > ctx.limits.maxDepth) throw new SyncLimitError(`./${dir}: kustomizations and folders nest deeper than ${ctx.limits.maxDepth}`);
  if (ctx.stack.includes(dir)) throw new SyncBuildError(`./${dir}: resources form a cycle (${[...ctx.stack, dir].map((d) => `./${d}`).join(' -> ')})`);
}

function loadFolder(ctx: Ctx, dir: string, depth: number): SourcedObject[] {
  enter(ctx, dir, depth);
  const k = kustomizationIn(ctx.files, dir);
  if (k) return kustomize(ctx, dir, k, depth);
  ctx.stack.push(dir);
  try {
    const out: SourcedObject[] = [];
    for (const f of directChildren(ctx.files.keys(), dir)) {
      if (isManifestFile(f)) out.push(...count(ctx, parseManifests(read(ctx, f), f, ctx.errors, true)));
    }
    const subs = new Set<string>();
    for (const f of ctx.files.keys()) {
      if (!inFolder(f, dir)) continue;
      const rest = dir === '' ? f : f.slice(dir.length + 1);
      const i = rest.indexOf('/');
      // Hidden folders (.git, .github) hold tooling, not manifests.
      if (i > 0 && !rest.startsWith('.')) subs.add(dir === '' ? rest.slice(0, i) : `${dir}/${rest.slice(0, i)}`);
    }
    for (const s of [...subs].sort()) out.push(...loadFolder(ctx, s, depth + 1));
    return out;
  } finally {
    ctx.stack.pop();
  }
}

// A kustomization file is YAML a person wrote: any shape until checked.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Loose = any;

function parseKustomization(ctx: Ctx, path: string): Record<string, Loose> {
  const { docs, lines } = parseYamlLikeGo(read(ctx, path), { prettyErrors: false, uniqueKeys: true });
  const doc = docs[0];
  if (!doc) throw new SyncBuildError(`${path}: the kustomization is empty`);
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    const pos = lines.linePos(e.pos[0]);
    throw new SyncBuildError(`${path}:${pos.line}:${pos.col}: ${e.message.split('\n')[0]}`);
  }
  const k = doc.toJS({ maxAliasCount: 100 }) as unknown;
  if (!isJsonObject(k)) throw new SyncBuildError(`${path}: a kustomization must be a mapping`);
  const unsupported = Object.keys(k).filter((f) => !SUPPORTED.has(f));
  if (unsupported.length) throw new SyncBuildError(`${path}: ${unsupported.map((f) => `"${f}"`).join(', ')} ${unsupported.length > 1 ? 'are' : 'is'} not supported by Skiff's kustomize subset (resources, namespace, namePrefix, nameSuffix, commonLabels, commonAnnotations, patches, patchesStrategicMerge, patchesJson6902)`);
  return k as Record<string, Loose>;
}

function stringList(v: unknown, field: string, path: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new SyncBuildError(`${path}: ${field} must be a list of strings`);
  return v as string[];
}

function stringMap(v: unknown, field: string, path: string): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (!isJsonObject(v)) throw new SyncBuildError(`${path}: ${field} must be a mapping of strings`);
  const out: Record<string, string> = {};
  for (const [key, val] of Object.entries(v)) out[key] = typeof val === 'string' ? val : JSON.stringify(val);
  return out;
}

function kustomize(ctx: Ctx, dir: string, path: string, depth: number): SourcedObject[] {
  const k = parseKustomization(ctx, path);
  ctx.stack.push(dir);
  let objs: SourcedObject[] = [];
  try {
    for (const r of stringList(k.resources, 'resources', path)) {
      if (/^[a-z][a-z0-9+.-]*:\/\//i.test(r) || r.startsWith('git@')) throw new SyncBuildError(`${path}: resources: ${r} is remote; a Sync applies only what its own source holds`);
      const target = artifactPath(dir, r, `${path}: resources`);
      if (ctx.files.has(target)) {
        if (!isManifestFile(target)) throw new SyncBuildError(`${path}: resources: ${r} is not a .yaml, .yml or .json file`);
        objs.push(...count(ctx, parseManifests(read(ctx, target), target, ctx.errors, false)));
      } else if (isFolder(ctx.files.keys(), target)) objs.push(...loadFolder(ctx, target, depth + 1));
      else throw new SyncBuildError(`${path}: resources: ${r} is neither a file nor a folder in the artifact`);
    }
  } finally {
    ctx.stack.pop();
  }
  objs = objs.map((o) => ({ ...o, object: structuredClone(o.object) }));
  applyPatches(ctx, k, dir, path, objs);
  const ns = k.namespace;
  if (ns !== undefined) {
    if (typeof ns !== 'string' || ns === '') throw new SyncBuildError(`${path}: namespace must be a non-empty string`);
    for (const o of objs) if (namespaced(ctx.scope, o.object)) o.object.metadata.namespace = ns;
  }
  const prefix = k.namePrefix ?? '';
  const suffix = k.nameSuffix ?? '';
  if (typeof prefix !== 'string' || typeof suffix !== 'string') throw new SyncBuildError(`${path}: namePrefix and nameSuffix must be strings`);
  // A Namespace keeps its name, as kustomize does: the objects in it name it as written.
  for (const o of objs) if (o.object.kind !== 'Namespace') o.object.metadata.name = `${prefix}${o.object.metadata.name}${suffix}`;
  const labels = stringMap(k.commonLabels, 'commonLabels', path);
  const annotations = stringMap(k.commonAnnotations, 'commonAnnotations', path);
  for (const o of objs) {
    if (Object.keys(labels).length) o.object.metadata.labels = { ...(o.object.metadata.labels ?? {}), ...labels };
    if (Object.keys(annotations).length) o.object.metadata.annotations = { ...(o.object.metadata.annotations ?? {}), ...annotations };
  }
  return objs;
}

/** namespaced tells whether an object is namespaced; kinds the API does not serve yet are, except Gatekeeper's constraints. */
export function namespaced(scope: ScopeOf, obj: Record<string, Loose>): boolean {
  const s = scope(String(obj.apiVersion), String(obj.kind));
  if (s !== undefined) return s;
  return !String(obj.apiVersion).startsWith('constraints.gatekeeper.sh/');
}

interface Target {
  group?: string;
  version?: string;
  kind?: string;
  name?: string;
  namespace?: string;
  labelSelector?: string;
  annotationSelector?: string;
}

interface Patch {
  /** Where the patch was written, for messages. */
  where: string;
  target?: Target;
  /** A strategic merge patch (taken as a JSON merge patch) or JSON 6902 operations. */
  body: unknown;
}

function applyPatches(ctx: Ctx, k: Record<string, Loose>, dir: string, path: string, objs: SourcedObject[]): void {
  const patches: Patch[] = [];
  const text = (where: string, inline: unknown, file: unknown): { where: string; value: unknown } => {
    if ((inline === undefined) === (file === undefined)) throw new SyncBuildError(`${where}: give exactly one of path or patch`);
    if (file !== undefined) {
      if (typeof file !== 'string') throw new SyncBuildError(`${where}: path must be a string`);
      const p = artifactPath(dir, file, where);
      return { where: p, value: yamlValue(read(ctx, p), p) };
    }
    if (typeof inline !== 'string') throw new SyncBuildError(`${where}: patch must be a string (YAML or JSON)`);
    return { where, value: yamlValue(inline, where) };
  };
  const list = (v: unknown, field: string): unknown[] => {
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) throw new SyncBuildError(`${path}: ${field} must be a list`);
    return v;
  };
  list(k.patchesStrategicMerge, 'patchesStrategicMerge').forEach((entry, i) => {
    const where = `${path}: patchesStrategicMerge[${i}]`;
    if (typeof entry !== 'string') throw new SyncBuildError(`${where}: must be a file path or an inline patch`);
    const inline = entry.includes('\n') || /^\s*[{]/.test(entry) || /^\s*(apiVersion|kind)\s*:/.test(entry);
    const t = inline ? text(where, entry, undefined) : text(where, undefined, entry);
    patches.push({ where: t.where, body: t.value });
  });
  list(k.patchesJson6902, 'patchesJson6902').forEach((entry, i) => {
    const where = `${path}: patchesJson6902[${i}]`;
    if (!isJsonObject(entry) || !isJsonObject(entry.target)) throw new SyncBuildError(`${where}: needs a target and a path or patch`);
    const t = text(where, entry.patch, entry.path);
    patches.push({ where: t.where, target: checkTarget(entry.target, where), body: t.value });
  });
  list(k.patches, 'patches').forEach((entry, i) => {
    const where = `${path}: patches[${i}]`;
    if (!isJsonObject(entry)) throw new SyncBuildError(`${where}: must be a mapping with path or patch, and target`);
    const extra = Object.keys(entry).filter((f) => !['path', 'patch', 'target'].includes(f));
    if (extra.length) throw new SyncBuildError(`${where}: ${extra.join(', ')} is not supported (path, patch, target)`);
    const t = text(where, entry.patch, entry.path);
    patches.push({ where: t.where, target: entry.target === undefined ? undefined : checkTarget(entry.target, where), body: t.value });
  });
  if (patches.length > ctx.limits.maxPatches) throw new SyncLimitError(`${path}: more than ${ctx.limits.maxPatches} patches`);
  for (const p of patches) applyPatch(p, objs);
}

function yamlValue(src: string, where: string): unknown {
  const { docs, lines } = parseYamlLikeGo(src, { prettyErrors: false, uniqueKeys: true });
  const doc = docs[0];
  if (!doc) throw new SyncBuildError(`${where}: the patch is empty`);
  if (doc.errors.length) {
    const pos = lines.linePos(doc.errors[0]!.pos[0]);
    throw new SyncBuildError(`${where}:${pos.line}:${pos.col}: ${doc.errors[0]!.message.split('\n')[0]}`);
  }
  return doc.toJS({ maxAliasCount: 100 });
}

function checkTarget(t: unknown, where: string): Target {
  if (!isJsonObject(t)) throw new SyncBuildError(`${where}: target must be a mapping`);
  const known = ['group', 'version', 'kind', 'name', 'namespace', 'labelSelector', 'annotationSelector'];
  const extra = Object.keys(t).filter((f) => !known.includes(f));
  if (extra.length) throw new SyncBuildError(`${where}: target.${extra[0]} is not supported (${known.join(', ')})`);
  for (const [key, v] of Object.entries(t)) if (typeof v !== 'string') throw new SyncBuildError(`${where}: target.${key} must be a string`);
  return t as Target;
}

function nameMatches(pattern: string, name: string): boolean {
  if (pattern === name) return true;
  // kustomize reads a target name as an anchored regular expression.
  try {
    return new RegExp(`^(?:${pattern})$`).test(name);
  } catch {
    return false;
  }
}

function selects(t: Target, o: Record<string, Loose>, where: string): boolean {
  const [group, version] = String(o.apiVersion).includes('/') ? String(o.apiVersion).split('/', 2) : ['', String(o.apiVersion)];
  if (t.group !== undefined && t.group !== group) return false;
  if (t.version !== undefined && t.version !== version) return false;
  if (t.kind !== undefined && t.kind !== o.kind) return false;
  if (t.name !== undefined && !nameMatches(t.name, String(o.metadata?.name))) return false;
  if (t.namespace !== undefined && t.namespace !== (o.metadata?.namespace ?? '')) return false;
  try {
    if (t.labelSelector !== undefined && !parseLabelSelector(t.labelSelector).matches(o.metadata?.labels)) return false;
    if (t.annotationSelector !== undefined && !parseLabelSelector(t.annotationSelector).matches(o.metadata?.annotations)) return false;
  } catch (err) {
    throw new SyncBuildError(`${where}: ${(err as Error).message}`);
  }
  return true;
}

function applyPatch(p: Patch, objs: SourcedObject[]): void {
  const ops = Array.isArray(p.body);
  if (!ops && !isJsonObject(p.body)) throw new SyncBuildError(`${p.where}: a patch must be a mapping (strategic merge) or a list of JSON 6902 operations`);
  let target = p.target;
  if (!target) {
    if (ops) throw new SyncBuildError(`${p.where}: a JSON 6902 patch needs a target`);
    const b = p.body as Record<string, Loose>;
    if (typeof b.kind !== 'string' || typeof b.metadata?.name !== 'string') throw new SyncBuildError(`${p.where}: a patch without a target needs kind and metadata.name to find its object`);
    target = { kind: b.kind, name: b.metadata.name, ...(typeof b.metadata.namespace === 'string' ? { namespace: b.metadata.namespace } : {}) };
  }
  const matched = objs.filter((o) => selects(target!, o.object, p.where));
  if (!matched.length && !p.target) throw new SyncBuildError(`${p.where}: no resource matches the patch (${target.kind}/${target.name})`);
  let decoded: ReturnType<typeof decodeJsonPatch> | undefined;
  let merge: Record<string, Loose> | undefined;
  try {
    if (ops) decoded = decodeJsonPatch(p.body);
    else {
      merge = structuredClone(p.body) as Record<string, Loose>;
      // A targeted patch names its objects through the target; its own envelope must not rename them.
      delete merge.apiVersion;
      delete merge.kind;
      if (isJsonObject(merge.metadata)) {
        delete merge.metadata.name;
        delete merge.metadata.namespace;
      }
    }
  } catch (err) {
    throw new SyncBuildError(`${p.where}: ${(err as Error).message}`);
  }
  for (const o of matched) {
    try {
      const next = (decoded ? applyJsonPatch(o.object, decoded) : applyStrategicAsMerge(o.object, merge)) as Record<string, Loose>;
      if (!isJsonObject(next) || !isJsonObject(next.metadata)) throw new Error('the patch removed the object or its metadata');
      o.object = next;
    } catch (err) {
      throw new SyncBuildError(`${p.where}: patching ${o.object.kind}/${o.object.metadata.name} (${o.file}) failed: ${(err as Error).message}`);
    }
  }
}


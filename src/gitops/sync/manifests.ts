import { parseYamlLikeGo } from '../../util/yaml-go.js';

/** SourcedObject is one object read from the artifact, with the file (artifact path) and line it came from. */
export interface SourcedObject {
  // Parsed YAML before validation: any shape at all.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  object: Record<string, any>;
  file: string;
  line: number;
}

/** MANIFEST_EXTENSIONS are the file names a Sync reads as manifests; every other file is left alone. */
export const MANIFEST_EXTENSIONS = ['.yaml', '.yml', '.json'];

/** isManifestFile tells whether an artifact path names a manifest (by its extension). */
export function isManifestFile(path: string): boolean {
  const lower = path.toLowerCase();
  return MANIFEST_EXTENSIONS.some((e) => lower.endsWith(e));
}

/**
 * parseManifests reads the objects of one manifest file: multi-document YAML or JSON, `kind: List`
 * unwrapped. Problems go to `errors` as `FILE:LINE:COL: message`, every one of the file. Documents
 * with neither apiVersion nor kind (other YAML kept beside the manifests) are skipped when
 * `skipForeign` is set, as Flux does for folders without a kustomization.
 */
export function parseManifests(text: string, file: string, errors: string[], skipForeign: boolean): SourcedObject[] {
  const out: SourcedObject[] = [];
  const { docs, lines } = parseYamlLikeGo(text, { prettyErrors: false, uniqueKeys: true });
  for (const doc of docs) {
    const start = lines.linePos(doc.contents?.range?.[0] ?? doc.range?.[0] ?? 0).line;
    if (doc.errors.length) {
      for (const e of doc.errors) {
        const pos = lines.linePos(e.pos[0]);
        errors.push(`${file}:${pos.line}:${pos.col}: ${e.message.split('\n')[0]}`);
      }
      continue;
    }
    const value = doc.toJS({ maxAliasCount: 100 }) as unknown;
    if (value === null || value === undefined) continue;
    if (typeof value !== 'object' || Array.isArray(value)) {
      errors.push(`${file}:${start}: a manifest document must be an object with apiVersion, kind and metadata`);
      continue;
    }
    const obj = value as Record<string, unknown>;
    if (skipForeign && obj.apiVersion === undefined && obj.kind === undefined) continue;
    if (obj.kind === 'List' && Array.isArray(obj.items)) {
      for (const item of obj.items) checkObject(item, file, start, errors, out);
    } else checkObject(obj, file, start, errors, out);
  }
  return out;
}

function checkObject(item: unknown, file: string, line: number, errors: string[], out: SourcedObject[]): void {
  const o = item as Record<string, { name?: unknown } | unknown> | null;
  if (!o || typeof o !== 'object' || Array.isArray(o)) {
    errors.push(`${file}:${line}: a List item must be an object`);
    return;
  }
  const meta = o.metadata as { name?: unknown } | undefined;
  const missing = [typeof o.apiVersion === 'string' ? '' : 'apiVersion', typeof o.kind === 'string' ? '' : 'kind', typeof meta?.name === 'string' && meta.name !== '' ? '' : 'metadata.name'].filter(Boolean);
  if (missing.length) {
    errors.push(`${file}:${line}: the object has no ${missing.join(', ')}`);
    return;
  }
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  out.push({ object: o as Record<string, any>, file, line });
}

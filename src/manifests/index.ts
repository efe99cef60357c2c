import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, extname, join, resolve } from 'node:path';

import { parseModuleRef } from '../api/kinds/module-ref.js';
import { CheckFailedError } from '../util/errors.js';
import { parseYamlLikeGo } from '../util/yaml-go.js';

/** One object read from a manifest, with where it came from (for messages). */
export interface ManifestObject {
  // Parsed YAML before validation: any shape at all.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  object: Record<string, any>;
  source: string;
  /** 1-based line of the document's start. */
  line: number;
  /** Directory that relative paths inside the object are relative to. */
  baseDir: string;
}

/** ManifestError: a manifest file could not be read or parsed; the message names file, line and column. */
export class ManifestError extends CheckFailedError {
  constructor(message: string) {
    super(message, 'manifest_invalid');
  }
}

const EXTS = new Set(['.yaml', '.yml', '.json']);

/**
 * readManifests loads every object from a file, a directory (its .yaml/.yml/.json files, sorted) or
 * stdin ('-'): multi-document YAML, JSON, and `kind: List` wrappers. Every parse error of every file
 * is collected and reported together.
 */
export function readManifests(paths: string[], stdin?: () => string): ManifestObject[] {
  const out: ManifestObject[] = [];
  const errors: string[] = [];
  for (const p of paths) {
    if (p === '-') {
      parseText(stdin ? stdin() : readFileSync(0, 'utf8'), '<stdin>', process.cwd(), out, errors);
      continue;
    }
    let st;
    try {
      st = statSync(p);
    } catch {
      errors.push(`${p}: no such file or directory`);
      continue;
    }
    const files = st.isDirectory()
      ? readdirSync(p)
          .filter((f) => EXTS.has(extname(f)))
          .sort()
          .map((f) => join(p, f))
      : [p];
    if (st.isDirectory() && files.length === 0) errors.push(`${p}: the directory has no .yaml, .yml or .json files`);
    for (const f of files) {
      let text: string;
      try {
        text = readFileSync(f, 'utf8');
      } catch (err) {
        errors.push(`${f}: cannot read: ${(err as Error).message}`);
        continue;
      }
      parseText(text, f, dirname(resolve(f)), out, errors);
    }
  }
  if (errors.length) throw new ManifestError(errors.join('\n'));
  return out;
}

function parseText(text: string, source: string, baseDir: string, out: ManifestObject[], errors: string[]): void {
  const { docs: list, lines: lc } = parseYamlLikeGo(text, { prettyErrors: false, uniqueKeys: true });
  for (const doc of list) {
    const startLine = doc.contents?.range ? lc.linePos(doc.contents.range[0]).line : lc.linePos(doc.range?.[0] ?? 0).line;
    if (doc.errors.length) {
      for (const e of doc.errors) {
        const pos = lc.linePos(e.pos[0]);
        errors.push(`${source}:${pos ? `${pos.line}:${pos.col}` : startLine}: ${firstLine(e.message)}`);
      }
      continue;
    }
    const value = doc.toJS({ maxAliasCount: 100 });
    if (value === null || value === undefined) continue;
    if (typeof value !== 'object' || Array.isArray(value)) {
      errors.push(`${source}:${startLine}: a manifest document must be an object with apiVersion, kind and metadata`);
      continue;
    }
    if (value.kind === 'List' && Array.isArray(value.items)) {
      for (const item of value.items) out.push({ object: item, source, line: startLine, baseDir });
    } else out.push({ object: value, source, line: startLine, baseDir });
  }
}

function firstLine(s: string): string {
  return s.split('\n')[0]!;
}

/**
 * resolveModuleRef makes a Function's relative `spec.module` path absolute against the manifest's
 * directory, so that "hello.wasm next to function.yaml" means what a person expects. Uploaded modules
 * (`blob:sha256:...`), URLs and absolute paths stay as they are. A `spec.image` written as a relative
 * path (`./image`, `../x/image`: an OCI image layout directory next to the manifest) is made absolute
 * the same way; an `oci://` reference never starts with a dot.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- parsed YAML before validation
export function resolveModuleRef(obj: Record<string, any>, baseDir: string): void {
  if (obj?.kind !== 'Function') return;
  const image = obj.spec?.image;
  if (typeof image === 'string' && (image.startsWith('./') || image.startsWith('../'))) obj.spec.image = resolve(baseDir, image);
  const m = obj.spec?.module;
  if (typeof m !== 'string' || m === '') return;
  const ref = parseModuleRef(m);
  if (ref.type === 'host' && !ref.absolute) obj.spec.module = resolve(baseDir, ref.path);
}

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, extname, join, relative, sep } from 'node:path';

import { parseYamlValueLikeGo } from '../util/yaml-go.js';

import { caretSnippet,RegoError, RegoErrors } from './errors.js';
import { type EngineOptions, type ModuleOptions,PolicyEngine } from './index.js';
import { fromJSON, isPlain, type PlainObject, type Value } from './value.js';

/** Loaded is what a set of files and directories contributes: modules and base data. */
export interface Loaded {
  /** a module's own `regoVersion` (from a bundle's manifest) wins over the one the caller passes */
  modules: Array<{ file: string; text: string; regoVersion?: 0 | 1 }>;
  data: PlainObject;
}

function walkFiles(p: string): string[] {
  const st = statSync(p);
  if (!st.isDirectory()) return [p];
  const out: string[] = [];
  for (const name of readdirSync(p).sort()) {
    if (name.startsWith('.')) continue;
    out.push(...walkFiles(join(p, name)));
  }
  return out;
}

export function mergeInto(target: PlainObject, path: string[], value: Value): void {
  let cur = target;
  for (const seg of path) {
    const next = cur[seg];
    if (!isPlain(next)) cur[seg] = Object.create(null) as PlainObject;
    cur = cur[seg] as PlainObject;
  }
  if (isPlain(value)) for (const k of Object.keys(value)) {
    const prev = cur[k];
    if (isPlain(prev) && isPlain(value[k])) mergeInto(cur, [k], value[k]!);
    else cur[k] = value[k]!;
  }
}

/**
 * loadPaths reads `.rego` modules and `.json`/`.yaml` data files like `opa eval -d`: data in a
 * directory is placed under the path of its folder relative to the root given.
 */
export function loadPaths(paths: string[]): Loaded {
  const out: Loaded = { modules: [], data: Object.create(null) as PlainObject };
  for (const root of paths) {
    const rootIsDir = statSync(root).isDirectory();
    for (const f of walkFiles(root)) {
      const ext = extname(f);
      if (ext === '.rego') out.modules.push({ file: f, text: readFileSync(f, 'utf8') });
      else if (ext === '.json' || ext === '.yaml' || ext === '.yml') {
        const text = readFileSync(f, 'utf8');
        const v = fromJSON(ext === '.json' ? JSON.parse(text) : parseYamlValueLikeGo(text, { intAsBigInt: true }));
        const rel = rootIsDir ? relative(root, dirname(f)) : '';
        const path = rel ? rel.split(sep) : [];
        if (!isPlain(v) && !path.length) continue;
        if (isPlain(v)) mergeInto(out.data, path, v);
        else mergeInto(out.data, path.slice(0, -1), { [path[path.length - 1]!]: v } as PlainObject);
      }
    }
    void basename;
  }
  return out;
}

/** engineFrom builds an engine from loaded files. */
export function engineFrom(loaded: Loaded, opts: ModuleOptions = {}, engine: EngineOptions = {}): PolicyEngine {
  const e = new PolicyEngine(engine);
  const errors: RegoError[] = [];
  for (const m of loaded.modules) {
    try {
      e.addModule(m.file, m.text, m.regoVersion !== undefined ? { regoVersion: m.regoVersion } : opts);
    } catch (err) {
      if (err instanceof RegoError) errors.push(err);
      else if (err instanceof RegoErrors) errors.push(...err.errors);
      else throw err;
    }
  }
  if (errors.length) throw new RegoErrors(errors);
  e.setData(loaded.data);
  return e;
}

/** describeError prints Rego errors as `file:row:col: code: message` with the source line and a caret. */
export function describeError(err: unknown, sources: Map<string, string>): string {
  const list = err instanceof RegoErrors ? err.errors : err instanceof RegoError ? [err] : [];
  if (!list.length) return err instanceof Error ? err.message : String(err);
  return list
    .map((e) => {
      if (!e.loc) return `${e.code}: ${e.detail}`;
      const src = sources.get(e.loc.file);
      const head = `${e.loc.file}:${e.loc.row}:${e.loc.col}: ${e.code}: ${e.detail}`;
      return src ? `${head}\n${caretSnippet(src, e.loc).replace(/^/gm, '  ')}` : head;
    })
    .join('\n');
}

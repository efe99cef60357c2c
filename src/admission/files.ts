import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';

import { parseYamlLikeGo } from '../util/yaml-go.js';

import { AdmissionError } from './errors.js';
import type { K8sObject } from './gatekeeper/types.js';

/** listManifestFiles expands files and directories (recursively) into .yaml/.yml/.json files, sorted; `-` (stdin) passes through. */
export function listManifestFiles(paths: string[]): string[] {
  const out: string[] = [];
  const visit = (p: string) => {
    if (p === '-') {
      out.push(p);
      return;
    }
    let st;
    try {
      st = statSync(p);
    } catch {
      throw new AdmissionError('file_not_found', `${p}: no such file or directory`);
    }
    // Dot entries are skipped: a ConfigMap volume holds each file twice, under ..data and ..TIMESTAMP.
    if (st.isDirectory()) {
      for (const e of readdirSync(p).sort()) if (!e.startsWith('.')) visit(join(p, e));
    } else if (['.yaml', '.yml', '.json'].includes(extname(p))) out.push(p);
  };
  for (const p of paths) visit(p);
  return out;
}

/** readObjects reads every YAML/JSON document of a file, or of stdin for `-` (empty documents dropped). */
export function readObjects(file: string): K8sObject[] {
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (e) {
    throw new AdmissionError('manifest_invalid', `${file}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return parseObjects(text, file === '-' ? '<stdin>' : file);
}

/** parseObjects reads multi-document YAML (or JSON); `label` names the source in errors. */
export function parseObjects(text: string, label: string): K8sObject[] {
  // as the cluster and gator read them (go-yaml), so a template that applies there loads here
  const { docs } = parseYamlLikeGo(text);
  const out: K8sObject[] = [];
  for (const d of docs) {
    if (d.errors.length) throw new AdmissionError('manifest_invalid', `${label}: YAML error: ${d.errors[0]!.message}`);
    const v = d.toJS() as unknown;
    if (v !== null && v !== undefined) out.push(v as K8sObject);
  }
  return out;
}

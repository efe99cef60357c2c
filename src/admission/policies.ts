import { AdmissionError } from './errors.js';
import { listManifestFiles, readObjects } from './files.js';
import { GatekeeperClient } from './gatekeeper/client.js';
import { CONSTRAINT_GROUP } from './gatekeeper/constraint.js';
import type { K8sObject } from './gatekeeper/types.js';

export const isTemplate = (o: K8sObject) => o?.kind === 'ConstraintTemplate' && String(o.apiVersion ?? '').startsWith('templates.gatekeeper.sh/');
export const isConstraint = (o: K8sObject) => String(o?.apiVersion ?? '').startsWith(`${CONSTRAINT_GROUP}/`);

/**
 * loadPolicies reads templates, constraints and (as inventory) every other object from files and
 * directories into a fresh client: templates first, so constraints find their kind whatever the
 * file order. Problems are collected and thrown together.
 */
export function loadPolicies(paths: string[], client = new GatekeeperClient()): GatekeeperClient {
  const objs: Array<{ file: string; obj: K8sObject }> = [];
  for (const f of listManifestFiles(paths)) for (const obj of readObjects(f)) objs.push({ file: f, obj });
  const problems: string[] = [];
  const attempt = (file: string, fn: () => unknown) => {
    try {
      fn();
    } catch (e) {
      problems.push(`${file}: ${(e as Error).message}`);
    }
  };
  for (const { file, obj } of objs) if (isTemplate(obj)) attempt(file, () => client.addTemplate(obj));
  for (const { file, obj } of objs) if (isConstraint(obj)) attempt(file, () => client.addConstraint(obj));
  for (const { obj } of objs) if (!isTemplate(obj) && !isConstraint(obj)) client.addData(obj);
  if (problems.length) throw new AdmissionError('policies_invalid', `cannot load policies:\n${problems.join('\n')}`);
  return client;
}

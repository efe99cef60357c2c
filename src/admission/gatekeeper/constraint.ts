import { ConstraintError, ConstraintSchemaError } from '../errors.js';

import { Matcher, matchProblems, type MatchSpec } from './match.js';
import type { CompiledTemplate } from './template.js';
import type { EnforcementAction, K8sObject } from './types.js';

/** Constraints live in this API group; a template's kind becomes a kind of this group. */
export const CONSTRAINT_GROUP = 'constraints.gatekeeper.sh';
const ACTIONS: ReadonlySet<string> = new Set(['deny', 'dryrun', 'warn']);

/** CompiledConstraint is a validated constraint with its matcher compiled. */
export interface CompiledConstraint {
  kind: string;
  name: string;
  enforcementAction: EnforcementAction;
  /** `spec.parameters` (null when absent, as Gatekeeper passes it) */
  parameters: unknown;
  matcher: Matcher;
  source: K8sObject;
}

/**
 * compileConstraint validates a constraint against its template: apiVersion in the constraints
 * group, a name, `spec.match` well formed (label selectors as Kubernetes validates them),
 * `spec.parameters` valid for the template's openAPIV3Schema (ConstraintSchemaError, Gatekeeper's
 * ErrSchema) and `spec.enforcementAction` one of deny, dryrun, warn (default deny).
 */
export function compileConstraint(obj: K8sObject, template: CompiledTemplate): CompiledConstraint {
  const kind = String(obj?.kind ?? '');
  const name = String(obj?.metadata?.name ?? '');
  if (!String(obj?.apiVersion ?? '').startsWith(`${CONSTRAINT_GROUP}/`)) throw new ConstraintError(kind, name, `apiVersion must be ${CONSTRAINT_GROUP}/v1beta1, not ${String(obj?.apiVersion)}`);
  if (!name) throw new ConstraintSchemaError(kind, name, 'metadata.name is required');
  const spec = (obj.spec && typeof obj.spec === 'object' && !Array.isArray(obj.spec) ? obj.spec : {}) as Record<string, unknown>;
  const problems = matchProblems(spec.match);
  if (template.validateParameters && spec.parameters !== undefined && !template.validateParameters(spec.parameters)) {
    for (const e of template.validateParameters.errors ?? []) problems.push(`spec.parameters${e.instancePath.replace(/\//g, '.')} ${e.message}${e.params && 'allowedValues' in e.params ? ` (${(e.params.allowedValues as unknown[]).join(', ')})` : ''}`);
  }
  if (problems.length) throw new ConstraintSchemaError(kind, name, `does not fit template ${template.name}:\n  ${problems.join('\n  ')}`);
  const action = spec.enforcementAction === undefined || spec.enforcementAction === '' ? 'deny' : String(spec.enforcementAction);
  if (!ACTIONS.has(action)) throw new ConstraintError(kind, name, `spec.enforcementAction "${action}" is not one of deny, dryrun, warn`, 'constraint_action');
  return {
    kind,
    name,
    enforcementAction: action as EnforcementAction,
    parameters: spec.parameters === undefined ? null : spec.parameters,
    matcher: new Matcher((spec.match ?? {}) as MatchSpec),
    source: obj,
  };
}

import type { FieldError, KindValidators, ResourceObject } from '../api/kinds/types.js';

import { parseModule } from './ast/parser.js';
import { importProblems, shadowProblems } from './compile/rego-v1.js';
import { RegoError, RegoErrors } from './errors.js';

const V0_SYNTAX = /`(if|contains)` keyword is required/;

/**
 * policyProblems checks a Policy's `spec.rego` on its own, in the version `spec.regoVersion`
 * names (v1 when absent, as OPA 1.x): what OPA reports while parsing, and for v1 the module-local
 * compile checks (duplicate imports, `input`/`data` shadowing). Whatever depends on the other
 * policies (unsafe variables, unknown functions, conflicts) is left to the controller, which
 * compiles them together and reports it in the Policy's status.
 */
export function policyProblems(obj: ResourceObject): FieldError[] {
  const rego: unknown = obj.spec?.rego;
  if (typeof rego !== 'string') return [];
  const v1 = obj.spec?.regoVersion !== 'v0';
  // the file name the controller gives the module, so both report the same locations
  const file = `${obj.metadata.namespace ?? 'default'}/${obj.metadata.name}.rego`;
  let errs: RegoError[];
  try {
    const m = parseModule(file, rego, v1 ? 1 : 0);
    errs = m.regoVersion === 1 ? importProblems(m) : [];
    if (!errs.length && m.regoVersion === 1) errs = shadowProblems(m);
  } catch (e) {
    if (e instanceof RegoErrors) errs = e.errors;
    else if (e instanceof RegoError) errs = [e];
    else throw e;
  }
  const hint = v1 && obj.spec?.regoVersion === undefined && errs.some((e) => V0_SYNTAX.test(e.detail)) ? ' (the module is read as Rego v1, the default: write `if` and `contains`, or set spec.regoVersion: v0)' : '';
  return errs.map((e) => ({ field: 'spec.rego', message: e.message + hint, reason: 'FieldValueInvalid' }));
}

/**
 * policyKindValidators refuse, at admission (422), a Policy whose Rego does not parse. The
 * composition root registers them with the API (`builtinKinds`), which never imports the engine.
 */
export const policyKindValidators: KindValidators = Object.freeze({
  Policy: policyProblems,
});

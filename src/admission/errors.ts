import { SkiffError } from '../util/errors.js';

/**
 * AdmissionError is the base of admission's errors: a stable `code` and a message that names the
 * template, constraint, file or field at fault and what to do about it.
 */
export class AdmissionError extends SkiffError {}

/** TemplateError: a ConstraintTemplate cannot be compiled (shape, Rego syntax, CEL-only, missing `violation`). */
export class TemplateError extends AdmissionError {
  constructor(template: string, message: string, code = 'template_invalid', options?: { cause?: unknown }) {
    super(code, `ConstraintTemplate "${template}": ${message}`, options);
  }
}

/**
 * ConstraintSchemaError: a constraint's `spec.parameters` or `spec.match` does not fit its template
 * (Gatekeeper's ErrSchema: gator suites mark such constraints `invalid: true`).
 */
export class ConstraintSchemaError extends AdmissionError {
  constructor(kind: string, name: string, message: string) {
    super('constraint_schema', `${kind} "${name}": ${message}`);
  }
}

/** ConstraintError: a constraint cannot be added for another reason (no such template, bad enforcementAction). */
export class ConstraintError extends AdmissionError {
  constructor(kind: string, name: string, message: string, code = 'constraint_invalid') {
    super(code, `${kind} "${name}": ${message}`);
  }
}

/** ReviewError: an object or AdmissionReview cannot be reviewed (no kind, no object, bad JSON). */
export class ReviewError extends AdmissionError {
  constructor(message: string, code = 'review_invalid') {
    super(code, message);
  }
}

/** SuiteError: a gator verify suite file is malformed (unreadable file, missing template or object). */
export class SuiteError extends AdmissionError {
  constructor(file: string, message: string) {
    super('suite_invalid', `${file}: ${message}`);
  }
}

/** PssLevelError: a Pod Security Standards level or version string cannot be read. */
export class PssLevelError extends AdmissionError {
  constructor(message: string) {
    super('pss_level_invalid', message);
  }
}

/**
 * ADMISSION_ERROR_CODES lists every code admission errors carry; docs/admission.md documents each
 * (a test keeps the two in step).
 */
export const ADMISSION_ERROR_CODES: readonly string[] = [
  'template_invalid',
  'template_rego',
  'template_no_violation',
  'template_cel_unsupported',
  'template_schema',
  'template_data_ref',
  'constraint_schema',
  'constraint_action',
  'constraint_no_template',
  'constraint_invalid',
  'review_invalid',
  'review_no_request',
  'review_no_object',
  'review_failed',
  'suite_invalid',
  'pss_level_invalid',
  'policies_invalid',
  'file_not_found',
  'manifest_invalid',
  'audit_timeout',
];

import { statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

import { RE2JS } from 're2js';

import { AdmissionError, ConstraintSchemaError, SuiteError } from '../errors.js';
import { listManifestFiles, readObjects } from '../files.js';

import { GatekeeperClient } from './client.js';
import { reviewFromObject, reviewFromRequest } from './review.js';
import type { K8sObject } from './types.js';

/** Assertion is one gator assertion: `violations` yes|no|N (YAML booleans read as yes/no), optional `message` RE2 regex. */
export interface SuiteAssertion {
  violations?: number | string | boolean;
  message?: string;
}
interface SuiteCase {
  name?: string;
  object?: string;
  inventory?: string[];
  assertions?: SuiteAssertion[];
  skip?: boolean;
}
interface SuiteTest {
  name?: string;
  template?: string;
  constraint?: string;
  cases?: SuiteCase[];
  invalid?: boolean;
  skip?: boolean;
}

/** CaseOutcome is one case's (or one `invalid` test's) result. */
export interface CaseOutcome {
  suite: string;
  test: string;
  case: string;
  status: 'pass' | 'fail' | 'skip';
  error?: string;
  ms: number;
}

function readOne(file: string, what: string): K8sObject {
  const objs = readObjects(file);
  if (objs.length !== 1) throw new SuiteError(file, `${what} file must define exactly one object, found ${objs.length}`);
  return objs[0]!;
}

/** expectation normalises `violations` (default "yes"; true → yes, false → no; a quoted number is an error, as in gator). */
function expectation(a: SuiteAssertion): number | 'yes' | 'no' {
  const v = a.violations ?? 'yes';
  if (v === true || v === 'yes') return 'yes';
  if (v === false || v === 'no') return 'no';
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return v;
  throw new AdmissionError('suite_invalid', `assertion.violations, if set, must be a nonnegative integer, "yes", or "no" (got ${JSON.stringify(v)})`);
}

/** checkAssertion returns why an assertion fails on these messages, or undefined when it holds. */
export function checkAssertion(a: SuiteAssertion, messages: string[]): string | undefined {
  const want = expectation(a);
  let re: RE2JS | undefined;
  if (a.message !== undefined) {
    try {
      re = RE2JS.compile(String(a.message));
    } catch (e) {
      throw new AdmissionError('suite_invalid', `assertion.message ${JSON.stringify(a.message)} is not a valid regular expression: ${(e as Error).message}`);
    }
  }
  const matching = re ? messages.filter((m) => re!.matcher(m).find()).length : messages.length;
  const containing = a.message !== undefined ? ` containing ${JSON.stringify(a.message)}` : '';
  const got = `got ${matching} violations${containing}`;
  const tail = `: got messages ${JSON.stringify(messages)}`;
  if (want === 'yes' && matching === 0) return `${got} but want at least 1${tail}`;
  if (want === 'no' && matching > 0) return `${got} but want none${tail}`;
  if (typeof want === 'number' && matching !== want) return `${got} but want exactly ${want}${tail}`;
  return undefined;
}

/**
 * findSuites expands arguments as gator does: files are suites, directories are searched
 * (recursively) for files whose kind is Suite.
 */
export function findSuites(paths: string[]): string[] {
  const out: string[] = [];
  for (const p of paths) {
    let dir = false;
    try {
      dir = statSync(p).isDirectory();
    } catch {
      dir = false;
    }
    if (!dir) out.push(p);
    else
      for (const f of listManifestFiles([p])) {
        try {
          if (readObjects(f).some((o) => o?.kind === 'Suite')) out.push(f);
        } catch {
          // not YAML a suite could be in: not a suite
        }
      }
  }
  return out;
}

/**
 * runSuite runs one Gatekeeper `gator verify` suite (kind Suite): for each test the template and
 * constraint are compiled once, then each case's object (or AdmissionReview) is reviewed with the
 * case's inventory, and every assertion is checked against the violation messages.
 */
export function runSuite(file: string): CaseOutcome[] {
  const path = resolve(file);
  const suite = readOne(path, 'suite') as K8sObject & { tests?: SuiteTest[]; skip?: boolean };
  if (suite.kind !== 'Suite') throw new SuiteError(file, `kind must be Suite, not ${String(suite.kind)}`);
  const dir = dirname(path);
  const out: CaseOutcome[] = [];
  if (suite.skip) return out;
  (suite.tests ?? []).forEach((t, ti) => {
    const test = t.name ?? `test-${ti}`;
    const outcome = (c: string, status: CaseOutcome['status'], started: number, error?: string) => out.push({ suite: file, test, case: c, status, ...(error ? { error } : {}), ms: Date.now() - started });
    if (t.skip) {
      for (const c of t.cases ?? []) outcome(c.name ?? '', 'skip', Date.now());
      return;
    }
    const started = Date.now();
    const client = new GatekeeperClient();
    let setupError: string | undefined;
    let constraintError: unknown;
    try {
      if (!t.template) throw new SuiteError(file, `test "${test}" has no template`);
      if (!t.constraint) throw new SuiteError(file, `test "${test}" has no constraint`);
      client.addTemplate(readOne(resolve(dir, t.template), 'template'));
      const constraint = readOne(resolve(dir, t.constraint), 'constraint');
      try {
        client.addConstraint(constraint);
      } catch (e) {
        constraintError = e;
      }
    } catch (e) {
      setupError = (e as Error).message;
    }
    if (t.invalid) {
      if (setupError) outcome('(invalid constraint)', 'fail', started, setupError);
      else if (constraintError instanceof ConstraintSchemaError) outcome('(invalid constraint)', 'pass', started);
      else outcome('(invalid constraint)', 'fail', started, constraintError ? `got error ${(constraintError as Error).message} but want a schema error` : 'the constraint is valid but the test expects it to be invalid');
      return;
    }
    setupError ??= constraintError ? (constraintError as Error).message : undefined;
    // A test that cannot be set up fails even when it has no cases to fail with it.
    if (setupError && !t.cases?.length) outcome('(setup)', 'fail', started, setupError);
    for (const [ci, c] of (t.cases ?? []).entries()) {
      const name = c.name ?? `case-${ci}`;
      const t0 = Date.now();
      if (c.skip) {
        outcome(name, 'skip', t0);
        continue;
      }
      if (setupError) {
        outcome(name, 'fail', t0, setupError);
        continue;
      }
      let why: string | undefined;
      try {
        why = runCase(client, dir, c);
      } catch (e) {
        why = (e as Error).message;
      }
      outcome(name, why ? 'fail' : 'pass', t0, why);
    }
  });
  return out;
}

function runCase(client: GatekeeperClient, dir: string, c: SuiteCase): string | undefined {
  if (!c.object) throw new AdmissionError('suite_invalid', 'invalid test case: must define object');
  if (!c.assertions?.length) throw new AdmissionError('suite_invalid', 'invalid test case: assertions must be non-empty');
  client.inventory.clear();
  const objPath = resolve(dir, c.object);
  const objs = readObjects(objPath);
  if (objs.length !== 1) throw new SuiteError(objPath, `defines ${objs.length} objects; a case reviews exactly one`);
  for (const p of c.inventory ?? []) for (const o of readObjects(resolve(dir, p))) client.addData(o);
  const obj = objs[0]!;
  const isReview = obj.kind === 'AdmissionReview' && String(obj.apiVersion ?? '').startsWith('admission.k8s.io/');
  const review = isReview ? reviewFromRequest(obj.request) : reviewFromObject(obj);
  const result = client.review(review);
  if (result.errors.length) throw new AdmissionError('review_failed', result.errors.map((e) => `${e.kind}/${e.name}: ${e.message}`).join('; '));
  const messages = result.violations.map((v) => v.msg);
  for (const a of c.assertions) {
    const why = checkAssertion(a, messages);
    if (why) return why;
  }
  return undefined;
}

/** formatOutcomes renders results as gator does (FAIL blocks per test and case, ok/FAIL per suite), ending with `N passed, M failed`. */
export function formatOutcomes(outcomes: CaseOutcome[], suites: string[], verbose = false): string {
  const lines: string[] = [];
  for (const s of suites) {
    const mine = outcomes.filter((o) => o.suite === s);
    const failed = mine.filter((o) => o.status === 'fail');
    for (const o of verbose ? mine : failed) {
      const tag = o.status === 'pass' ? 'PASS' : o.status === 'skip' ? 'SKIP' : 'FAIL';
      lines.push(`--- ${tag}: ${o.test} / ${o.case} (${(o.ms / 1000).toFixed(3)}s)`);
      if (o.error) lines.push(`    ${o.error}`);
    }
    const ms = mine.reduce((a, o) => a + o.ms, 0);
    lines.push(`${failed.length ? 'FAIL' : 'ok'}\t${s}\t${(ms / 1000).toFixed(3)}s`);
  }
  const passed = outcomes.filter((o) => o.status === 'pass').length;
  const failed = outcomes.filter((o) => o.status === 'fail').length;
  lines.push(`${passed} passed, ${failed} failed`);
  return lines.join('\n') + '\n';
}

import type { Ajv } from 'ajv';

import { type DecisionLogger, type ExternalDataLookup, type PrepareOptions, RegoError, RObject, RSet, toJSON, type Value } from '../../policy/index.js';
import { ConstraintError } from '../errors.js';

import { compileConstraint, type CompiledConstraint } from './constraint.js';
import { Inventory } from './inventory.js';
import { type CompiledTemplate,compileTemplate, newSchemaCompiler } from './template.js';
import type { AdmissionRequestJSON, K8sObject, Violation } from './types.js';

/** ConstraintFailure is a constraint that could not be evaluated for a review (Rego runtime error, unknown namespace). */
export interface ConstraintFailure {
  kind: string;
  name: string;
  enforcementAction: string;
  message: string;
}

/** ReviewResult is every violation of every matching constraint, plus constraints that failed to evaluate. */
export interface ReviewResult {
  violations: Violation[];
  errors: ConstraintFailure[];
}

/** ReviewContext carries what the review alone cannot tell: the Namespace object of the review's namespace. */
export interface ReviewContext {
  namespaceObject?: K8sObject;
  /** evaluate only these constraints (kind → names); all when absent */
  only?: (c: CompiledConstraint) => boolean;
  /** answers `external_data` calls of the templates for this review (providers fetched beforehand) */
  externalData?: ExternalDataLookup;
}

/**
 * GatekeeperClient is Gatekeeper's constraint framework in-process: templates compile to constraint
 * kinds, constraints are validated against their template and matched per review, and every
 * matching constraint's `violation` rule is evaluated with `input.review`, `input.parameters` and
 * `data.inventory`.
 *
 * @example
 * const gk = new GatekeeperClient();
 * gk.addTemplate(templateYaml);
 * gk.addConstraint(constraintYaml);
 * gk.review(reviewFromObject(pod)).violations; // [{ kind, name, enforcementAction, msg, details }]
 */
export class GatekeeperClient {
  readonly inventory = new Inventory();
  /** per-constraint evaluation budget in ms; past it the constraint fails to evaluate (undefined: no limit) */
  readonly evalTimeoutMs?: number;

  /**
   * The base document every template engine shares: `data.inventory` is the live inventory tree.
   * An RObject is taken by the engine as it is (plain JSON would be copied into each engine), so
   * the inventory is held once and a sync is visible to the next evaluation without recompiling.
   */
  private readonly data = new RObject();
  private readonly ajv: Ajv = newSchemaCompiler();
  private readonly templates = new Map<string, CompiledTemplate>();
  private readonly byKind = new Map<string, Map<string, CompiledConstraint>>();
  /**
   * Every constraint with its template, in review order; rebuilt on the first review after a
   * template or constraint changes, so a review walks one array instead of two maps and a lookup
   * per kind.
   */
  private plan: PlanEntry[] | undefined;

  /** Where every constraint evaluation is recorded, when the platform keeps decision logs. */
  readonly decisionLog?: DecisionLogger;

  constructor(opts: { evalTimeoutMs?: number; decisionLog?: DecisionLogger } = {}) {
    this.evalTimeoutMs = opts.evalTimeoutMs;
    this.decisionLog = opts.decisionLog;
    this.data.set('inventory', this.inventory.tree as unknown as Value);
  }

  /** addTemplate compiles (or recompiles) a template; existing constraints of its kind are checked again and dropped when they no longer fit. */
  addTemplate(obj: K8sObject): CompiledTemplate {
    const t = compileTemplate(obj, this.ajv, this.data, this.queryOptions());
    this.plan = undefined;
    this.externalData = undefined;
    const prev = [...this.templates.values()].find((x) => x.name === t.name && x.kind !== t.kind);
    if (prev) this.removeTemplate(prev.kind);
    this.templates.set(t.kind, t);
    const existing = this.byKind.get(t.kind);
    if (existing)
      for (const [n, c] of existing) {
        try {
          existing.set(n, compileConstraint(c.source, t));
        } catch {
          existing.delete(n);
        }
      }
    return t;
  }

  /** removeTemplate drops a template and all constraints of its kind. */
  removeTemplate(kind: string): void {
    this.plan = undefined;
    this.externalData = undefined;
    this.templates.delete(kind);
    this.byKind.delete(kind);
  }

  /**
   * needsExternalData tells whether any template calls `external_data`, so that reviews fetch
   * provider answers only when some policy can read them.
   */
  needsExternalData(): boolean {
    return (this.externalData ??= [...this.templates.values()].some((t) => JSON.stringify((t.source as { spec?: unknown }).spec ?? null).includes('external_data')));
  }

  /** whether a template calls external_data; recomputed after templates change */
  private externalData: boolean | undefined;

  /** template finds a compiled template by the constraint kind it creates. */
  template(kind: string): CompiledTemplate | undefined {
    return this.templates.get(kind);
  }

  /** templateByName finds a compiled template by its metadata.name. */
  templateByName(name: string): CompiledTemplate | undefined {
    for (const t of this.templates.values()) if (t.name === name) return t;
    return undefined;
  }

  /** allTemplates lists every compiled template. */
  allTemplates(): CompiledTemplate[] {
    return [...this.templates.values()];
  }

  /** addConstraint validates and stores a constraint; throws ConstraintSchemaError or ConstraintError. */
  addConstraint(obj: K8sObject): CompiledConstraint {
    const kind = String(obj?.kind ?? '');
    const t = this.templates.get(kind);
    if (!t) throw new ConstraintError(kind, String(obj?.metadata?.name ?? ''), `no ConstraintTemplate defines kind ${kind}; apply the template first`, 'constraint_no_template');
    const c = compileConstraint(obj, t);
    let m = this.byKind.get(kind);
    if (!m) this.byKind.set(kind, (m = new Map()));
    m.set(c.name, c);
    this.plan = undefined;
    this.externalData = undefined;
    return c;
  }

  /** removeConstraint forgets one constraint (no error when it is unknown). */
  removeConstraint(kind: string, name: string): void {
    this.plan = undefined;
    this.externalData = undefined;
    this.byKind.get(kind)?.delete(name);
  }

  /** constraints lists every constraint of every kind. */
  constraints(): CompiledConstraint[] {
    const out: CompiledConstraint[] = [];
    for (const m of this.byKind.values()) out.push(...m.values());
    return out;
  }

  /** addData syncs an object into `data.inventory`. */
  addData(obj: K8sObject): boolean {
    return this.inventory.add(obj);
  }

  /** removeData drops an object from `data.inventory`. */
  removeData(obj: K8sObject): void {
    this.inventory.remove(obj);
  }

  /**
   * review evaluates every matching constraint. The input object is built once per review and
   * only its `parameters` change between constraints, because evaluation is synchronous.
   */
  review(review: AdmissionRequestJSON, ctx: ReviewContext = {}): ReviewResult {
    const violations: Violation[] = [];
    const errors: ConstraintFailure[] = [];
    const ns = review.namespace || review.object?.metadata?.namespace || review.oldObject?.metadata?.namespace;
    const namespaceObject = ctx.namespaceObject ?? (ns ? this.inventory.namespace(ns) : undefined);
    const target = { object: review.object, oldObject: review.oldObject, namespace: review.namespace, namespaceObject };
    const input: { review: AdmissionRequestJSON; parameters: unknown } = { review, parameters: null };
    // one arguments object for every evaluation of this review: objects made per evaluation are
    // what V8 moves to the old generation once a collection finds them alive mid-evaluation
    const args: ReviewArgs = ctx.externalData ? { input, externalData: ctx.externalData } : { input };
    const only = ctx.only;
    for (const { kind, template, constraint: c } of this.planned()) {
      if (only && !only(c)) continue;
      const m = c.matcher.matches(target);
      if (m.error) errors.push({ kind, name: c.name, enforcementAction: c.enforcementAction, message: m.error });
      if (!m.matched) continue;
      input.parameters = c.parameters;
      try {
        collectViolations(template, args, kind, c, violations);
      } catch (e) {
        const message = e instanceof RegoError ? e.message : String((e as Error)?.message ?? e);
        errors.push({ kind, name: c.name, enforcementAction: c.enforcementAction, message });
      }
    }
    return { violations, errors };
  }

  /** queryOptions is what every template's prepared query carries: this client's time budget and decision log. */
  private queryOptions(): PrepareOptions {
    const o: PrepareOptions = {};
    // A deadline per evaluation (the engine sets it when each evaluation starts).
    if (this.evalTimeoutMs !== undefined) o.timeoutMs = this.evalTimeoutMs;
    if (this.decisionLog) o.decisionLog = this.decisionLog;
    return o;
  }

  private planned(): PlanEntry[] {
    if (this.plan) return this.plan;
    const plan: PlanEntry[] = [];
    for (const [kind, constraints] of this.byKind) {
      const template = this.templates.get(kind);
      if (template) for (const constraint of constraints.values()) plan.push({ kind, template, constraint });
    }
    return (this.plan = plan);
  }
}


/** ReviewArgs are the evaluation arguments shared by every constraint of one review. */
interface ReviewArgs {
  input: { review: AdmissionRequestJSON; parameters: unknown };
  externalData?: ExternalDataLookup;
}

interface PlanEntry {
  kind: string;
  template: CompiledTemplate;
  constraint: CompiledConstraint;
}

/**
 * collectViolations evaluates one constraint's `violation` set and appends its results. A violation
 * that is not an object with a string `msg` fails the whole constraint, and nothing of it is kept.
 */
function collectViolations(t: CompiledTemplate, args: ReviewArgs, kind: string, c: CompiledConstraint, out: Violation[]): void {
  const rows = t.query.eval(args);
  let found: Violation[] | undefined;
  for (const row of rows) {
    const raw = row.expressions[0]!.value;
    // Most reviews pass: skip the conversion of an empty result set.
    if (raw instanceof RSet && raw.size === 0) continue;
    const value = toJSON(raw);
    if (!Array.isArray(value)) continue;
    for (const v of value) {
      if (!v || typeof v !== 'object' || typeof (v as { msg?: unknown }).msg !== 'string') throw new RegoError('eval_type_error', `template ${t.name}: violation results must be objects with a string "msg", got ${JSON.stringify(v)}`);
      const { msg, details } = v as { msg: string; details?: unknown };
      (found ??= []).push({ kind, name: c.name, enforcementAction: c.enforcementAction, msg, ...(details !== undefined ? { details } : {}) });
    }
  }
  if (found) out.push(...found);
}

import type { Logger } from 'pino';

import { ApiError } from '../api/errors.js';
import { setCondition } from '../api/kinds/conditions.js';
import type { ResourceObject } from '../api/kinds/types.js';
import type { ResourceService } from '../api/resources.js';
import type { DecisionLogger, PolicyEngine, PreparedQuery, ReplaySummary } from '../policy/index.js';
import type { UpstreamGuard } from '../security/index.js';
import { SkiffError } from '../util/errors.js';
import { DurationHistogram } from '../util/histogram.js';

import { PolicyBackoff, type PolicyBackoffOptions } from './policy-backoff.js';
import { type CompiledSet, compileUnits, type PolicyUnit } from './policy-units.js';

type PolicyModule = typeof import('../policy/index.js');
// The engine and its built-ins cost memory; a node without Policy objects never loads them.
let policyModule: Promise<PolicyModule> | undefined;
const loadPolicy = () => (policyModule ??= import('../policy/index.js'));
import { Controller, Informer } from './runtime/index.js';

/** What an authz filter gets back (the gateway's AuthzDecision). */
export interface Decision {
  allowed: boolean;
  headers?: Record<string, string>;
  status?: number;
  body?: string;
}

export interface PolicyControllerOptions {
  resources: ResourceService;
  logger: Logger;
  /** Evaluation budget per decision when the caller names none; a policy that runs longer is denied (fail closed). */
  timeoutMs?: number;
  decisionLog?: DecisionLogger;
  /** The operator's upstream allow-list: the only targets a policy's http.send may reach (none without it). */
  upstreams?: UpstreamGuard;
  /** When a policy that keeps missing its deadline is short-circuited. */
  backoff?: PolicyBackoffOptions;
  /** How far back replay before rollout looks (default one hour) and how many decisions it re-runs at most (10,000). */
  replay?: { windowMs?: number; maxDecisions?: number; budgetMs?: number };
  /** Told of every gateway authorization decision (the dashboard keeps the recent ones); called on the request path, so it must be cheap. */
  onDecision?: (d: { policy: string; input: object; allowed: boolean; durationUs: number; error?: string }) => void;
}

/** PolicyBackoffError: the policy missed its deadline repeatedly and is short-circuited (fail closed) for a while. */
export class PolicyBackoffError extends SkiffError {
  constructor(policy: string, leftMs: number) {
    super('policy_backoff', `policy ${policy} kept missing its deadline; its decisions are denied without evaluation for another ${Math.ceil(leftMs / 1000)}s`);
  }
}

/** PolicyDecisionStats are one rule's decisions by result and its evaluation time, read at scrape time. */
export class PolicyDecisionStats {
  allow = 0;
  deny = 0;
  /** Evaluations that failed (a missed deadline, an evaluation error): the filter fails closed. */
  error = 0;
  /** Decisions denied without evaluation while the rule was in back-off. */
  backoff = 0;
  readonly eval = new DurationHistogram();
}

/** The labels the platform's policy engine puts on its decisions: replay re-runs only those. */
export const POLICY_DECISION_LABELS = Object.freeze({ engine: 'policies' });

/** BundleProposal is a verified, parsed bundle revision offered for activation. */
export interface BundleProposal {
  name: string;
  revision: string;
  digest: string;
  roots: string[];
  modules: Array<{ file: string; text: string; regoVersion: 0 | 1 }>;
  data: Record<string, unknown>;
  /** hold the revision back when more replayed decisions would change */
  maxChangedDecisions?: number;
  /** activate without replay (restoring the revision that was active before a restart) */
  restore?: boolean;
}

/** ProposalResult says what became of a proposal. */
export type ProposalResult = { outcome: 'activated'; replay?: ReplaySummary } | { outcome: 'held'; replay: ReplaySummary } | { outcome: 'failed'; errors: string[] };

/** What a Policy's live version is: the one the engine runs, possibly older than its spec. */
interface LivePolicy {
  generation: number;
  rego: string;
  regoVersion: 'v0' | 'v1';
}

/** What happened to a Policy's latest generation in a reconcile. */
interface Outcome {
  errors?: string[];
  replay?: ReplaySummary;
  held?: number;
}

const ALL = '__all__';
const DEFAULT_QUERY = 'data.skiff.authz.allow';
const policyKey = (p: ResourceObject) => `Policy ${p.metadata.namespace}/${p.metadata.name}`;
const bundleKey = (name: string) => `PolicyBundle ${name}`;

/**
 * PolicyController keeps the platform's one policy engine equal to the stored Policy objects and the
 * active PolicyBundle revisions. A new Policy generation or bundle revision is a candidate: it goes
 * live only if it compiles with everything else without breaking any of it, and — when a decision
 * log is kept — after the recent decisions have been replayed against it (held back when more would
 * change than `spec.rollout.maxChangedDecisions`). Otherwise the previous version keeps deciding and
 * the object's status says why. It also answers gateway authorization: `authorizer.check(input,
 * {policy})` evaluates a rule such as `data.http.authz.allow` with a prepared query, cached per rule
 * until the engine changes.
 */
export class PolicyController {
  readonly informer: Informer;
  readonly controller: Controller;
  private engine?: PolicyEngine;
  private policy?: PolicyModule;
  private readonly prepared = new Map<string, PreparedQuery>();
  private readonly backoff: PolicyBackoff;
  private readonly log?: DecisionLogger;
  private readonly livePolicies = new Map<string, LivePolicy>();
  private readonly liveBundles = new Map<string, BundleProposal>();
  /** engine changes, one at a time */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: PolicyControllerOptions) {
    this.backoff = new PolicyBackoff(opts.backoff);
    this.log = opts.decisionLog?.withLabels(POLICY_DECISION_LABELS);
    this.informer = new Informer(opts.resources, opts.resources.kind('Policy'), opts.logger);
    this.controller = new Controller({ name: 'policies', logger: opts.logger, keys: () => [ALL], reconcile: () => this.serial(() => this.reconcile()), workers: 1, resyncMs: 300_000 });
    const poke = () => this.controller.enqueue(ALL);
    this.informer.addHandlers({ onAdd: poke, onDelete: poke, onUpdate: (a, b) => a.metadata.generation !== b.metadata.generation && poke() });
  }

  async start(): Promise<void> {
    await this.informer.start();
    this.controller.start();
  }

  async stop(): Promise<void> {
    this.informer.stop();
    await this.controller.stop();
  }

  /** decisionStats counts gateway authorization decisions and their evaluation time per rule (query). */
  readonly decisionStats = new Map<string, PolicyDecisionStats>();

  /** authorizer implements the gateway's Authorizer over the current policies. */
  readonly authorizer = {
    check: async (input: object, options?: { policy?: string; timeoutMs?: number }): Promise<Decision> => {
      const policy = options?.policy ?? DEFAULT_QUERY;
      const listener = this.opts.onDecision;
      if (!listener) return this.decide(input, policy, options?.timeoutMs);
      const t0 = performance.now();
      try {
        const d = this.decide(input, policy, options?.timeoutMs);
        listener({ policy, input, allowed: d.allowed, durationUs: (performance.now() - t0) * 1000 });
        return d;
      } catch (err) {
        listener({ policy, input, allowed: false, durationUs: (performance.now() - t0) * 1000, error: (err as Error).message });
        throw err;
      }
    },
  };

  /**
   * decide evaluates one rule within its deadline. A boolean result allows or denies; an object may
   * carry `allowed`, `headers`, `http_status` and `body` (the shape Envoy users write). Past the
   * deadline it throws the engine's EvalCancelError; a policy in back-off (see PolicyBackoff) throws
   * PolicyBackoffError without being evaluated.
   */
  decide(input: object, query: string, timeoutMs = this.opts.timeoutMs ?? 100): Decision {
    const stats = this.decisionStats.get(query) ?? this.statsFor(query);
    if (!this.engine || !this.policy) {
      stats.deny++;
      return { allowed: false };
    }
    const left = this.backoff.blockedFor(query, Date.now());
    if (left > 0) {
      stats.backoff++;
      throw new PolicyBackoffError(query, left);
    }
    const t0 = performance.now();
    const d = this.evaluate(this.engine, this.policy, input, query, timeoutMs, stats, t0);
    stats.eval.observe((performance.now() - t0) * 1000);
    if (d.allowed) stats.allow++;
    else stats.deny++;
    return d;
  }

  /** statsFor adds the counters of a rule first asked for; rules are named by routes, so the set stays small. */
  private statsFor(query: string): PolicyDecisionStats {
    const s = new PolicyDecisionStats();
    this.decisionStats.set(query, s);
    return s;
  }

  private evaluate(engine: PolicyEngine, policy: PolicyModule, input: object, query: string, timeoutMs: number, stats: PolicyDecisionStats, t0: number): Decision {
    // one prepared query per rule and deadline: an eval with options of its own would copy them each time
    const key = `${timeoutMs} ${query}`;
    let q = this.prepared.get(key);
    if (!q) {
      q = engine.prepare(query, { timeoutMs, decisionLog: this.log });
      this.prepared.set(key, q);
    }
    let rows;
    try {
      rows = q.eval({ input });
    } catch (err) {
      stats.error++;
      stats.eval.observe((performance.now() - t0) * 1000);
      if ((err as { code?: unknown }).code === 'eval_cancel_error') this.missedDeadline(query, timeoutMs);
      throw err;
    }
    this.backoff.succeeded(query);
    if (!rows.length) return { allowed: false };
    const v = policy.toJSON(rows[0]!.expressions[0]!.value) as unknown;
    if (typeof v === 'boolean') return { allowed: v };
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const o = v as Record<string, unknown>;
      const headers = o.headers && typeof o.headers === 'object' ? Object.fromEntries(Object.entries(o.headers as object).map(([k, x]) => [k, String(x)])) : undefined;
      return { allowed: o.allowed === true, ...(headers ? { headers } : {}), ...(typeof o.http_status === 'number' ? { status: o.http_status } : {}), ...(typeof o.body === 'string' ? { body: o.body } : {}) };
    }
    return { allowed: false };
  }

  private missedDeadline(query: string, timeoutMs: number): void {
    const ms = this.backoff.failed(query, Date.now());
    // one line per back-off period: the requests it denies are not logged one by one
    if (ms) this.opts.logger.warn({ policy: query, deadlineMs: timeoutMs, backoffMs: ms }, `policy ${query} keeps missing its ${timeoutMs}ms deadline: its decisions are denied without evaluation for ${ms / 1000}s`);
  }

  /** serial runs engine changes one after another (Policy reconciles and bundle proposals share the engine). */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn, fn);
    this.chain = next.catch(() => undefined);
    return next;
  }

  /** activeBundle is the revision of a PolicyBundle the engine runs, if any. */
  activeBundle(name: string): { revision: string; digest: string } | undefined {
    const b = this.liveBundles.get(name);
    return b ? { revision: b.revision, digest: b.digest } : undefined;
  }

  /**
   * proposeBundle offers a bundle revision: refused when its roots overlap another active bundle's or
   * when it does not compile with the rest (or breaks any of it), held when replay finds more changed
   * decisions than allowed, otherwise swapped in at once.
   */
  proposeBundle(p: BundleProposal): Promise<ProposalResult> {
    return this.serial(async () => {
      for (const [name, b] of this.liveBundles) {
        if (name === p.name) continue;
        const clash = p.roots.flatMap((r) => b.roots.filter((o) => o === '' || r === '' || o === r || o.startsWith(`${r}/`) || r.startsWith(`${o}/`)).map((o) => `"${r}" and "${o}"`));
        if (clash.length) return { outcome: 'failed', errors: [`its roots overlap those of PolicyBundle ${name}: ${clash.join(', ')}; two bundles cannot own one part of data`] };
      }
      const mod = await loadPolicy();
      const current = this.compile(mod);
      const trialBundles = new Map(this.liveBundles).set(p.name, p);
      const trial = this.compile(mod, this.livePolicies, trialBundles);
      const introduced = this.introduced(current, trial);
      if (introduced.length) return { outcome: 'failed', errors: introduced };
      const replay = p.restore ? undefined : await this.replay(current, trial);
      if (replay && p.maxChangedDecisions !== undefined && replay.changed > p.maxChangedDecisions) return { outcome: 'held', replay };
      this.liveBundles.set(p.name, p);
      this.swap(mod, trial);
      return { outcome: 'activated', ...(replay ? { replay } : {}) };
    });
  }

  /** removeBundle takes a deleted PolicyBundle's modules and data out of the engine. */
  removeBundle(name: string): Promise<void> {
    return this.serial(async () => {
      if (!this.liveBundles.delete(name)) return;
      const mod = await loadPolicy();
      this.swap(mod, this.compile(mod));
    });
  }

  private units(policies: Map<string, LivePolicy>, bundles: Map<string, BundleProposal>): PolicyUnit[] {
    const out: PolicyUnit[] = [];
    for (const [key, p] of policies) out.push({ key, modules: [{ file: `${key.slice('Policy '.length)}.rego`, text: p.rego, regoVersion: p.regoVersion === 'v0' ? 0 : 1 }] });
    for (const [name, b] of bundles) out.push({ key: bundleKey(name), modules: b.modules, data: b.data });
    return out;
  }

  private compile(mod: PolicyModule, policies = this.livePolicies, bundles = this.liveBundles): CompiledSet {
    return compileUnits(mod, this.units(policies, bundles), this.opts.upstreams);
  }

  /** introduced lists the problems a trial set has that the current one does not: a candidate may not break anything. */
  private introduced(current: CompiledSet, trial: CompiledSet): string[] {
    if (trial.fatal) return trial.fatal;
    const out: string[] = [];
    for (const [key, errs] of trial.problems) if (!current.problems.has(key)) out.push(...errs);
    return out;
  }

  private swap(mod: PolicyModule, set: CompiledSet): void {
    if (set.fatal) {
      this.opts.logger.warn({ err: set.fatal.join('; ') }, 'policies do not compile together; keeping the previous set');
      return;
    }
    this.engine = set.engine;
    this.policy = mod;
    this.prepared.clear();
    // changed policies get a fresh chance
    this.backoff.clear();
  }

  /** replay re-runs the recent decisions of this engine against a candidate set (none without a decision log). */
  private async replay(current: CompiledSet, trial: CompiledSet): Promise<ReplaySummary | undefined> {
    if (!this.log) return undefined;
    const mod = await loadPolicy();
    const since = new Date(Date.now() - (this.opts.replay?.windowMs ?? 3_600_000));
    const live = this.engine && !current.fatal ? mod.engineRunner(current.engine) : () => ({});
    return mod.replayDecisions(mod.streamDecisions(this.log.path, since), live, mod.engineRunner(trial.engine), {
      since,
      labels: POLICY_DECISION_LABELS,
      maxDecisions: this.opts.replay?.maxDecisions,
      budgetMs: this.opts.replay?.budgetMs,
    });
  }

  private async reconcile(): Promise<void> {
    const policies = this.informer.list();
    if (!policies.length && !this.engine && !this.liveBundles.size) return;
    const mod = await loadPolicy();
    const keys = new Set(policies.map(policyKey));
    for (const k of [...this.livePolicies.keys()]) if (!keys.has(k)) this.livePolicies.delete(k);
    const spec = (p: ResourceObject): LivePolicy => ({ generation: p.metadata.generation ?? 0, rego: String(p.spec.rego), regoVersion: p.spec.regoVersion === 'v0' ? 'v0' : 'v1' });
    if (!this.engine) {
      // the first build after a start: what was live before (status.active, when a newer generation
      // was held back or failed) is live again; everything else goes live as stored
      for (const p of policies) {
        const a = p.status?.active as LivePolicy | undefined;
        const held = a && typeof a.rego === 'string' && a.generation < (p.metadata.generation ?? 0);
        this.livePolicies.set(policyKey(p), held ? a : spec(p));
      }
    }
    let current = this.compile(mod);
    const outcomes = new Map<string, Outcome>();
    for (const p of policies) {
      const key = policyKey(p);
      if (this.livePolicies.get(key)?.generation === p.metadata.generation) continue;
      const trialPolicies = new Map(this.livePolicies).set(key, spec(p));
      const trial = this.compile(mod, trialPolicies);
      const introduced = this.introduced(current, trial);
      if (introduced.length) {
        outcomes.set(key, { errors: introduced });
        continue;
      }
      const replay = await this.replay(current, trial);
      const max = p.spec.rollout?.maxChangedDecisions as number | undefined;
      if (replay && max !== undefined && replay.changed > max) {
        outcomes.set(key, { replay, held: max });
        continue;
      }
      this.livePolicies.set(key, spec(p));
      current = trial;
      outcomes.set(key, replay ? { replay } : {});
    }
    this.swap(mod, current);
    await this.report(policies, current, outcomes);
  }

  private async report(policies: ResourceObject[], set: CompiledSet, outcomes: Map<string, Outcome>): Promise<void> {
    const def = this.opts.resources.kind('Policy');
    for (const p of policies) {
      const key = policyKey(p);
      const out = outcomes.get(key) ?? {};
      const live = this.livePolicies.get(key);
      const behind = live && live.generation !== p.metadata.generation ? live : undefined;
      const errs = out.errors ?? set.problems.get(key) ?? (set.fatal && !behind ? set.fatal : undefined);
      const pkg = /^\s*package\s+([\w.]+)/m.exec(String(p.spec.rego))?.[1];
      const old = p.status ?? {};
      const keeps = behind ? `; generation ${behind.generation} keeps deciding` : '';
      const condition: { status: 'True' | 'False'; reason: string; message: string } = out.held !== undefined
        ? { status: 'False', reason: 'RolloutHeld', message: `generation ${p.metadata.generation} is held back: ${out.replay!.changed} of ${out.replay!.evaluated} replayed decisions would change (spec.rollout.maxChangedDecisions: ${out.held})${keeps}` }
        : errs
          ? { status: 'False', reason: 'CompileError', message: `${errs.join('; ')}${keeps}` }
          : { status: 'True', reason: 'Loaded', message: `loaded into the policy engine as data.${pkg ?? '?'}` };
      const { active: _active, replay: oldReplay, ...rest } = old as Record<string, unknown>;
      const next = {
        ...rest,
        observedGeneration: p.metadata.generation,
        ...(pkg ? { package: `data.${pkg}` } : {}),
        errors: errs ?? [],
        ...(out.replay ? { replay: out.replay } : oldReplay && outcomes.has(key) === false ? { replay: oldReplay } : {}),
        ...(behind ? { active: behind } : {}),
        conditions: setCondition(old.conditions, { type: 'Ready', ...condition, observedGeneration: p.metadata.generation }),
      };
      if (JSON.stringify(next) === JSON.stringify(old)) continue;
      try {
        await this.opts.resources.updateStatus(def, p.metadata.namespace, p.metadata.name, { metadata: { resourceVersion: p.metadata.resourceVersion }, status: next });
      } catch (err) {
        if (err instanceof ApiError && (err.reason === 'Conflict' || err.reason === 'NotFound')) this.controller.enqueue(ALL);
        else throw err;
      }
    }
  }
}

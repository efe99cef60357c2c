import type { Logger } from 'pino';

import { ApiError } from '../api/errors.js';
import { setCondition } from '../api/kinds/conditions.js';
import type { ResourceObject } from '../api/kinds/types.js';
import type { ResourceService } from '../api/resources.js';
import type { DecisionLogger,PolicyEngine, PreparedQuery } from '../policy/index.js';
import type { UpstreamGuard } from '../security/index.js';
import { SkiffError } from '../util/errors.js';

import { PolicyBackoff, type PolicyBackoffOptions } from './policy-backoff.js';

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
}

/** PolicyBackoffError: the policy missed its deadline repeatedly and is short-circuited (fail closed) for a while. */
export class PolicyBackoffError extends SkiffError {
  constructor(policy: string, leftMs: number) {
    super('policy_backoff', `policy ${policy} kept missing its deadline; its decisions are denied without evaluation for another ${Math.ceil(leftMs / 1000)}s`);
  }
}

const ALL = '__all__';
const DEFAULT_QUERY = 'data.skiff.authz.allow';

/**
 * PolicyController keeps the platform's policy engine equal to the stored Policy objects. A policy
 * that does not parse or compile is left out (the others keep working) and its status names every
 * error with file:line. It also answers gateway authorization: `authorizer.check(input, {policy})`
 * evaluates a rule such as `data.http.authz.allow` with a prepared query, cached per rule until the
 * policies change.
 */
export class PolicyController {
  readonly informer: Informer;
  readonly controller: Controller;
  private engine?: PolicyEngine;
  private policy?: PolicyModule;
  private readonly prepared = new Map<string, PreparedQuery>();
  private readonly backoff: PolicyBackoff;

  constructor(private readonly opts: PolicyControllerOptions) {
    this.backoff = new PolicyBackoff(opts.backoff);
    this.informer = new Informer(opts.resources, opts.resources.kind('Policy'), opts.logger);
    this.controller = new Controller({ name: 'policies', logger: opts.logger, keys: () => [ALL], reconcile: () => this.reconcile(), workers: 1, resyncMs: 300_000 });
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

  /** authorizer implements the gateway's Authorizer over the current policies. */
  readonly authorizer = {
    check: async (input: object, options?: { policy?: string; timeoutMs?: number }): Promise<Decision> => this.decide(input, options?.policy ?? DEFAULT_QUERY, options?.timeoutMs),
  };

  /**
   * decide evaluates one rule within its deadline. A boolean result allows or denies; an object may
   * carry `allowed`, `headers`, `http_status` and `body` (the shape Envoy users write). Past the
   * deadline it throws the engine's EvalCancelError; a policy in back-off (see PolicyBackoff) throws
   * PolicyBackoffError without being evaluated.
   */
  decide(input: object, query: string, timeoutMs = this.opts.timeoutMs ?? 100): Decision {
    if (!this.engine || !this.policy) return { allowed: false };
    const left = this.backoff.blockedFor(query, Date.now());
    if (left > 0) throw new PolicyBackoffError(query, left);
    // one prepared query per rule and deadline: an eval with options of its own would copy them each time
    const key = `${timeoutMs} ${query}`;
    let q = this.prepared.get(key);
    if (!q) {
      q = this.engine.prepare(query, { timeoutMs, decisionLog: this.opts.decisionLog });
      this.prepared.set(key, q);
    }
    let rows;
    try {
      rows = q.eval({ input });
    } catch (err) {
      if ((err as { code?: unknown }).code === 'eval_cancel_error') this.missedDeadline(query, timeoutMs);
      throw err;
    }
    this.backoff.succeeded(query);
    if (!rows.length) return { allowed: false };
    const v = this.policy.toJSON(rows[0]!.expressions[0]!.value) as unknown;
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

  private async reconcile(): Promise<void> {
    const policies = this.informer.list();
    if (!policies.length && !this.engine) return;
    const mod = await loadPolicy();
    const { PolicyEngine, RegoError, RegoErrors } = mod;
    const messages = (err: unknown): string[] => (err instanceof RegoErrors ? err.errors.map((e) => e.message) : [(err as Error).message]);
    // http.send reaches only what the operator's upstream allow-list allows (off without one)
    const engine = new PolicyEngine(this.opts.upstreams ? { upstreams: this.opts.upstreams } : {});
    const problems = new Map<string, string[]>();
    const fileOf = (p: ResourceObject) => `${p.metadata.namespace}/${p.metadata.name}.rego`;
    const byFile = new Map(policies.map((p) => [fileOf(p), p]));
    for (const p of policies) {
      try {
        engine.addModule(fileOf(p), String(p.spec.rego), { regoVersion: p.spec.regoVersion === 'v0' ? 0 : 1 });
      } catch (err) {
        problems.set(fileOf(p), messages(err));
      }
    }
    // A compile error blames files; leave those out and compile the rest, so one bad policy does not take down the others.
    for (let round = 0; round < policies.length + 1; round++) {
      try {
        engine.compile();
        break;
      } catch (err) {
        const errs = err instanceof RegoErrors ? err.errors : err instanceof RegoError ? [err] : [];
        const blamed = new Set(errs.map((e) => e.loc?.file).filter((f): f is string => !!f && engine.moduleFiles().includes(f)));
        if (!blamed.size) {
          // Nothing to blame: keep serving the previous engine and report on every policy.
          for (const p of policies) problems.set(fileOf(p), messages(err));
          this.opts.logger.warn({ err: (err as Error).message }, 'policies do not compile together; keeping the previous set');
          await this.report(policies, problems, fileOf);
          return;
        }
        for (const f of blamed) {
          problems.set(f, [...(problems.get(f) ?? []), ...errs.filter((e) => e.loc?.file === f).map((e) => e.message)]);
          engine.removeModule(f);
        }
      }
    }
    this.engine = engine;
    this.policy = mod;
    this.prepared.clear();
    // changed policies get a fresh chance
    this.backoff.clear();
    await this.report([...byFile.values()], problems, fileOf);
  }

  private async report(policies: ResourceObject[], problems: Map<string, string[]>, fileOf: (p: ResourceObject) => string): Promise<void> {
    const def = this.opts.resources.kind('Policy');
    for (const p of policies) {
      const errs = problems.get(fileOf(p));
      const pkg = /^\s*package\s+([\w.]+)/m.exec(String(p.spec.rego))?.[1];
      const old = p.status ?? {};
      const next = {
        ...old,
        observedGeneration: p.metadata.generation,
        ...(pkg ? { package: `data.${pkg}` } : {}),
        errors: errs ?? [],
        conditions: setCondition(old.conditions, {
          type: 'Ready',
          status: errs ? 'False' : 'True',
          reason: errs ? 'CompileError' : 'Loaded',
          message: errs ? errs.join('; ') : `loaded into the policy engine as data.${pkg ?? '?'}`,
          observedGeneration: p.metadata.generation,
        }),
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



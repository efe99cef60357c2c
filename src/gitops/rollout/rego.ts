import type { RolloutMetric } from '../../api/kinds/index.js';

type PolicyModule = typeof import('../../policy/index.js');
type Prepared = ReturnType<InstanceType<PolicyModule['PolicyEngine']>['prepare']>;

/**
 * RegoConditions evaluates a Rollout's rego metrics with Skiff's own engine: each (policy, query) is
 * compiled once and kept while Rollouts name it; every evaluation has a deadline, and the engine has
 * no network (http.send is allowed nowhere), so a condition only sees the measurements it is given.
 */
export class RegoConditions {
  private policy?: Promise<PolicyModule>;
  private readonly prepared = new Map<string, { query: Prepared; usedAt: number }>();

  constructor(private readonly timeoutMs: number, private readonly maxCached = 64) {}

  /** evaluate resolves whether the query is true for the input; a parse, compile or evaluation error rejects. */
  async evaluate(metric: Extract<RolloutMetric, { kind: 'rego' }>, input: unknown): Promise<boolean> {
    // Imported when first needed: most Rollouts have no rego condition.
    const mod = await (this.policy ??= import('../../policy/index.js'));
    const key = `${metric.query}\u0000${metric.policy}`;
    let entry = this.prepared.get(key);
    if (!entry) {
      const engine = new mod.PolicyEngine();
      engine.addModule(`rollout-${metric.name}.rego`, metric.policy);
      entry = { query: engine.prepare(metric.query, { timeoutMs: this.timeoutMs }), usedAt: 0 };
      this.prepared.set(key, entry);
      if (this.prepared.size > this.maxCached) this.evictOldest();
    }
    entry.usedAt = performance.now();
    const rows = entry.query.eval({ input });
    const v = rows.length === 1 && rows[0]!.expressions.length === 1 ? mod.toJSON(rows[0]!.expressions[0]!.value) : undefined;
    return v === true;
  }

  private evictOldest(): void {
    let oldest: string | undefined;
    let at = Infinity;
    for (const [k, v] of this.prepared) if (v.usedAt < at) [oldest, at] = [k, v.usedAt];
    if (oldest !== undefined) this.prepared.delete(oldest);
  }
}

import type { PolicyEngine } from '../policy/index.js';
import type { UpstreamGuard } from '../security/index.js';

type PolicyModule = typeof import('../policy/index.js');

/**
 * PolicyUnit is what activates or fails as a whole in the platform's one policy engine: a Policy
 * (one module) or a PolicyBundle revision (its modules and data). A compile error blamed on any of
 * a unit's files leaves the whole unit out, so a bundle never runs with part of its files.
 */
export interface PolicyUnit {
  /** `Policy NAMESPACE/NAME` or `PolicyBundle NAME`: the object whose status reports on it */
  key: string;
  modules: Array<{ file: string; text: string; regoVersion: 0 | 1 }>;
  data?: Record<string, unknown>;
}

/** CompiledSet is an engine built from units, with the problems of the units it left out. */
export interface CompiledSet {
  engine: PolicyEngine;
  /** unit key → why it was left out (file:line messages) */
  problems: Map<string, string[]>;
  /** errors nothing could be blamed on: the set does not compile and nothing was built */
  fatal?: string[];
}

/** mergeData deep-merges the units' base documents (bundles own disjoint roots, so nothing overlaps in practice). */
function mergeData(units: PolicyUnit[]): Record<string, unknown> {
  const out = Object.create(null) as Record<string, unknown>;
  const into = (t: Record<string, unknown>, s: Record<string, unknown>) => {
    for (const [k, v] of Object.entries(s)) {
      const prev = t[k];
      if (prev && typeof prev === 'object' && !Array.isArray(prev) && v && typeof v === 'object' && !Array.isArray(v)) into(prev as Record<string, unknown>, v as Record<string, unknown>);
      else t[k] = v;
    }
  };
  for (const u of units) if (u.data) into(out, u.data);
  return out;
}

/**
 * compileUnits builds one engine from units. Units whose modules do not parse, or that a compile error
 * blames, are left out and listed in `problems`; the rest compile together.
 */
export function compileUnits(mod: PolicyModule, units: PolicyUnit[], upstreams?: UpstreamGuard): CompiledSet {
  const { PolicyEngine, RegoError, RegoErrors } = mod;
  const messages = (err: unknown): string[] => (err instanceof RegoErrors ? err.errors.map((e) => e.message) : [(err as Error).message]);
  // http.send reaches only what the operator's upstream allow-list allows (off without one)
  const engine = new PolicyEngine(upstreams ? { upstreams } : {});
  const problems = new Map<string, string[]>();
  const unitOf = new Map<string, PolicyUnit>();
  const kept: PolicyUnit[] = [];
  for (const u of units) {
    const errs: string[] = [];
    for (const m of u.modules) {
      try {
        engine.addModule(m.file, m.text, { regoVersion: m.regoVersion });
        unitOf.set(m.file, u);
      } catch (err) {
        errs.push(...messages(err));
      }
    }
    if (errs.length) {
      for (const m of u.modules) engine.removeModule(m.file);
      problems.set(u.key, errs);
    } else kept.push(u);
  }
  let live = kept;
  engine.setData(mergeData(live));
  for (let round = 0; round <= units.length; round++) {
    try {
      engine.compile();
      return { engine, problems };
    } catch (err) {
      const errs = err instanceof RegoErrors ? err.errors : err instanceof RegoError ? [err] : [];
      const blamed = new Set(errs.map((e) => (e.loc?.file ? unitOf.get(e.loc.file) : undefined)).filter((u): u is PolicyUnit => !!u && live.includes(u)));
      if (!blamed.size) return { engine, problems, fatal: messages(err) };
      for (const u of blamed) {
        const own = new Set(u.modules.map((m) => m.file));
        problems.set(u.key, [...(problems.get(u.key) ?? []), ...errs.filter((e) => e.loc && own.has(e.loc.file)).map((e) => e.message)]);
        for (const m of u.modules) engine.removeModule(m.file);
      }
      live = live.filter((u) => !blamed.has(u));
      engine.setData(mergeData(live));
    }
  }
  return { engine, problems, fatal: ['the policies did not settle into a set that compiles'] };
}

/**
 * How a Rollout rewrites a Route's rules (`spec.http`), from the rules as they were before the rollout
 * began (kept in the Rollout's status, so they can be restored exactly).
 */

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- Route rules as stored, checked by the Route's own validation
type Rule = Record<string, any>;

/** usesFunction says whether any rule sends traffic to the Function (its weighted destinations; mirrors do not count). */
export function usesFunction(http: Rule[], fn: string): boolean {
  return http.some((r) => Array.isArray(r.route) && r.route.some((d: Rule) => isFunctionDest(d, fn)));
}

/**
 * splitTraffic gives the canary `weight` percent of each share the stable Function had: every
 * destination `{function: STABLE}` becomes the stable one at (100 - weight)% of its weight and the
 * canary at weight%. The other destinations of a rule are scaled by a hundred alongside, so their
 * shares stay as they were. Weight 0 is the original rules themselves.
 */
export function splitTraffic(http: Rule[], stable: string, canary: string, weight: number): Rule[] {
  if (weight <= 0) return structuredClone(http);
  return http.map((rule) => {
    if (!Array.isArray(rule.route) || !rule.route.some((d: Rule) => isFunctionDest(d, stable))) return structuredClone(rule);
    // Without any weight every destination has an equal share, as the gateway reads it.
    const unweighted = rule.route.every((d: Rule) => d.weight === undefined);
    const route: Rule[] = [];
    for (const d of rule.route as Rule[]) {
      const w = unweighted ? 1 : (d.weight ?? 0);
      if (!isFunctionDest(d, stable)) {
        route.push({ ...structuredClone(d), weight: w * 100 });
        continue;
      }
      route.push({ ...structuredClone(d), weight: w * (100 - weight) });
      route.push({ destination: { function: canary }, weight: w * weight });
    }
    return { ...structuredClone(rule), route };
  });
}

/** previewTraffic points every destination `{function: STABLE}` at the canary (blue-green's preview Route). */
export function previewTraffic(http: Rule[], stable: string, canary: string): Rule[] {
  return http.map((rule) => {
    if (!Array.isArray(rule.route)) return structuredClone(rule);
    return { ...structuredClone(rule), route: (rule.route as Rule[]).map((d) => (isFunctionDest(d, stable) ? { ...structuredClone(d), destination: { function: canary } } : structuredClone(d))) };
  });
}

function isFunctionDest(d: Rule, fn: string): boolean {
  return d?.destination?.function === fn && d.destination.service === undefined;
}

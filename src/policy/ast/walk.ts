/**
 * walkNodes calls `visit` for every object node under `root`, descending into arrays and into every
 * property except the `skip` keys (locations, back-references to the module, ...). The compiler's
 * checks use it for the whole-tree questions ("which variables does this mention?"). Each node is
 * visited once: a compiled tree may carry caches that point back into it.
 */
export function walkNodes(root: unknown, skip: ReadonlySet<string>, visit: (node: Record<string, unknown>) => void): void {
  const seen = new WeakSet<object>();
  const walk = (x: unknown): void => {
    if (!x || typeof x !== 'object' || seen.has(x)) return;
    seen.add(x);
    if (Array.isArray(x)) {
      for (const y of x) walk(y);
      return;
    }
    const o = x as Record<string, unknown>;
    visit(o);
    for (const k of Object.keys(o)) if (!skip.has(k)) walk(o[k]);
  };
  walk(root);
}

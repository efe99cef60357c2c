/**
 * walkNodes calls `visit` for every object node under `root`, descending into arrays and into every
 * property except the `skip` keys (locations, back-references to the module, ...). The compiler's
 * checks use it for the whole-tree questions ("which variables does this mention?").
 */
export function walkNodes(root: unknown, skip: ReadonlySet<string>, visit: (node: Record<string, unknown>) => void): void {
  if (!root || typeof root !== 'object') return;
  if (Array.isArray(root)) {
    for (const x of root) walkNodes(x, skip, visit);
    return;
  }
  const o = root as Record<string, unknown>;
  visit(o);
  for (const k of Object.keys(o)) if (!skip.has(k)) walkNodes(o[k], skip, visit);
}

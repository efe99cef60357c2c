/** applyMergePatch applies an RFC 7386 JSON merge patch: objects merge, null deletes, anything else replaces. */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const base: Record<string, unknown> = target !== null && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    if (v === null) delete base[k];
    // A `__proto__` key from JSON is data: plain assignment would replace the object's prototype instead.
    else Object.defineProperty(base, k, { value: applyMergePatch(Object.hasOwn(base, k) ? base[k] : undefined, v), writable: true, enumerable: true, configurable: true });
  }
  return base;
}

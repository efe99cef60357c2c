import type { BuiltinContext } from './types.js';

/** How many compiled patterns (regular expressions, globs, schemas) one engine keeps. */
const MAX_PATTERNS = 1000;

/**
 * PatternCache keeps compiled patterns for one engine, bounded: patterns can come from input, so an
 * unbounded cache would grow with every request. The oldest entry goes first (a hit does not reorder:
 * that would cost every hot evaluation a map write).
 */
export class PatternCache {
  private readonly map = new Map<string, unknown>();
  constructor(private readonly max = MAX_PATTERNS) {}

  get<T>(key: string): T | undefined {
    return this.map.get(key) as T | undefined;
  }

  set(key: string, value: unknown): void {
    if (this.map.size >= this.max) this.map.delete(this.map.keys().next().value!);
    this.map.set(key, value);
  }

  get size(): number {
    return this.map.size;
  }
}

/** patternCache is the engine's cache (made on first use, kept in the engine's shared memo). */
export function patternCache(ctx: BuiltinContext): PatternCache {
  let c = ctx.shared.get('patterns') as PatternCache | undefined;
  if (!c) ctx.shared.set('patterns', (c = new PatternCache()));
  return c;
}

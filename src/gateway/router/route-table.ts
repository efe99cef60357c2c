import type { CompiledMatch, CompiledRule, MatchInput } from './compile-route.js';

/** TableEntry is a rule plus whatever the gateway attached to it (its composed filter chain). */
export interface TableEntry<T> {
  rule: CompiledRule;
  data: T;
}

/** RouteHit is the rule that matched and which of its match entries did (for prefix rewrites). */
export interface RouteHit<T> {
  entry: TableEntry<T>;
  match?: CompiledMatch;
}

/**
 * RouteTable finds the rule for a request: hosts are tried from the most specific (exact, then the
 * longest `*.suffix`, then `*`), and within a host the rules in order (routes by creation order,
 * then namespace/name; rules in their declared order). The first match wins.
 */
export class RouteTable<T> {
  private readonly exact = new Map<string, TableEntry<T>[]>();
  private readonly wildcard: Array<{ suffix: string; entries: TableEntry<T>[] }> = [];
  private readonly any: TableEntry<T>[] = [];
  readonly size: number;

  constructor(groups: Array<{ hosts: string[]; entries: TableEntry<T>[] }>) {
    const wild = new Map<string, TableEntry<T>[]>();
    let size = 0;
    for (const g of groups) {
      size += g.entries.length;
      for (const host of g.hosts) {
        if (host === '*') this.any.push(...g.entries);
        else if (host.startsWith('*.')) pushTo(wild, host.slice(1), g.entries);
        else pushTo(this.exact, host, g.entries);
      }
    }
    for (const [suffix, entries] of wild) this.wildcard.push({ suffix, entries });
    this.wildcard.sort((a, b) => b.suffix.length - a.suffix.length);
    this.size = size;
  }

  /** lookup returns the first rule that matches, or undefined (the gateway answers 404). */
  lookup(input: MatchInput): RouteHit<T> | undefined {
    const exact = this.exact.get(input.host);
    if (exact) {
      const hit = first(exact, input);
      if (hit) return hit;
    }
    for (const w of this.wildcard) {
      if (input.host.endsWith(w.suffix)) {
        const hit = first(w.entries, input);
        if (hit) return hit;
      }
    }
    return first(this.any, input);
  }
}

function pushTo<T>(m: Map<string, TableEntry<T>[]>, key: string, entries: TableEntry<T>[]): void {
  const cur = m.get(key);
  if (cur) cur.push(...entries);
  else m.set(key, [...entries]);
}

function first<T>(entries: TableEntry<T>[], input: MatchInput): RouteHit<T> | undefined {
  for (const entry of entries) {
    const matches = entry.rule.matches;
    if (matches.length === 0) return { entry };
    for (const m of matches) if (m.test(input)) return { entry, match: m };
  }
  return undefined;
}

import type { KindDefinition } from './types.js';

/** KindRegistry resolves any of a kind's names (Kind, plural, singular, short names) to its definition. */
export class KindRegistry {
  private readonly byName = new Map<string, KindDefinition>();
  private readonly byPlural = new Map<string, KindDefinition>();
  private readonly defs: KindDefinition[] = [];

  constructor(defs: KindDefinition[] = []) {
    for (const d of defs) this.register(d);
  }

  register(def: KindDefinition): void {
    if (this.byPlural.has(def.plural)) throw new Error(`kind ${def.kind} is registered twice`);
    this.defs.push(def);
    this.byPlural.set(def.plural, def);
    for (const n of [def.kind, def.plural, def.singular, ...(def.shortNames ?? [])]) this.byName.set(n.toLowerCase(), def);
  }

  /** lookup accepts Function, functions, function, fn (any case). */
  lookup(name: string): KindDefinition | undefined {
    return this.byName.get(name.toLowerCase());
  }

  byPluralName(plural: string): KindDefinition | undefined {
    return this.byPlural.get(plural);
  }

  all(): readonly KindDefinition[] {
    return this.defs;
  }
}

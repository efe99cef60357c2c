import { apiVersionOf, groupOf, type KindDefinition } from './types.js';

/**
 * KindRegistry resolves a kind's names (Kind, plural, singular, short names) to its definition.
 * Kinds may be registered and unregistered while the server runs (a ConstraintTemplate creates a
 * constraint kind); the API serves whatever is registered at the moment of each request.
 */
export class KindRegistry {
  private readonly byName = new Map<string, KindDefinition[]>();
  private readonly byGroupPlural = new Map<string, KindDefinition>();

  constructor(defs: KindDefinition[] = []) {
    for (const d of defs) this.register(d);
  }

  register(def: KindDefinition): void {
    const key = `${groupOf(def)}/${def.plural}`;
    if (this.byGroupPlural.has(key)) throw new Error(`kind ${def.kind} (${key}) is registered twice`);
    this.byGroupPlural.set(key, def);
    for (const n of names(def)) {
      const list = this.byName.get(n) ?? [];
      list.push(def);
      this.byName.set(n, list);
    }
  }

  /** unregister removes a kind (its stored objects stay in the store until deleted or re-registered). */
  unregister(group: string, plural: string): KindDefinition | undefined {
    const key = `${group}/${plural}`;
    const def = this.byGroupPlural.get(key);
    if (!def) return undefined;
    this.byGroupPlural.delete(key);
    for (const n of names(def)) {
      const list = (this.byName.get(n) ?? []).filter((d) => d !== def);
      if (list.length) this.byName.set(n, list);
      else this.byName.delete(n);
    }
    return def;
  }

  /** lookup accepts Function, functions, function, fn (any case); Skiff's own group wins a clash. */
  lookup(name: string): KindDefinition | undefined {
    const list = this.byName.get(name.toLowerCase());
    if (!list?.length) return undefined;
    return list.find((d) => groupOf(d) === 'skiff.dev') ?? list[0];
  }

  /** byApiVersionKind finds the kind an object declares with apiVersion and kind. */
  byApiVersionKind(apiVersion: string, kind: string): KindDefinition | undefined {
    return (this.byName.get(kind.toLowerCase()) ?? []).find((d) => d.kind === kind && apiVersionOf(d) === apiVersion);
  }

  /** byPluralName finds a kind by its plural within a group (Skiff's own by default). */
  byPluralName(plural: string, group = 'skiff.dev'): KindDefinition | undefined {
    return this.byGroupPlural.get(`${group}/${plural}`);
  }

  all(): KindDefinition[] {
    return [...this.byGroupPlural.values()];
  }

  /** groups lists every API group/version with at least one kind. */
  groupVersions(): Array<{ group: string; version: string }> {
    const seen = new Map<string, { group: string; version: string }>();
    for (const d of this.byGroupPlural.values()) seen.set(apiVersionOf(d), { group: groupOf(d), version: d.version ?? 'v1' });
    return [...seen.values()];
  }
}

function names(def: KindDefinition): string[] {
  return [...new Set([def.kind, def.plural, def.singular, ...(def.shortNames ?? [])].map((n) => n.toLowerCase()))];
}

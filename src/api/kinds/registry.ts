import { CORE_GROUP, DEFAULT_GROUP, groupOf, groupVersionString, type KindDefinition, versionsOf } from './types.js';

/**
 * KindRegistry resolves a kind's names (Kind, plural, singular, short names) to its definition.
 * Kinds may be registered and unregistered while the server runs (a ConstraintTemplate creates a
 * constraint kind); the API serves whatever is registered at the moment of each request. A kind's
 * `legacyApiVersions` are aliases: the kind is found under them too, but listed under its own only.
 */
export class KindRegistry {
  private readonly byName = new Map<string, KindDefinition[]>();
  private readonly byGroupPlural = new Map<string, KindDefinition>();
  /** Each legacy alias: a group/version/plural that reaches a kind now served elsewhere. */
  private aliases: LegacyAlias[] = [];

  constructor(defs: KindDefinition[] = []) {
    for (const d of defs) this.register(d);
  }

  register(def: KindDefinition): void {
    const key = `${groupOf(def)}/${def.plural}`;
    if (this.byGroupPlural.has(key)) throw new Error(`kind ${def.kind} (${key}) is registered twice`);
    if (this.aliases.some((a) => a.group === groupOf(def) && a.plural === def.plural)) throw new Error(`kind ${def.kind} (${key}) clashes with a legacy alias`);
    const own = legacyAliases(def);
    for (const a of own) if (this.byGroupPlural.has(`${a.group}/${a.plural}`) || this.aliases.some((b) => b.group === a.group && b.plural === a.plural)) throw new Error(`kind ${def.kind}: the legacy alias ${a.group}/${a.plural} is taken`);
    this.byGroupPlural.set(key, def);
    this.aliases.push(...own);
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
    this.aliases = this.aliases.filter((a) => a.def !== def);
    for (const n of names(def)) {
      const list = (this.byName.get(n) ?? []).filter((d) => d !== def);
      if (list.length) this.byName.set(n, list);
      else this.byName.delete(n);
    }
    return def;
  }

  /** lookup accepts Function, functions, function, fn (any case); Skiff's own and the core group win a clash. */
  lookup(name: string): KindDefinition | undefined {
    const list = this.byName.get(name.toLowerCase());
    if (!list?.length) return undefined;
    return list.find((d) => groupOf(d) === DEFAULT_GROUP || groupOf(d) === CORE_GROUP) ?? list[0];
  }

  /** byApiVersionKind finds the kind an object declares with apiVersion and kind (any served version or legacy alias). */
  byApiVersionKind(apiVersion: string, kind: string): KindDefinition | undefined {
    return (this.byName.get(kind.toLowerCase()) ?? []).find((d) => d.kind === kind && acceptsApiVersion(d, apiVersion));
  }

  /** byPluralName finds a kind by its plural within a group (Skiff's own by default), legacy aliases included. */
  byPluralName(plural: string, group = DEFAULT_GROUP): KindDefinition | undefined {
    const own = this.byGroupPlural.get(`${group}/${plural}`);
    if (own) return own;
    return this.aliases.find((a) => a.group === group && a.plural === plural)?.def;
  }

  all(): KindDefinition[] {
    return [...this.byGroupPlural.values()];
  }

  /** inGroupVersion lists the kinds served in a group/version, at their storage version or another (discovery: legacy aliases left out). */
  inGroupVersion(group: string, version: string): KindDefinition[] {
    return this.all().filter((k) => groupOf(k) === group && versionsOf(k).includes(version));
  }

  /** servedAt lists every kind a request to a group/version may name: its own kinds, then legacy aliases. */
  servedAt(group: string, version: string): KindDefinition[] {
    const aliased = this.aliases.filter((a) => a.group === group && a.version === version).map((a) => a.def);
    return [...this.inGroupVersion(group, version), ...aliased];
  }

  /** serves tells whether requests to a group/version reach any kind (its own or a legacy alias). */
  serves(group: string, version: string): boolean {
    return this.servedAt(group, version).length > 0;
  }

  /** groupVersions lists every API group/version with at least one kind served in it (legacy aliases left out). */
  groupVersions(): Array<{ group: string; version: string }> {
    const seen = new Map<string, { group: string; version: string }>();
    for (const d of this.byGroupPlural.values()) for (const version of versionsOf(d)) seen.set(groupVersionString(groupOf(d), version), { group: groupOf(d), version });
    return [...seen.values()];
  }
}

/** acceptsApiVersion tells whether a manifest's apiVersion names this kind: a served version or a legacy alias. */
export function acceptsApiVersion(def: KindDefinition, apiVersion: string): boolean {
  return versionsOf(def).some((v) => groupVersionString(groupOf(def), v) === apiVersion) || (def.legacyApiVersions ?? []).includes(apiVersion);
}

function names(def: KindDefinition): string[] {
  return [...new Set([def.kind, def.plural, def.singular, ...(def.shortNames ?? [])].map((n) => n.toLowerCase()))];
}

interface LegacyAlias {
  group: string;
  version: string;
  plural: string;
  def: KindDefinition;
}

function legacyAliases(def: KindDefinition): LegacyAlias[] {
  return (def.legacyApiVersions ?? []).map((gv) => {
    const i = gv.indexOf('/');
    return { group: i < 0 ? CORE_GROUP : gv.slice(0, i), version: i < 0 ? gv : gv.slice(i + 1), plural: def.plural, def };
  });
}

import { type CompiledSelector, compileSelector, type K8sLabelSelector,selectorProblems } from './selector.js';
import { isNamespaceObject, type K8sObject } from './types.js';

/** MatchSpec is a constraint's `spec.match` (Gatekeeper's match criteria). */
export interface MatchSpec {
  kinds?: Array<{ apiGroups?: string[]; kinds?: string[] }>;
  scope?: string;
  namespaces?: string[];
  excludedNamespaces?: string[];
  labelSelector?: K8sLabelSelector;
  namespaceSelector?: K8sLabelSelector;
  name?: string;
  source?: string;
}

/**
 * MatchTarget is what a constraint is matched against: the object and/or the old object (a review
 * matches when either does), and the Namespace object of their namespace when known.
 */
export interface MatchTarget {
  object?: K8sObject | null;
  oldObject?: K8sObject | null;
  /** the namespace named by the review (AdmissionRequest.namespace) */
  namespace?: string;
  /** the Namespace object, when the caller knows it (store, inventory, sideloaded) */
  namespaceObject?: K8sObject;
}

/** MatchOutcome is true/false, or an error when the match cannot be decided (namespaceSelector without the Namespace). */
export type MatchOutcome = { matched: boolean; error?: string };

// Shared outcomes: callers read them, never change them.
const MATCH: MatchOutcome = Object.freeze({ matched: true });
const NO_MATCH: MatchOutcome = Object.freeze({ matched: false });

/** wildcardMatches implements Gatekeeper's name globs: `kube-*` (prefix), `*-system` (suffix), `*mid*` (contains). */
export function wildcardMatches(pattern: string, candidate: string): boolean {
  return compileWildcard(pattern)(candidate);
}

/** compileWildcard turns a name glob into a predicate, so matching a review slices no strings. */
function compileWildcard(pattern: string): (candidate: string) => boolean {
  const lead = pattern.startsWith('*');
  const trail = pattern.length > 1 && pattern.endsWith('*');
  if (lead && trail) {
    const mid = pattern.slice(1, -1);
    return (c) => c.includes(mid);
  }
  if (lead) {
    const suffix = pattern.slice(1);
    return (c) => c.endsWith(suffix);
  }
  if (trail) {
    const prefix = pattern.slice(0, -1);
    return (c) => c.startsWith(prefix);
  }
  return (c) => c === pattern;
}

/** anyMatches tells whether one of the compiled globs accepts the name. */
function anyMatches(globs: Array<(c: string) => boolean>, name: string): boolean {
  for (const g of globs) if (g(name)) return true;
  return false;
}

/** matchProblems validates `spec.match` the way Gatekeeper's match schema and ValidateConstraint do. */
export function matchProblems(match: unknown): string[] {
  if (match === undefined || match === null) return [];
  if (typeof match !== 'object' || Array.isArray(match)) return ['spec.match must be an object'];
  const m = match as Record<string, unknown>;
  const out: string[] = [];
  const strList = (k: string) => {
    const v = m[k];
    if (v !== undefined && !(Array.isArray(v) && v.every((x) => typeof x === 'string'))) out.push(`spec.match.${k} must be a list of strings`);
  };
  strList('namespaces');
  strList('excludedNamespaces');
  if (m.kinds !== undefined) {
    if (!Array.isArray(m.kinds)) out.push('spec.match.kinds must be a list of {apiGroups, kinds}');
    else
      m.kinds.forEach((k: unknown, i) => {
        const kk = k as Record<string, unknown>;
        for (const f of ['apiGroups', 'kinds']) {
          const v = kk?.[f];
          if (v !== undefined && !(Array.isArray(v) && v.every((x) => typeof x === 'string'))) out.push(`spec.match.kinds[${i}].${f} must be a list of strings`);
        }
      });
  }
  if (m.name !== undefined && typeof m.name !== 'string') out.push('spec.match.name must be a string');
  if (m.scope !== undefined && typeof m.scope !== 'string') out.push('spec.match.scope must be a string ("*", "Cluster" or "Namespaced")');
  out.push(...selectorProblems(m.labelSelector, 'spec.match.labelSelector'), ...selectorProblems(m.namespaceSelector, 'spec.match.namespaceSelector'));
  return out;
}

/**
 * Matcher decides whether a constraint applies to a review, with Gatekeeper's semantics: every
 * criterion set must hold (kinds, scope, namespaces, excludedNamespaces, labelSelector,
 * namespaceSelector, name), and a review matches when its object or its old object does.
 * Selectors are compiled once, when the constraint is added, not per review.
 */
export class Matcher {
  private readonly labels?: CompiledSelector;
  private readonly nsLabels?: CompiledSelector;
  private readonly kindSets?: Array<{ groups?: Set<string>; kinds?: Set<string> }>;
  private readonly namespaces?: Array<(c: string) => boolean>;
  private readonly excluded?: Array<(c: string) => boolean>;
  private readonly name?: (c: string) => boolean;

  constructor(readonly spec: MatchSpec = {}) {
    if (spec.namespaces?.length) this.namespaces = spec.namespaces.map(compileWildcard);
    if (spec.excludedNamespaces?.length) this.excluded = spec.excludedNamespaces.map(compileWildcard);
    if (spec.name) this.name = compileWildcard(spec.name);
    if (spec.labelSelector) this.labels = compileSelector(spec.labelSelector);
    if (spec.namespaceSelector) this.nsLabels = compileSelector(spec.namespaceSelector);
    if (spec.kinds?.length)
      this.kindSets = spec.kinds.map((k) => ({
        groups: !k.apiGroups?.length || k.apiGroups.includes('*') ? undefined : new Set(k.apiGroups),
        kinds: !k.kinds?.length || k.kinds.includes('*') ? undefined : new Set(k.kinds),
      }));
  }

  /** usesNamespaceSelector tells callers they must supply the Namespace object. */
  get usesNamespaceSelector(): boolean {
    return this.nsLabels !== undefined;
  }

  matches(t: MatchTarget): MatchOutcome {
    // Every constraint is matched on every review: no arrays or outcome objects unless there is an error.
    let first: MatchOutcome | undefined;
    if (t.object) {
      first = this.matchOne(t.object, t);
      if (first.matched) return first;
    }
    if (t.oldObject) {
      const r = this.matchOne(t.oldObject, t);
      if (r.matched) return r;
      // the object's error, when it has one, is the one reported
      if (!first?.error) first = r;
    }
    return first ?? NO_MATCH;
  }

  private matchOne(obj: K8sObject, t: MatchTarget): MatchOutcome {
    const s = this.spec;
    if (this.kindSets) {
      const av = obj.apiVersion ?? '';
      const slash = av.indexOf('/');
      const group = slash < 0 ? '' : av.slice(0, slash);
      const kind = String(obj.kind ?? '');
      // Namespace and Event were Skiff's own (skiff.dev) before they moved to the core group: constraints
      // written for skiff.dev still match them.
      const legacy = group === '' && (kind === 'Namespace' || kind === 'Event') ? 'skiff.dev' : undefined;
      let kindMatched = false;
      for (const k of this.kindSets) if ((!k.kinds || k.kinds.has(kind)) && (!k.groups || k.groups.has(group) || (legacy !== undefined && k.groups.has(legacy)))) kindMatched = true;
      if (!kindMatched) return NO_MATCH;
    }
    const isNs = isNamespaceObject(obj);
    const objNs = obj.metadata?.namespace || t.namespace || t.namespaceObject?.metadata?.name || '';
    const hasNs = objNs !== '';
    if (s.scope === 'Cluster' && !(isNs || !hasNs)) return NO_MATCH;
    if (s.scope === 'Namespaced' && !(!isNs && hasNs)) return NO_MATCH;
    const nsName = isNs ? String(obj.metadata?.name ?? '') : objNs;
    if (this.namespaces && (isNs || hasNs) && !anyMatches(this.namespaces, nsName)) return NO_MATCH;
    if (this.excluded && (isNs || hasNs) && anyMatches(this.excluded, nsName)) return NO_MATCH;
    if (this.labels && !this.labels(obj.metadata?.labels)) return NO_MATCH;
    if (this.nsLabels) {
      if (isNs) {
        if (!this.nsLabels(obj.metadata?.labels)) return NO_MATCH;
      } else if (hasNs) {
        if (!t.namespaceObject) return { matched: false, error: `namespace "${objNs}" is not known, so spec.match.namespaceSelector cannot be evaluated (sync Namespaces into the inventory)` };
        if (!this.nsLabels(t.namespaceObject.metadata?.labels)) return NO_MATCH;
      }
    }
    if (this.name && !this.name(String(obj.metadata?.name ?? ''))) return NO_MATCH;
    return MATCH;
  }
}

import type { FieldError, ResourceObject } from '../../api/kinds/types.js';
import { FILTERS } from '../filters/registry.js';

import { compileRegex, compileRewrite, compileStringMatch, invalid, isObj, percentageField, type RegexRewrite, type StringMatcher } from './values.js';

/** DestinationRef names what a rule sends to: a Function or a Service (optionally a version subset). */
export type DestinationRef =
  | { kind: 'function'; namespace: string; name: string }
  | { kind: 'service'; namespace: string; name: string; subset?: string; port?: number };

/** FilterDecl is one declared filter, validated, with where it was declared. */
export interface FilterDecl {
  name: string;
  config: unknown;
  field: string;
}

/** MatchInput is what a rule's match conditions look at. */
export interface MatchInput {
  method: string;
  path: string;
  host: string;
  headers: Record<string, string | string[] | undefined>;
  query(): URLSearchParams;
}

/** CompiledMatch is one `match` entry: all its conditions must hold; `prefix` feeds prefix rewrites. */
export interface CompiledMatch {
  test: (m: MatchInput) => boolean;
  prefix?: string;
}

/** WeightedDestination is one entry of a rule's `route` list with its share of traffic. */
export interface WeightedDestination {
  destination: DestinationRef;
  weight: number;
}

/** CompiledRule is one `spec.http[]` entry with its matchers and everything the dispatcher needs. */
export interface CompiledRule {
  routeKey: string;
  name: string;
  field: string;
  namespace: string;
  matches: CompiledMatch[];
  filters: FilterDecl[];
  destinations: WeightedDestination[];
  totalWeight: number;
  redirect?: { uri?: string; authority?: string; scheme?: string; port?: number; code: number };
  directResponse?: { status: number; body: string };
  rewrite?: { uri?: string; authority?: string; regex?: RegexRewrite };
  mirror?: { destination: DestinationRef; percent: number };
}

/** CompiledRoute is a whole Route object ready for the route table. */
export interface CompiledRoute {
  namespace: string;
  name: string;
  hosts: string[];
  rules: CompiledRule[];
}

const RULE_KEYS = new Set(['name', 'match', 'route', 'redirect', 'directResponse', 'rewrite', 'timeout', 'retries', 'hedge', 'fault', 'mirror', 'mirrorPercentage', 'corsPolicy', 'headers', 'filters']);
const MATCH_KEYS = new Set(['name', 'uri', 'method', 'authority', 'headers', 'withoutHeaders', 'queryParams', 'ignoreUriCase']);
const HOST = /^(\*|(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*)$/;

const headerValue = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v.join(',') : v);

function compileMatch(m: unknown, field: string, errors: FieldError[]): CompiledMatch | undefined {
  if (!isObj(m)) {
    errors.push(invalid(field, 'must be an object'));
    return undefined;
  }
  for (const k of Object.keys(m)) if (!MATCH_KEYS.has(k)) errors.push({ field: `${field}.${k}`, message: `unknown field; known: ${[...MATCH_KEYS].join(', ')}`, reason: 'FieldValueNotSupported' });
  const ignoreCase = m.ignoreUriCase === true;
  const tests: Array<(i: MatchInput) => boolean> = [];
  let prefix: string | undefined;
  if (m.uri !== undefined) {
    const t = compileStringMatch(m.uri, `${field}.uri`, errors, ignoreCase);
    if (t) tests.push((i) => t(i.path));
    if (isObj(m.uri) && typeof m.uri.prefix === 'string') prefix = m.uri.prefix;
  }
  if (m.method !== undefined) {
    const t = compileStringMatch(m.method, `${field}.method`, errors);
    if (t) tests.push((i) => t(i.method));
  }
  if (m.authority !== undefined) {
    const t = compileStringMatch(m.authority, `${field}.authority`, errors);
    if (t) tests.push((i) => t(i.host));
  }
  const mapOf = (key: 'headers' | 'withoutHeaders' | 'queryParams'): Array<[string, StringMatcher]> => {
    const v = m[key];
    if (v === undefined) return [];
    if (!isObj(v)) {
      errors.push(invalid(`${field}.${key}`, 'must map names to string matches'));
      return [];
    }
    const out: Array<[string, StringMatcher]> = [];
    for (const [name, sm] of Object.entries(v)) {
      const t = compileStringMatch(sm, `${field}.${key}.${name}`, errors);
      if (t) out.push([key === 'queryParams' ? name : name.toLowerCase(), t]);
    }
    return out;
  };
  for (const [name, t] of mapOf('headers')) tests.push((i) => {
    const v = headerValue(i.headers[name]);
    return v !== undefined && t(v);
  });
  for (const [name, t] of mapOf('withoutHeaders')) tests.push((i) => {
    const v = headerValue(i.headers[name]);
    return v === undefined || !t(v);
  });
  for (const [name, t] of mapOf('queryParams')) tests.push((i) => {
    const v = i.query().get(name);
    return v !== null && t(v);
  });
  const test =
    tests.length === 0 ? () => true
    : tests.length === 1 ? tests[0]!
    : (i: MatchInput) => {
        for (const t of tests) if (!t(i)) return false;
        return true;
      };
  return { test, prefix };
}

/** compileDestination reads `{ function }` or `{ service, subset?, port? }` in the route's namespace. */
export function compileDestination(d: unknown, field: string, namespace: string, errors: FieldError[]): DestinationRef | undefined {
  if (!isObj(d)) {
    errors.push(invalid(field, 'must be { function: NAME } or { service: NAME, subset?, port? }'));
    return undefined;
  }
  const hasFn = d.function !== undefined;
  const hasSvc = d.service !== undefined;
  if (hasFn === hasSvc) {
    errors.push(invalid(field, 'must set exactly one of function or service'));
    return undefined;
  }
  if (hasFn) {
    if (typeof d.function !== 'string' || d.function === '') return void errors.push(invalid(`${field}.function`, 'must be a Function name'));
    for (const k of Object.keys(d)) if (k !== 'function') errors.push(invalid(`${field}.${k}`, 'not allowed with a function destination'));
    return { kind: 'function', namespace, name: d.function };
  }
  if (typeof d.service !== 'string' || d.service === '') return void errors.push(invalid(`${field}.service`, 'must be a Service name'));
  if (d.subset !== undefined && typeof d.subset !== 'string') errors.push(invalid(`${field}.subset`, 'must be a version label value'));
  if (d.port !== undefined && (typeof d.port !== 'number' || !Number.isInteger(d.port) || d.port < 1 || d.port > 65535)) errors.push(invalid(`${field}.port`, 'must be a port number'));
  for (const k of Object.keys(d)) if (!['service', 'subset', 'port'].includes(k)) errors.push(invalid(`${field}.${k}`, 'unknown field; use service, subset or port'));
  return { kind: 'service', namespace, name: d.service, subset: d.subset as string | undefined, port: d.port as number | undefined };
}

function filterDecls(list: unknown, field: string, errors: FieldError[]): FilterDecl[] {
  if (list === undefined) return [];
  if (!Array.isArray(list)) {
    errors.push(invalid(field, 'must be a list of { FILTER_NAME: CONFIG } entries'));
    return [];
  }
  const out: FilterDecl[] = [];
  list.forEach((entry, i) => {
    const f = `${field}[${i}]`;
    const keys = isObj(entry) ? Object.keys(entry) : [];
    if (keys.length !== 1) return void errors.push(invalid(f, 'must have exactly one key, the filter name (e.g. { jwt: {...} })'));
    const name = keys[0]!;
    const mod = FILTERS.get(name);
    if (!mod) {
      errors.push({ field: `${f}.${name}`, message: `unknown filter '${name}'; known filters: ${[...FILTERS.keys()].sort().join(', ')}`, reason: 'FieldValueNotSupported' });
      return;
    }
    const config = (entry as Record<string, unknown>)[name];
    errors.push(...mod.validate(config, `${f}.${name}`));
    out.push({ name, config, field: `${f}.${name}` });
  });
  return out;
}

function implicit(name: string, config: unknown, field: string, errors: FieldError[]): FilterDecl[] {
  if (config === undefined) return [];
  errors.push(...FILTERS.get(name)!.validate(config, field));
  return [{ name, config, field }];
}

function compileRule(r: unknown, i: number, routeFilters: FilterDecl[], obj: ResourceObject, errors: FieldError[]): CompiledRule | undefined {
  const field = `spec.http[${i}]`;
  const ns = obj.metadata.namespace ?? 'default';
  if (!isObj(r)) {
    errors.push(invalid(field, 'must be an object'));
    return undefined;
  }
  for (const k of Object.keys(r)) if (!RULE_KEYS.has(k)) errors.push({ field: `${field}.${k}`, message: `unknown field; known: ${[...RULE_KEYS].join(', ')}`, reason: 'FieldValueNotSupported' });
  const rule: CompiledRule = {
    routeKey: `${ns}/${obj.metadata.name}`,
    name: typeof r.name === 'string' ? r.name : String(i),
    field,
    namespace: ns,
    matches: [],
    filters: [],
    destinations: [],
    totalWeight: 0,
  };
  if (r.match !== undefined) {
    if (!Array.isArray(r.match)) errors.push(invalid(`${field}.match`, 'must be a list of match conditions'));
    else r.match.forEach((m, j) => {
      const c = compileMatch(m, `${field}.match[${j}]`, errors);
      if (c) rule.matches.push(c);
    });
  }
  // CORS runs first so preflights are answered before authentication, as in Envoy's filter order.
  rule.filters = [
    ...implicit('cors', r.corsPolicy, `${field}.corsPolicy`, errors),
    ...routeFilters,
    ...filterDecls(r.filters, `${field}.filters`, errors),
    ...implicit('fault', r.fault, `${field}.fault`, errors),
    ...implicit('headers', r.headers, `${field}.headers`, errors),
    ...implicit('timeout', r.timeout, `${field}.timeout`, errors),
    ...implicit('retry', r.retries, `${field}.retries`, errors),
    ...implicit('hedge', r.hedge, `${field}.hedge`, errors),
  ];
  const terminal = ['route', 'redirect', 'directResponse'].filter((k) => r[k] !== undefined);
  if (terminal.length !== 1) errors.push(invalid(field, 'must set exactly one of route, redirect or directResponse'));
  if (r.route !== undefined) {
    if (!Array.isArray(r.route) || r.route.length === 0) errors.push(invalid(`${field}.route`, 'must be a non-empty list of { destination, weight }'));
    else {
      const unweighted = r.route.every((d) => !isObj(d) || d.weight === undefined);
      r.route.forEach((d, j) => {
        const f = `${field}.route[${j}]`;
        if (!isObj(d)) return void errors.push(invalid(f, 'must be { destination, weight }'));
        const dest = compileDestination(d.destination, `${f}.destination`, ns, errors);
        const weight = unweighted ? 1 : d.weight ?? 0;
        if (typeof weight !== 'number' || !Number.isInteger(weight) || weight < 0) errors.push(invalid(`${f}.weight`, 'must be a non-negative integer'));
        else if (dest) rule.destinations.push({ destination: dest, weight });
      });
      rule.totalWeight = rule.destinations.reduce((s, d) => s + d.weight, 0);
      if (rule.destinations.length > 0 && rule.totalWeight === 0) errors.push(invalid(`${field}.route`, 'weights must not all be zero'));
    }
  }
  if (r.redirect !== undefined) {
    const d = isObj(r.redirect) ? r.redirect : {};
    const code = d.redirectCode ?? 301;
    if (![301, 302, 303, 307, 308].includes(code as number)) errors.push(invalid(`${field}.redirect.redirectCode`, 'must be 301, 302, 303, 307 or 308'));
    for (const k of ['uri', 'authority', 'scheme'] as const) if (d[k] !== undefined && typeof d[k] !== 'string') errors.push(invalid(`${field}.redirect.${k}`, 'must be a string'));
    rule.redirect = { uri: d.uri as string | undefined, authority: d.authority as string | undefined, scheme: d.scheme as string | undefined, port: d.port as number | undefined, code: code as number };
  }
  if (r.directResponse !== undefined) {
    const d = isObj(r.directResponse) ? r.directResponse : {};
    if (typeof d.status !== 'number' || d.status < 200 || d.status > 599) errors.push(invalid(`${field}.directResponse.status`, 'must be an HTTP status'));
    const body = isObj(d.body) ? d.body.string : undefined;
    if (body !== undefined && typeof body !== 'string') errors.push(invalid(`${field}.directResponse.body.string`, 'must be a string'));
    rule.directResponse = { status: d.status as number, body: (body as string | undefined) ?? '' };
  }
  if (r.rewrite !== undefined) {
    const d = isObj(r.rewrite) ? r.rewrite : {};
    const rw: NonNullable<CompiledRule['rewrite']> = {};
    if (d.uri !== undefined) typeof d.uri === 'string' ? (rw.uri = d.uri) : errors.push(invalid(`${field}.rewrite.uri`, 'must be a string'));
    if (d.authority !== undefined) typeof d.authority === 'string' ? (rw.authority = d.authority) : errors.push(invalid(`${field}.rewrite.authority`, 'must be a string'));
    if (d.uriRegexRewrite !== undefined) {
      const x = isObj(d.uriRegexRewrite) ? d.uriRegexRewrite : {};
      const re = typeof x.match === 'string' ? compileRegex(x.match) : 'must be a string';
      if (typeof re === 'string') errors.push(invalid(`${field}.rewrite.uriRegexRewrite.match`, re));
      else if (typeof x.rewrite !== 'string') errors.push(invalid(`${field}.rewrite.uriRegexRewrite.rewrite`, 'must be a string'));
      else {
        // Istio's substitution syntax is RE2's (\1), applied to every match as Envoy's regex_rewrite.
        const compiled = compileRewrite(re, x.rewrite);
        if (typeof compiled === 'string') errors.push(invalid(`${field}.rewrite.uriRegexRewrite.rewrite`, compiled));
        else rw.regex = compiled;
      }
    }
    rule.rewrite = rw;
  }
  if (r.mirror !== undefined) {
    const dest = compileDestination(r.mirror, `${field}.mirror`, ns, errors);
    const percent = percentageField(r.mirrorPercentage, `${field}.mirrorPercentage`, errors);
    if (dest) rule.mirror = { destination: dest, percent };
  }
  return rule;
}

/**
 * compileRoute checks a Route object and compiles its matchers. It never throws: every problem is
 * returned with its field path, and `route` is only set when there were none.
 */
export function compileRoute(obj: ResourceObject): { route?: CompiledRoute; errors: FieldError[] } {
  const errors: FieldError[] = [];
  const spec = obj.spec;
  if (!isObj(spec)) return { errors: [{ field: 'spec', message: 'is required', reason: 'FieldValueRequired' }] };
  const hosts = spec.hosts ?? ['*'];
  if (!Array.isArray(hosts) || hosts.length === 0) errors.push(invalid('spec.hosts', 'must be a non-empty list of host names'));
  else hosts.forEach((h, i) => {
    if (typeof h !== 'string' || !HOST.test(h.toLowerCase())) errors.push(invalid(`spec.hosts[${i}]`, `must be "*", a host name or "*.domain", got ${JSON.stringify(h)}`));
  });
  const routeFilters = filterDecls(spec.filters, 'spec.filters', errors);
  const rules: CompiledRule[] = [];
  if (!Array.isArray(spec.http) || spec.http.length === 0) errors.push({ field: 'spec.http', message: 'must be a non-empty list of HTTP rules', reason: 'FieldValueRequired' });
  else spec.http.forEach((r: unknown, i: number) => {
    const rule = compileRule(r, i, routeFilters, obj, errors);
    if (rule) rules.push(rule);
  });
  for (const k of Object.keys(spec)) if (!['hosts', 'http', 'filters'].includes(k)) errors.push({ field: `spec.${k}`, message: 'unknown field; known: hosts, http, filters', reason: 'FieldValueNotSupported' });
  if (errors.length > 0) return { errors };
  return {
    route: { namespace: obj.metadata.namespace ?? 'default', name: obj.metadata.name, hosts: (hosts as string[]).map((h) => h.toLowerCase()), rules },
    errors,
  };
}

/**
 * routeFunctionRefs lists the names of the Functions a Route sends to, mirrors included. Destinations
 * always live in the Route's own namespace, so the names are bare.
 */
export function routeFunctionRefs(route: ResourceObject): string[] {
  const out = new Set<string>();
  const http = isObj(route.spec) && Array.isArray(route.spec.http) ? route.spec.http : [];
  for (const r of http) {
    if (!isObj(r)) continue;
    const dests = [...(Array.isArray(r.route) ? r.route.map((d) => (isObj(d) ? d.destination : undefined)) : []), r.mirror];
    for (const d of dests) if (isObj(d) && typeof d.function === 'string') out.add(d.function);
  }
  return [...out];
}

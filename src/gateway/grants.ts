import type { AdmissionHook } from '../api/admission.js';
import { invalid } from '../api/errors.js';
import type { FieldError, ResourceObject } from '../api/kinds/types.js';
import type { HostDirs, UpstreamGuard } from '../security/index.js';

import { compileRoute } from './router/compile-route.js';
import { isObj } from './router/values.js';
import { compileService, TLS_FILE_FIELDS } from './upstream/service-spec.js';

/**
 * GatewayGrants are the operator's grants that Routes and Services are held to: where their traffic
 * and server-side fetches may go (`--allow-upstream`) and which host files they may have the server
 * read (`--allow-host-dir`: JWKS files, upstream CA and client certificates).
 */
export interface GatewayGrants {
  upstreams: UpstreamGuard;
  hostDirs: HostDirs;
}

/**
 * serviceGrantProblems lists what in a Service the grants refuse without resolving anything: endpoint
 * addresses that are refused IP literals or `localhost`, and TLS files outside the allowed
 * directories. Names that resolve to a refused address are refused when the gateway connects.
 */
export function serviceGrantProblems(obj: ResourceObject, grants: GatewayGrants): FieldError[] {
  const out: FieldError[] = [];
  const { service } = compileService(obj);
  if (!service) return out;
  service.endpoints.forEach((e, i) => {
    const why = grants.upstreams.checkLiteral(stripDot(e.address), e.port);
    if (why) out.push({ field: `spec.endpoints[${i}].address`, message: upstreamMessage(why), reason: 'FieldValueForbidden' });
  });
  const tls = isObj(obj.spec?.tls) ? (obj.spec.tls as Record<string, unknown>) : {};
  for (const k of TLS_FILE_FIELDS) {
    const path = tls[k];
    if (typeof path === 'string') fileProblem(grants.hostDirs, path, `spec.tls.${k}`, out);
  }
  return out;
}

/**
 * routeGrantProblems lists what in a Route's filters the grants refuse: a JWT filter's `jwksFile`
 * outside the allowed directories, and a `jwksUri` whose host is a refused IP literal or `localhost`.
 */
export function routeGrantProblems(obj: ResourceObject, grants: GatewayGrants): FieldError[] {
  const out: FieldError[] = [];
  const { route } = compileRoute(obj);
  if (!route) return out;
  const seen = new Set<string>();
  for (const rule of route.rules) {
    for (const decl of rule.filters) {
      // Route-wide filters appear in every rule; report each declaration once.
      if (decl.name !== 'jwt' || seen.has(decl.field) || !isObj(decl.config)) continue;
      seen.add(decl.field);
      const c = decl.config as { jwksFile?: unknown; jwksUri?: unknown };
      if (typeof c.jwksFile === 'string') fileProblem(grants.hostDirs, c.jwksFile, `${decl.field}.jwksFile`, out);
      if (typeof c.jwksUri === 'string') {
        const why = uriProblem(c.jwksUri, grants.upstreams);
        if (why) out.push({ field: `${decl.field}.jwksUri`, message: why, reason: 'FieldValueForbidden' });
      }
    }
  }
  return out;
}

/**
 * gatewayGrantsHook refuses, at admission, Services and Routes that the grants refuse: 422 Invalid
 * naming each field and the flag (`--allow-upstream`, `--allow-host-dir`) that would allow it.
 */
export function gatewayGrantsHook(grants: GatewayGrants): AdmissionHook {
  return {
    name: 'gateway-grants',
    admit(req) {
      if (req.operation === 'DELETE' || !req.object) return { allowed: true };
      const problems = req.kind === 'Service' ? serviceGrantProblems(req.object, grants) : req.kind === 'Route' ? routeGrantProblems(req.object, grants) : [];
      if (problems.length) throw invalid(req.kind, req.name, problems);
      return { allowed: true };
    },
  };
}

function fileProblem(hostDirs: HostDirs, path: string, field: string, out: FieldError[]): void {
  if (hostDirs.contains(path)) return;
  const msg = hostDirs.refusal(path, field);
  out.push({ field, message: msg.startsWith(`${field}: `) ? msg.slice(field.length + 2) : msg, reason: 'FieldValueForbidden' });
}

function uriProblem(uri: string, upstreams: UpstreamGuard): string | undefined {
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    return undefined;
  }
  const port = u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
  const why = upstreams.checkLiteral(stripDot(u.hostname), port);
  return why ? upstreamMessage(why) : undefined;
}

/** The guard names the flag for targets it can allow; Skiff's own listeners cannot be allowed, and the message says so. */
function upstreamMessage(why: string): string {
  return why.includes('--allow-upstream') ? why : `${why}; --allow-upstream cannot allow it`;
}

/** A fully qualified name ("localhost.") is the same name: check it without the root dot. */
function stripDot(host: string): string {
  return host.length > 1 && host.endsWith('.') ? host.slice(0, -1) : host;
}

import type { FieldError, ResourceObject } from '../../api/kinds/types.js';
import { durationField, invalid, isObj } from '../router/values.js';

/** EndpointSpec is one HTTP upstream address of a Service. */
export interface EndpointSpec {
  address: string;
  port: number;
  version?: string;
  weight: number;
}

/** LoadBalancerSpec picks the algorithm (Istio's `trafficPolicy.loadBalancer`). */
export type LoadBalancerSpec =
  | { kind: 'round_robin' }
  | { kind: 'least_request' }
  | { kind: 'random' }
  | { kind: 'consistent_hash'; header?: string; cookie?: string };

/** ServiceSpec is a validated Service (HTTP upstreams plus their traffic policy). */
export interface ServiceSpec {
  namespace: string;
  name: string;
  endpoints: EndpointSpec[];
  tls?: { mode: 'SIMPLE' | 'MUTUAL'; servername?: string; caFile?: string };
  loadBalancer: LoadBalancerSpec;
  slowStart?: { windowMs: number; minWeightPercent: number; aggression: number };
  connectionPool: { maxConnections: number; maxPendingRequests: number; maxRequests: number; connectTimeoutMs: number; idleTimeoutMs: number };
  outlierDetection?: { consecutive5xx: number; consecutiveGatewayErrors: number; baseEjectionMs: number; maxEjectionMs: number; maxEjectionPercent: number };
  retryBudget: { percent: number; minRetryConcurrency: number };
}

const int = (v: unknown, field: string, errors: FieldError[], def: number, min = 0, max = Number.MAX_SAFE_INTEGER): number => {
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    errors.push(invalid(field, `must be an integer from ${min} to ${max}`));
    return def;
  }
  return v;
};

/**
 * compileService checks a Service object (`spec.endpoints`, `spec.trafficPolicy`, `spec.tls`) and
 * returns every problem with its field path; `service` is set only when there are none.
 */
export function compileService(obj: ResourceObject): { service?: ServiceSpec; errors: FieldError[] } {
  const errors: FieldError[] = [];
  const spec = obj.spec;
  if (!isObj(spec)) return { errors: [{ field: 'spec', message: 'is required', reason: 'FieldValueRequired' }] };
  const endpoints: EndpointSpec[] = [];
  if (!Array.isArray(spec.endpoints)) errors.push({ field: 'spec.endpoints', message: 'must be a list of { address, port, version? }', reason: 'FieldValueRequired' });
  else spec.endpoints.forEach((e: unknown, i: number) => {
    const f = `spec.endpoints[${i}]`;
    if (!isObj(e)) return void errors.push(invalid(f, 'must be { address, port, version? }'));
    if (typeof e.address !== 'string' || e.address === '' || /[\s/]/.test(e.address)) errors.push(invalid(`${f}.address`, 'must be a host name or IP address'));
    const port = int(e.port, `${f}.port`, errors, 0, 1, 65535);
    if (e.port === undefined) errors.push({ field: `${f}.port`, message: 'is required', reason: 'FieldValueRequired' });
    const labels = isObj(e.labels) ? e.labels : {};
    const version = e.version ?? labels.version;
    if (version !== undefined && typeof version !== 'string') errors.push(invalid(`${f}.version`, 'must be a string'));
    const weight = int(e.weight, `${f}.weight`, errors, 1, 1, 1000);
    endpoints.push({ address: String(e.address).replace(/^\[|\]$/g, ''), port, version: version as string | undefined, weight });
  });
  const tp = isObj(spec.trafficPolicy) ? spec.trafficPolicy : {};
  if (spec.trafficPolicy !== undefined && !isObj(spec.trafficPolicy)) errors.push(invalid('spec.trafficPolicy', 'must be an object'));

  let loadBalancer: LoadBalancerSpec = { kind: 'round_robin' };
  let slowStart: ServiceSpec['slowStart'];
  if (tp.loadBalancer !== undefined) {
    const lb = isObj(tp.loadBalancer) ? tp.loadBalancer : {};
    const f = 'spec.trafficPolicy.loadBalancer';
    if (lb.simple !== undefined && lb.consistentHash !== undefined) errors.push(invalid(f, 'set either simple or consistentHash'));
    if (lb.simple !== undefined) {
      const m: Record<string, LoadBalancerSpec> = { ROUND_ROBIN: { kind: 'round_robin' }, LEAST_REQUEST: { kind: 'least_request' }, RANDOM: { kind: 'random' } };
      const chosen = typeof lb.simple === 'string' ? m[lb.simple] : undefined;
      if (!chosen) errors.push({ field: `${f}.simple`, message: 'must be ROUND_ROBIN, LEAST_REQUEST or RANDOM', reason: 'FieldValueNotSupported' });
      else loadBalancer = chosen;
    } else if (lb.consistentHash !== undefined) {
      const ch = isObj(lb.consistentHash) ? lb.consistentHash : {};
      const cookie = isObj(ch.httpCookie) ? ch.httpCookie.name : undefined;
      if (typeof ch.httpHeaderName === 'string') loadBalancer = { kind: 'consistent_hash', header: ch.httpHeaderName.toLowerCase() };
      else if (typeof cookie === 'string') loadBalancer = { kind: 'consistent_hash', cookie };
      else errors.push(invalid(`${f}.consistentHash`, 'must set httpHeaderName or httpCookie.name'));
    }
    if (lb.warmupDuration !== undefined) {
      const windowMs = durationField(lb.warmupDuration, `${f}.warmupDuration`, errors) ?? 0;
      const w = isObj(lb.warmup) ? lb.warmup : {};
      slowStart = { windowMs, minWeightPercent: typeof w.minimumPercent === 'number' ? w.minimumPercent : 10, aggression: typeof w.aggression === 'number' && w.aggression > 0 ? w.aggression : 1 };
    }
  }

  const cp = isObj(tp.connectionPool) ? tp.connectionPool : {};
  const tcp = isObj(cp.tcp) ? cp.tcp : {};
  const http = isObj(cp.http) ? cp.http : {};
  const cf = 'spec.trafficPolicy.connectionPool';
  const connectionPool = {
    maxConnections: int(tcp.maxConnections, `${cf}.tcp.maxConnections`, errors, 1024, 1),
    connectTimeoutMs: durationField(tcp.connectTimeout, `${cf}.tcp.connectTimeout`, errors) ?? 10_000,
    maxPendingRequests: int(http.http1MaxPendingRequests, `${cf}.http.http1MaxPendingRequests`, errors, 1024, 0),
    maxRequests: int(http.maxRequests ?? http.http2MaxRequests, `${cf}.http.maxRequests`, errors, 1024, 1),
    idleTimeoutMs: durationField(http.idleTimeout, `${cf}.http.idleTimeout`, errors) ?? 60_000,
  };

  let outlierDetection: ServiceSpec['outlierDetection'];
  if (tp.outlierDetection !== undefined) {
    const od = isObj(tp.outlierDetection) ? tp.outlierDetection : {};
    const of = 'spec.trafficPolicy.outlierDetection';
    outlierDetection = {
      consecutive5xx: int(od.consecutive5xxErrors, `${of}.consecutive5xxErrors`, errors, 5),
      consecutiveGatewayErrors: int(od.consecutiveGatewayErrors, `${of}.consecutiveGatewayErrors`, errors, 0),
      baseEjectionMs: durationField(od.baseEjectionTime, `${of}.baseEjectionTime`, errors) ?? 30_000,
      maxEjectionMs: durationField(od.maxEjectionTime, `${of}.maxEjectionTime`, errors) ?? 300_000,
      maxEjectionPercent: int(od.maxEjectionPercent, `${of}.maxEjectionPercent`, errors, 10, 0, 100),
    };
  }
  const rb = isObj(tp.retryBudget) ? tp.retryBudget : {};
  const retryBudget = {
    percent: int(rb.budgetPercent, 'spec.trafficPolicy.retryBudget.budgetPercent', errors, 20, 0, 100),
    minRetryConcurrency: int(rb.minRetryConcurrency, 'spec.trafficPolicy.retryBudget.minRetryConcurrency', errors, 3, 0),
  };

  let tls: ServiceSpec['tls'];
  if (spec.tls !== undefined) {
    const t = isObj(spec.tls) ? spec.tls : {};
    if (t.mode === 'DISABLE') tls = undefined;
    else if (t.mode === 'SIMPLE' || t.mode === 'MUTUAL') tls = { mode: t.mode, servername: t.sni as string | undefined, caFile: t.caFile as string | undefined };
    else errors.push({ field: 'spec.tls.mode', message: 'must be DISABLE, SIMPLE or MUTUAL', reason: 'FieldValueNotSupported' });
  }
  for (const k of Object.keys(spec)) if (!['endpoints', 'trafficPolicy', 'tls', 'ports'].includes(k)) errors.push({ field: `spec.${k}`, message: 'unknown field; known: endpoints, trafficPolicy, tls', reason: 'FieldValueNotSupported' });
  if (errors.length > 0) return { errors };
  return {
    service: { namespace: obj.metadata.namespace ?? 'default', name: obj.metadata.name, endpoints, tls, loadBalancer, slowStart, connectionPool, outlierDetection, retryBudget },
    errors,
  };
}

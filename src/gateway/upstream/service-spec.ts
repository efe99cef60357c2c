import type { FieldError, ResourceObject } from '../../api/kinds/types.js';
import { durationField, invalid, isObj } from '../router/values.js';

/** EndpointSpec is one HTTP upstream address of a Service. */
export interface EndpointSpec {
  address: string;
  port: number;
  /** A Unix socket to connect to instead of address:port (a container replica's bridge); internal clusters only. */
  socketPath?: string;
  version?: string;
  weight: number;
}

/** LoadBalancerSpec picks the algorithm (Istio's `trafficPolicy.loadBalancer`). */
export type LoadBalancerSpec =
  | { kind: 'round_robin' }
  | { kind: 'least_request' }
  | { kind: 'random' }
  | { kind: 'consistent_hash'; header?: string; cookie?: string };

/**
 * UpstreamTlsSpec is a Service's `spec.tls`, in Istio's ClientTLSSettings terms. `SIMPLE` verifies the
 * server (with `caFile` / `caCertificates`, else the system CAs) and presents nothing; `MUTUAL`
 * presents the client certificate and key from files; `ISTIO_MUTUAL` presents this node's SPIFFE
 * identity from the internal CA and accepts only servers with one. Files are read through the
 * operator's `--allow-host-dir` grants.
 */
export interface UpstreamTlsSpec {
  mode: 'SIMPLE' | 'MUTUAL' | 'ISTIO_MUTUAL';
  servername?: string;
  caFile?: string;
  clientCertificate?: string;
  privateKey?: string;
  /**
   * With ISTIO_MUTUAL, accept only node identities of this trust domain
   * (`spiffe://TD/ns/skiff-system/node/NAME`): set by the mesh's node-to-node clusters, never by a Service.
   */
  nodesOf?: string;
}

/** TLS_FILE_FIELDS are the `spec.tls` fields that name host files, as the API spells them. */
export const TLS_FILE_FIELDS = ['caFile', 'caCertificates', 'clientCertificate', 'privateKey'] as const;

/** ServiceSpec is a validated Service (HTTP upstreams plus their traffic policy). */
export interface ServiceSpec {
  namespace: string;
  name: string;
  endpoints: EndpointSpec[];
  tls?: UpstreamTlsSpec;
  loadBalancer: LoadBalancerSpec;
  slowStart?: { windowMs: number; minWeightPercent: number; aggression: number };
  connectionPool: { maxConnections: number; maxPendingRequests: number; maxRequests: number; connectTimeoutMs: number; idleTimeoutMs: number };
  outlierDetection?: { consecutive5xx: number; consecutiveGatewayErrors: number; baseEjectionMs: number; maxEjectionMs: number; maxEjectionPercent: number };
  retryBudget: { percent: number; minRetryConcurrency: number };
  /**
   * The platform's own replicas (container and VM Functions), not an operator's upstream: their
   * connections skip the upstream grants (they are loopback or Unix sockets Skiff made itself).
   */
  internal?: boolean;
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

  const tls = compileTls(spec.tls, errors);
  for (const k of Object.keys(spec)) if (!['endpoints', 'trafficPolicy', 'tls', 'ports'].includes(k)) errors.push({ field: `spec.${k}`, message: 'unknown field; known: endpoints, trafficPolicy, tls', reason: 'FieldValueNotSupported' });
  if (errors.length > 0) return { errors };
  return {
    service: { namespace: obj.metadata.namespace ?? 'default', name: obj.metadata.name, endpoints, tls, loadBalancer, slowStart, connectionPool, outlierDetection, retryBudget },
    errors,
  };
}

const TLS_KEYS = new Set(['mode', 'sni', ...TLS_FILE_FIELDS]);

/** compileTls checks `spec.tls`; each mode takes only the fields it uses, so nothing is silently ignored. */
function compileTls(t: unknown, errors: FieldError[]): UpstreamTlsSpec | undefined {
  if (t === undefined) return undefined;
  const f = 'spec.tls';
  if (!isObj(t)) {
    errors.push(invalid(f, 'must be an object such as { mode: SIMPLE }'));
    return undefined;
  }
  for (const k of Object.keys(t)) if (!TLS_KEYS.has(k)) errors.push({ field: `${f}.${k}`, message: `unknown field; known: ${[...TLS_KEYS].join(', ')}`, reason: 'FieldValueNotSupported' });
  if (t.sni !== undefined && (typeof t.sni !== 'string' || t.sni === '')) errors.push(invalid(`${f}.sni`, 'must be a host name'));
  for (const k of TLS_FILE_FIELDS) {
    const v = t[k];
    if (v !== undefined && (typeof v !== 'string' || !v.startsWith('/'))) errors.push(invalid(`${f}.${k}`, 'must be an absolute path to a PEM file on the server'));
  }
  if (t.caFile !== undefined && t.caCertificates !== undefined) errors.push(invalid(`${f}.caCertificates`, 'set either caFile or caCertificates (the same thing, Istio\'s name), not both'));
  const set = (k: string) => t[k] !== undefined;
  const mode = t.mode;
  if (mode === 'DISABLE') {
    for (const k of ['sni', ...TLS_FILE_FIELDS]) if (set(k)) errors.push(invalid(`${f}.${k}`, 'has no effect with mode DISABLE'));
    return undefined;
  }
  if (mode === 'SIMPLE') {
    for (const k of ['clientCertificate', 'privateKey']) if (set(k)) errors.push(invalid(`${f}.${k}`, 'SIMPLE presents no client certificate; use mode MUTUAL to present one from files'));
  } else if (mode === 'MUTUAL') {
    for (const k of ['clientCertificate', 'privateKey']) {
      if (!set(k)) errors.push({ field: `${f}.${k}`, message: "is required with mode MUTUAL (a client certificate from files); to present this node's mesh identity use mode ISTIO_MUTUAL", reason: 'FieldValueRequired' });
    }
  } else if (mode === 'ISTIO_MUTUAL') {
    for (const k of TLS_FILE_FIELDS) if (set(k)) errors.push(invalid(`${f}.${k}`, "ISTIO_MUTUAL uses this node's identity and the internal CA; remove it, or use mode MUTUAL for certificates from files"));
  } else {
    errors.push({ field: `${f}.mode`, message: 'must be DISABLE, SIMPLE, MUTUAL or ISTIO_MUTUAL', reason: 'FieldValueNotSupported' });
    return undefined;
  }
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  return { mode, servername: str(t.sni), caFile: str(t.caFile ?? t.caCertificates), clientCertificate: str(t.clientCertificate), privateKey: str(t.privateKey) };
}

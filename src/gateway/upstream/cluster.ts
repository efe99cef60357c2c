import { createRequire } from 'node:module';

import type { Pool } from 'undici';

// undici costs noticeable memory once loaded (README.md); load it when the first HTTP upstream is
// used, so that a node serving only Functions stays small at idle.
let PoolCtor: typeof Pool | undefined;
function poolClass(): typeof Pool {
  PoolCtor ??= (createRequire(import.meta.url)('undici') as typeof import('undici')).Pool;
  return PoolCtor;
}
import type { ConnectionOptions } from 'node:tls';

import type { Logger } from 'pino';

import { HostDirs, UpstreamGuard } from '../../security/index.js';
import type { TrafficStats } from '../observability/metrics.js';

import { createBalancer, type LoadBalancer } from './balancers.js';
import { guardedConnector } from './connector.js';
import { Endpoint } from './endpoint.js';
import type { ServiceSpec } from './service-spec.js';
import { upstreamTls, type UpstreamTlsDeps } from './tls.js';

/** ClusterEnv is what a Cluster's connections may use: the operator's upstream grants, TLS material, a logger. */
export interface ClusterEnv {
  upstreams: UpstreamGuard;
  tls: UpstreamTlsDeps;
  logger?: Logger;
}

/**
 * ClusterObserver hears of each attempt's outcome and each ejection per endpoint, for metrics kept by
 * endpoint rather than by cluster (the mesh counts requests forwarded to each node).
 */
export interface ClusterObserver {
  /** `code` is the status answered, or `connect_error` / `reset` / `timeout` when none was. */
  attempt(e: Endpoint, code: string): void;
  ejected(e: Endpoint): void;
}

/** How often one endpoint's refused connections are logged at most. */
const REFUSAL_LOG_MS = 10_000;

interface SubsetView {
  all: Endpoint[];
  available: Endpoint[];
  stamp: number;
  balancer: LoadBalancer;
}

/** ClusterState: requests in flight, endpoints and how many are ejected, and whether the breaker refuses new requests. */
export interface ClusterState {
  active: number;
  endpoints: number;
  ejected: number;
  open: boolean;
}

/**
 * Cluster is one Service's live upstream state: a pooled keep-alive connection set per endpoint,
 * load balancing per version subset, circuit-breaker counters, outlier detection and the retry budget.
 * It survives configuration swaps that keep the Service so pools and counters are not lost.
 */
export class Cluster {
  spec: ServiceSpec;
  readonly key: string;
  endpoints: Endpoint[] = [];
  private readonly pools = new Map<string, Pool>();
  private subsets = new Map<string, SubsetView>();
  /** Bumped whenever the set of available endpoints may have changed. */
  private healthStamp = 0;
  private nextEjectionEnd = Infinity;
  active = 0;
  activeRetries = 0;
  private readonly env: ClusterEnv;
  private tls?: () => ConnectionOptions | Promise<ConnectionOptions>;
  private readonly refusalsLogged = new Map<string, number>();
  observer?: ClusterObserver;

  /** Without `env`, connections get the strictest grants: no loopback or link-local target, no host files. */
  constructor(spec: ServiceSpec, readonly stats: TrafficStats, private readonly now: () => number, env?: ClusterEnv) {
    this.spec = spec;
    this.key = `${spec.namespace}/${spec.name}`;
    this.env = env ?? { upstreams: UpstreamGuard.from([]), tls: { hostDirs: HostDirs.none() } };
    this.reconfigure(spec);
  }

  /** reconfigure applies a new spec; endpoints that stay keep their pools and state, removed ones drain and close. */
  reconfigure(spec: ServiceSpec): void {
    const poolShapeChanged = JSON.stringify([spec.connectionPool, spec.tls]) !== JSON.stringify([this.spec.connectionPool, this.spec.tls]);
    // A re-applied Service re-reads its TLS files, so replacing a certificate on disk and applying again rotates it.
    this.tls = spec.tls ? upstreamTls(spec.tls, this.env.tls) : undefined;
    this.spec = spec;
    const old = new Map(this.endpoints.map((e) => [`${e.key}|${e.version ?? ''}|${e.weight}`, e]));
    const now = this.now();
    this.endpoints = spec.endpoints.map((s) => {
      const e = new Endpoint(s, now);
      return old.get(`${e.key}|${e.version ?? ''}|${e.weight}`) ?? e;
    });
    const keep = new Set(this.endpoints.map((e) => e.key));
    for (const [key, pool] of this.pools) {
      if (!keep.has(key) || poolShapeChanged) {
        this.pools.delete(key);
        void pool.close().catch(() => undefined);
      }
    }
    this.subsets = new Map();
    this.healthStamp++;
  }

  /** pool returns the endpoint's connection pool, creating it on first use. */
  pool(e: Endpoint): Pool {
    let p = this.pools.get(e.key);
    if (!p) {
      const cp = this.spec.connectionPool;
      if (this.spec.internal) {
        // A replica of the platform's own: a socket or loopback port Skiff made, outside the operator's grants.
        const origin = e.socketPath ? 'http://localhost' : `http://${e.key}`;
        p = new (poolClass())(origin, { connections: cp.maxConnections, pipelining: 1, keepAliveTimeout: cp.idleTimeoutMs, headersTimeout: 0, bodyTimeout: 0, socketPath: e.socketPath, connect: { timeout: cp.connectTimeoutMs } });
        this.pools.set(e.key, p);
        return p;
      }
      const origin = `${this.spec.tls ? 'https' : 'http'}://${e.key}`;
      p = new (poolClass())(origin, {
        connections: cp.maxConnections,
        pipelining: 1,
        keepAliveTimeout: cp.idleTimeoutMs,
        // Deadlines come from the route (timeout, perTryTimeout) through the abort signal.
        headersTimeout: 0,
        bodyTimeout: 0,
        // Every connection (requests, retries, hedges, mirrors) is made here, through the operator's upstream grants.
        connect: guardedConnector({ upstreams: this.env.upstreams, timeoutMs: cp.connectTimeoutMs, tls: () => this.tls!(), onRefused: (err) => this.logRefusal(e, err) }),
      });
      this.pools.set(e.key, p);
    }
    return p;
  }

  /** logRefusal says why a connection was refused, once per endpoint and reason every few seconds (a route can be hammered). */
  private logRefusal(e: Endpoint, err: Error): void {
    const key = `${e.key} ${err.message}`;
    const now = Date.now();
    if ((this.refusalsLogged.get(key) ?? 0) > now) return;
    if (this.refusalsLogged.size >= 256) this.refusalsLogged.clear();
    this.refusalsLogged.set(key, now + REFUSAL_LOG_MS);
    this.env.logger?.warn({ service: this.key, endpoint: e.key, code: (err as { code?: string }).code }, `upstream connection refused: ${err.message}`);
  }

  private view(subset: string | undefined, now: number): SubsetView {
    if (now >= this.nextEjectionEnd) {
      this.healthStamp++;
      this.nextEjectionEnd = Math.min(Infinity, ...this.endpoints.filter((e) => e.ejectedUntil > now).map((e) => e.ejectedUntil));
    }
    const key = subset ?? '';
    let v = this.subsets.get(key);
    if (!v) {
      const all = subset === undefined ? this.endpoints : this.endpoints.filter((e) => e.version === subset);
      v = { all, available: all, stamp: -1, balancer: createBalancer(this.spec.loadBalancer, this.spec.slowStart) };
      this.subsets.set(key, v);
    }
    if (v.stamp !== this.healthStamp) {
      const healthy = v.all.filter((e) => !e.isEjected(now));
      // Panic mode: when every endpoint is ejected, spread over all of them rather than fail everything.
      v.available = healthy.length > 0 ? healthy : v.all;
      v.stamp = this.healthStamp;
    }
    return v;
  }

  /** pick chooses an endpoint of the subset, avoiding `avoid` (already tried) when another is available. */
  pick(subset: string | undefined, hashKey: string | undefined, avoid?: Endpoint): Endpoint | undefined {
    const now = this.now();
    const v = this.view(subset, now);
    let list = v.available;
    if (avoid && list.length > 1 && list.includes(avoid)) list = list.filter((e) => e !== avoid);
    return v.balancer.pick(list, { hashKey, now });
  }

  /** state is the cluster's live circuit-breaker and outlier state, read at scrape time. */
  state(): ClusterState {
    const cp = this.spec.connectionPool;
    const now = this.now();
    let ejected = 0;
    for (const e of this.endpoints) if (e.isEjected(now)) ejected++;
    return { active: this.active, endpoints: this.endpoints.length, ejected, open: this.active >= cp.maxRequests || this.active >= cp.maxConnections + cp.maxPendingRequests };
  }

  /** tryAcquire applies the circuit breaker: false when the request or pending-request limit is reached. */
  tryAcquire(): boolean {
    const cp = this.spec.connectionPool;
    if (this.active >= cp.maxRequests || this.active >= cp.maxConnections + cp.maxPendingRequests) {
      this.stats.overflows++;
      return false;
    }
    this.active++;
    return true;
  }

  release(): void {
    this.active--;
  }

  /** canRetry applies the retry budget: retries in flight may be at most `percent` of active requests. */
  canRetry(): boolean {
    const b = this.spec.retryBudget;
    return this.activeRetries < Math.max(b.minRetryConcurrency, (this.active * b.percent) / 100);
  }

  /** record feeds outlier detection with one attempt's result. */
  record(e: Endpoint, result: 'success' | '5xx' | 'gateway_error'): void {
    const od = this.spec.outlierDetection;
    if (!od) return;
    if (result === 'success') {
      e.consecutive5xx = 0;
      e.consecutiveGateway = 0;
      // A host that stays healthy for a base ejection time after coming back earns back one step of
      // its ejection multiplier, as Envoy does, so an old incident does not weigh forever.
      if (e.ejections > 0) {
        const now = this.now();
        if (now >= e.ejectedUntil + od.baseEjectionMs) {
          e.ejections--;
          e.ejectedUntil = now - od.baseEjectionMs;
        }
      }
      return;
    }
    e.consecutive5xx++;
    if (result === 'gateway_error') e.consecutiveGateway++;
    const trip = (od.consecutive5xx > 0 && e.consecutive5xx >= od.consecutive5xx) || (od.consecutiveGatewayErrors > 0 && e.consecutiveGateway >= od.consecutiveGatewayErrors);
    if (!trip) return;
    e.consecutive5xx = 0;
    e.consecutiveGateway = 0;
    const now = this.now();
    if (e.isEjected(now)) return;
    const ejected = this.endpoints.filter((x) => x.isEjected(now)).length;
    // Envoy always allows ejecting one endpoint, whatever the percentage says.
    if (ejected > 0 && ((ejected + 1) * 100) / this.endpoints.length > od.maxEjectionPercent) return;
    e.ejections++;
    e.ejectedUntil = now + Math.min(od.baseEjectionMs * e.ejections, Math.max(od.maxEjectionMs, od.baseEjectionMs));
    this.nextEjectionEnd = Math.min(this.nextEjectionEnd, e.ejectedUntil);
    this.stats.ejections++;
    this.healthStamp++;
    this.observer?.ejected(e);
  }

  /** close drains and closes every pool. */
  async close(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => p.close().catch(() => undefined)));
  }
}

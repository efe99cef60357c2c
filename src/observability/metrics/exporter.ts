import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP } from 'node:net';

import { collectDefaultMetrics, Registry } from 'prom-client';

import type { AdmissionStats } from '../../admission/index.js';
import type { ApiMount } from '../../api/server.js';
import type { AutoscalerStats } from '../../controllers/autoscaler/index.js';
import type { PolicyDecisionStats } from '../../controllers/policy-controller.js';
import type { Controller } from '../../controllers/runtime/index.js';
import type { InstrumentedStore } from '../../store/index.js';
import type { WorkloadStats } from '../../workloads/index.js';

import { registerAutoscaler, registerFunctions, registerWorkloads, type RuntimeSource } from './functions.js';
import { type GatewaySource, registerGateway } from './gateway.js';
import { registerAdmission, registerControllers, registerLeader, registerPolicies, registerStore } from './platform.js';
import { ReadMetric } from './read-metric.js';

/** The path metrics are served at, on the API listener and on the metrics listener. */
export const METRICS_PATH = '/metrics';

/** MetricSources are the areas' counters the exporter reads; each one left out leaves its families out. */
export interface MetricSources {
  gateway?: GatewaySource;
  runtime?: RuntimeSource;
  policies?: { decisionStats: Map<string, PolicyDecisionStats> };
  admission?: { stats: AdmissionStats };
  store?: InstrumentedStore;
  /** The controllers running now (asked at every scrape). */
  controllers?: () => Controller[];
  workloads?: { stats(): WorkloadStats[] };
  autoscaler?: { stats(): AutoscalerStats[]; peerSampleFailures?(): ReadonlyMap<string, number> };
  /** This node's part in leader election (every node reports, the leader with 1). */
  leader?: { stats(): { isLeader: boolean; transitions: number; fencedWritesRefused: number } };
  /** Process and event-loop metrics (prom-client's defaults, prefixed `skiff_`); default true. */
  process?: boolean;
}

/** What a request to the metrics listener must show, decided from the address it listens on. */
export interface MetricsListenerAuth {
  /** Checks the request's bearer token; throws (an error with `httpStatus` 401) when it is missing or wrong. */
  authenticate(req: IncomingMessage): unknown;
}

/**
 * MetricsExporter renders the platform's metrics in the Prometheus text format (0.0.4). Areas keep
 * plain counters on their own paths; every family reads them when a scrape renders, so the cost of
 * metrics is paid per scrape, not per request.
 */
export class MetricsExporter {
  readonly registry = new Registry();
  private readonly clock = { scrape: 0 };
  private server?: Server;

  constructor(sources: MetricSources) {
    if (sources.process !== false) collectDefaultMetrics({ register: this.registry, prefix: 'skiff_' });
    if (sources.gateway) registerGateway(this.registry, sources.gateway, this.clock);
    if (sources.runtime) registerFunctions(this.registry, sources.runtime, this.clock);
    if (sources.workloads) registerWorkloads(this.registry, sources.workloads, this.clock);
    if (sources.autoscaler) registerAutoscaler(this.registry, sources.autoscaler, this.clock);
    if (sources.policies) registerPolicies(this.registry, sources.policies);
    if (sources.admission) registerAdmission(this.registry, sources.admission);
    if (sources.store) registerStore(this.registry, sources.store);
    if (sources.controllers) registerControllers(this.registry, sources.controllers);
    if (sources.leader) registerLeader(this.registry, sources.leader);
  }

  /** contentType is what a scrape answers with: `text/plain; version=0.0.4; charset=utf-8`. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /**
   * render returns one scrape's exposition text; every source is read once per render. The areas'
   * families render their own text (see ReadMetric); prom-client renders its process metrics.
   */
  async render(): Promise<string> {
    this.clock.scrape++;
    const parts = await Promise.all(this.registry.getMetricsAsArray().map((m: unknown) => (m instanceof ReadMetric ? m.text() : this.registry.getSingleMetricAsString((m as { name: string }).name).then((t) => `${t}\n`))));
    return parts.join('');
  }

  /**
   * read sums the current values of a family's series whose labels include `labels` (a histogram's
   * `NAME_count` / `NAME_sum` name those series): what the autoscaler's `skiff` triggers and an HPA's
   * External metrics ask for. Undefined when no such family or series exists.
   */
  async read(name: string, labels: Record<string, string> = {}): Promise<{ value: number; type: string } | undefined> {
    const base = name.replace(/_(count|sum)$/, '');
    const metric = this.registry.getSingleMetric(name) ?? (base !== name ? this.registry.getSingleMetric(base) : undefined);
    if (!metric) return undefined;
    const family = base !== name && !this.registry.getSingleMetric(name) ? base : name;
    const got = (await metric.get()) as unknown as { type: string; values: Array<{ labels: Record<string, string | number>; value: number; metricName?: string }> };
    let value = 0;
    let found = false;
    for (const v of got.values) {
      if ((v.metricName ?? family) !== name) continue;
      if (!Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want)) continue;
      value += v.value;
      found = true;
    }
    return found ? { value, type: base !== name ? 'counter' : String(got.type) } : undefined;
  }

  /** mount serves `GET /metrics` on the API listener, behind the API's token like kube-apiserver's. */
  mount(): ApiMount {
    return {
      matches: (path) => path === METRICS_PATH,
      handle: (req, res) => this.serve(req, res),
    };
  }

  /**
   * listen starts a listener that serves only `/metrics`. On a loopback address it needs no token
   * (as kube-apiserver's and most exporters' metrics ports are scraped); on any other address it asks
   * for the API's bearer token, so that binding to a network never publishes metrics by accident.
   */
  async listen(host: string, port: number, auth: MetricsListenerAuth): Promise<{ host: string; port: number }> {
    const needsToken = !isLoopback(host);
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?', 1)[0];
      if (path !== METRICS_PATH) return text(res, 404, `only ${METRICS_PATH} is served here\n`);
      if (needsToken) {
        try {
          auth.authenticate(req);
        } catch (err) {
          const status = (err as { httpStatus?: number }).httpStatus ?? 401;
          res.setHeader('www-authenticate', 'Bearer');
          return text(res, status, `${(err as Error).message}\n`);
        }
      }
      void this.serve(req, res);
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    const a = server.address();
    return { host, port: a && typeof a === 'object' ? a.port : port };
  }

  /** close stops the metrics listener, if one was started. */
  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return text(res, 405, `${METRICS_PATH} answers GET only\n`);
    }
    let body: string;
    try {
      body = await this.render();
    } catch (err) {
      return text(res, 500, `cannot render metrics: ${(err as Error).message}\n`);
    }
    res.writeHead(200, { 'content-type': this.contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : body);
  }
}

function text(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** isLoopback: whether a listen address is reachable from this machine only. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || h.startsWith('::ffff:127.');
  return false;
}

import type { EndpointSpec, ServiceSpec } from './service-spec.js';

/**
 * Endpoint is one upstream address with its live state: requests in flight, outlier-detection
 * counters and ejection, and when it joined (for slow start).
 */
export class Endpoint {
  readonly key: string;
  readonly address: string;
  readonly port: number;
  readonly socketPath?: string;
  readonly version?: string;
  readonly weight: number;
  readonly addedAt: number;
  active = 0;
  ejectedUntil = 0;
  ejections = 0;
  consecutive5xx = 0;
  consecutiveGateway = 0;

  constructor(spec: EndpointSpec, now: number) {
    this.address = spec.address;
    this.port = spec.port;
    this.socketPath = spec.socketPath;
    this.version = spec.version;
    this.weight = spec.weight;
    this.key = spec.socketPath ? `unix:${spec.socketPath}` : `${spec.address.includes(':') ? `[${spec.address}]` : spec.address}:${spec.port}`;
    this.addedAt = now;
  }

  isEjected(now: number): boolean {
    return now < this.ejectedUntil;
  }

  /**
   * effectiveWeight ramps a new endpoint's weight up over the slow-start window, Envoy-style:
   * weight × max(minPercent, (age/window)^(1/aggression)).
   */
  effectiveWeight(now: number, slowStart: ServiceSpec['slowStart']): number {
    if (!slowStart || slowStart.windowMs <= 0) return this.weight;
    const age = now - this.addedAt;
    if (age >= slowStart.windowMs) return this.weight;
    const factor = Math.max(slowStart.minWeightPercent / 100, Math.pow(Math.max(age, 1) / slowStart.windowMs, 1 / slowStart.aggression));
    return this.weight * factor;
  }
}

import { request } from 'node:http';

import type { ReplicaEndpoint } from './types.js';

/** ProbeSpec is a readiness or liveness probe, resolved to milliseconds. */
export interface ProbeSpec {
  path: string;
  headers: Record<string, string>;
  /** Any HTTP answer passes (the default readiness check), or only statuses below 400 (a declared httpGet). */
  anyStatus: boolean;
  initialDelayMs: number;
  periodMs: number;
  timeoutMs: number;
  failureThreshold: number;
  successThreshold: number;
}

/** The readiness check a Function without a declared probe gets: its port answers HTTP at all. */
export const DEFAULT_READINESS: ProbeSpec = { path: '/', headers: {}, anyStatus: true, initialDelayMs: 0, periodMs: 10_000, timeoutMs: 1_000, failureThreshold: 3, successThreshold: 1 };

/** ProbeResult is one probe's outcome; `message` says what failed. */
export type ProbeResult = { ok: true } | { ok: false; message: string };

/**
 * probe sends one HTTP GET to a replica through its endpoint (a Unix socket bridge or a loopback
 * port) and says whether it passed. It never rejects.
 */
export function probe(endpoint: ReplicaEndpoint, spec: ProbeSpec, signal?: AbortSignal): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const target = endpoint.kind === 'unix' ? { socketPath: endpoint.path } : { host: endpoint.host, port: endpoint.port };
    const req = request({ ...target, method: 'GET', path: spec.path, headers: { ...spec.headers, host: 'localhost', 'user-agent': 'skiff-probe', connection: 'close' }, timeout: spec.timeoutMs, signal });
    req.once('response', (res) => {
      res.resume();
      const status = res.statusCode ?? 0;
      if (spec.anyStatus || (status >= 200 && status < 400)) resolve({ ok: true });
      else resolve({ ok: false, message: `GET ${spec.path} answered ${status}` });
    });
    req.once('timeout', () => {
      req.destroy();
      resolve({ ok: false, message: `GET ${spec.path} got no answer within ${spec.timeoutMs} ms` });
    });
    req.once('error', (err: NodeJS.ErrnoException) => resolve({ ok: false, message: `GET ${spec.path} failed: ${err.code ?? err.message}` }));
    req.end();
  });
}

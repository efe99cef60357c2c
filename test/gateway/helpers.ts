import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';

import { pino } from 'pino';

import type { ResourceObject } from '../../src/api/kinds/types.js';
import { type Cancellation, type FunctionInvoker, Gateway, type GatewayOptions, type GatewayRequest } from '../../src/gateway/index.js';
import { UpstreamGuard } from '../../src/security/index.js';

/** route builds a Route object for tests. */
export function route(name: string, spec: Record<string, unknown>, namespace = 'default', creationTimestamp?: string): ResourceObject {
  return { apiVersion: 'skiff.dev/v1', kind: 'Route', metadata: { name, namespace, creationTimestamp }, spec };
}

/** service builds a Service object for tests. */
export function service(name: string, spec: Record<string, unknown>, namespace = 'default'): ResourceObject {
  return { apiVersion: 'skiff.dev/v1', kind: 'Service', metadata: { name, namespace }, spec };
}

/** EchoInvoker answers every Function call later (never inline) with a JSON echo of what it received, and records the calls. */
export class EchoInvoker implements FunctionInvoker {
  calls: Array<{ namespace: string; name: string; req: GatewayRequest }> = [];
  behaviour?: (ns: string, name: string, req: GatewayRequest, signal: AbortSignal) => Promise<{ status: number; headers: Array<[string, string]>; body: Uint8Array }>;

  tryInline(): undefined {
    return undefined;
  }

  async invoke(namespace: string, name: string, req: GatewayRequest, cancel: Cancellation) {
    this.calls.push({ namespace, name, req });
    if (this.behaviour) return this.behaviour(namespace, name, req, cancel.signal);
    const body = Buffer.from(JSON.stringify({ fn: `${namespace}/${name}`, method: req.method, path: req.path, query: req.rawQuery, body: Buffer.from(req.body).toString(), headers: req.headers }));
    return { status: 200, headers: [['content-type', 'application/json'] as [string, string], ['x-fn', name] as [string, string]], body };
  }
}

/** TestGateway is a started gateway plus its base URL. */
export interface TestGateway {
  gw: Gateway;
  url: string;
  port: number;
  invoker: EchoInvoker;
  close(): Promise<void>;
}

/**
 * startGateway starts a gateway on 127.0.0.1 with a free port and applies the given objects. Its
 * upstream guard is permissive (the tests' upstreams listen on loopback) unless `opts.upstreams` says otherwise.
 */
export async function startGateway(routes: ResourceObject[], services: ResourceObject[] = [], opts: Partial<GatewayOptions> = {}): Promise<TestGateway> {
  const invoker = new EchoInvoker();
  const gw = new Gateway({ functions: invoker, logger: pino({ level: 'silent' }), upstreams: UpstreamGuard.permissive(), ...opts });
  const problems = gw.update({ routes, services });
  if (problems.length > 0) throw new Error(`config problems: ${JSON.stringify(problems)}`);
  const { port } = await gw.listen('127.0.0.1', 0);
  return { gw, url: `http://127.0.0.1:${port}`, port, invoker, close: () => gw.close(500) };
}

/** Upstream is a plain Node HTTP server standing in for a Service endpoint. */
export interface Upstream {
  server: Server;
  port: number;
  hits: number;
  close(): Promise<void>;
}

/** startUpstream starts an HTTP server on 127.0.0.1 with the given handler. */
export async function startUpstream(handler: (req: IncomingMessage, res: ServerResponse, up: Upstream) => void): Promise<Upstream> {
  const up: Upstream = { server: undefined as unknown as Server, port: 0, hits: 0, close: async () => undefined };
  const server = createServer((req, res) => {
    up.hits++;
    handler(req, res, up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  up.server = server;
  up.port = (server.address() as AddressInfo).port;
  up.close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return up;
}

/** rawExchange writes raw bytes to the port and returns everything read until the server closes or `waitMs` passes. */
export function rawExchange(port: number, payload: string | string[], waitMs = 2000, gapMs = 0): Promise<{ data: string; closed: boolean }> {
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1');
    let data = '';
    let closed = false;
    const timer = setTimeout(() => {
      sock.destroy();
      resolve({ data, closed });
    }, waitMs);
    sock.on('data', (d) => (data += d.toString('latin1')));
    sock.on('error', () => undefined);
    sock.on('close', () => {
      closed = true;
      clearTimeout(timer);
      resolve({ data, closed });
    });
    const parts = Array.isArray(payload) ? payload : [payload];
    let i = 0;
    const writeNext = () => {
      if (i >= parts.length || sock.destroyed) return;
      sock.write(parts[i++]!);
      if (gapMs > 0) setTimeout(writeNext, gapMs);
      else writeNext();
    };
    sock.on('connect', writeNext);
  });
}

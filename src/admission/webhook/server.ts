import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';

import type { GatekeeperClient } from '../gatekeeper/client.js';
import type { LevelVersion } from '../pss/evaluate.js';

import { type Answer,answerReview } from './answer.js';

/** WebhookOptions: TLS material, who decides (a client in this thread, or a pool of worker threads), and limits. */
export interface WebhookOptions {
  cert: string | Buffer;
  key: string | Buffer;
  /** the client holding templates, constraints and inventory, evaluated on this thread */
  client?: GatekeeperClient;
  /** evaluates elsewhere instead (an EvalPool of worker threads); takes precedence over `client` */
  evaluate?: (body: Buffer) => Promise<Answer>;
  /** a fixed Pod Security level for every pod; otherwise namespaces' labels (from synced Namespaces) decide */
  pss?: LevelVersion;
  /** largest request body accepted, in bytes (kube-apiserver objects go up to ~3 MiB; the default leaves room) */
  maxBodyBytes?: number;
  /** how long a connection may stay idle between keep-alive requests */
  keepAliveMs?: number;
}

/**
 * WebhookServer serves `admission.k8s.io/v1` AdmissionReview over HTTPS for kube-apiserver: POST any
 * path (the ValidatingWebhookConfiguration names /validate); see answerReview for the verdicts.
 * Only an oversized body gets an HTTP error (413). GET /healthz and /readyz answer `ok`.
 */
export class WebhookServer {
  private readonly server: Server;
  private readonly maxBody: number;
  private readonly evaluate: (body: Buffer) => Promise<Answer>;

  constructor(opts: WebhookOptions) {
    this.maxBody = opts.maxBodyBytes ?? 16 * 1024 * 1024;
    const client = opts.client;
    if (!opts.evaluate && !client) throw new TypeError('WebhookServer needs a client or an evaluate function');
    this.evaluate = opts.evaluate ?? (async (body) => answerReview(client!, body, opts.pss));
    // kube-apiserver gives a webhook at most 30 s; a client slower than that is not kube-apiserver.
    this.server = createServer({ cert: opts.cert, key: opts.key, keepAliveTimeout: opts.keepAliveMs ?? 60_000, requestTimeout: 30_000, headersTimeout: 10_000 }, (req, res) => this.handle(req, res));
  }

  /** listen binds HOST:PORT (port 0 picks a free one) and resolves with the bound address. */
  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  /** close stops accepting and drops open keep-alive connections. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    if (req.method === 'GET' && (req.url === '/healthz' || req.url === '/readyz')) return this.send(res, 200, 'ok\n', 'text/plain');
    if (req.method !== 'POST') return this.send(res, 405, 'POST an AdmissionReview\n', 'text/plain');
    const chunks: Buffer[] = [];
    let size = 0;
    let tooBig = false;
    req.on('data', (c: Buffer) => {
      if (tooBig) return;
      size += c.length;
      if (size > this.maxBody) {
        tooBig = true;
        this.send(res, 413, `request body exceeds ${this.maxBody} bytes\n`, 'text/plain');
        req.resume();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (tooBig) return;
      this.evaluate(Buffer.concat(chunks)).then(
        (a) => this.send(res, a.status, a.body, 'application/json'),
        (e: Error) => this.send(res, 500, JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: '', allowed: false, status: { code: 500, message: `evaluation failed: ${e.message}` } } }), 'application/json'),
      );
    });
    req.on('error', () => res.destroy());
  }

  private send(res: ServerResponse, status: number, body: string, type: string): void {
    if (res.headersSent || res.destroyed) return;
    res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }
}

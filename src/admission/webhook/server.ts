import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decide, type PodSecurityInput } from '../decision.js';
import type { GatekeeperClient } from '../gatekeeper/client.js';
import { reviewFromRequest } from '../gatekeeper/review.js';
import { namespacePolicy, type LevelVersion } from '../pss/evaluate.js';

/** WebhookOptions: TLS material, the client holding templates/constraints/inventory, and limits. */
export interface WebhookOptions {
  cert: string | Buffer;
  key: string | Buffer;
  client: GatekeeperClient;
  /** a fixed Pod Security level for every pod; otherwise namespaces' labels (from synced Namespaces) decide */
  pss?: LevelVersion;
  /** largest request body accepted, in bytes (kube-apiserver objects go up to ~3 MiB; the default leaves room) */
  maxBodyBytes?: number;
  /** how long a connection may stay idle between keep-alive requests */
  keepAliveMs?: number;
}

const REVIEW_VERSIONS = new Set(['admission.k8s.io/v1', 'admission.k8s.io/v1beta1']);

/** reviewResponse builds the AdmissionReview kube-apiserver expects back, echoing the request's apiVersion and uid. */
function reviewResponse(apiVersion: string, uid: string, body: { allowed: boolean; status?: { code: number; message: string; reason?: string }; warnings?: string[] }) {
  return { apiVersion, kind: 'AdmissionReview', response: { uid, ...body } };
}

/**
 * WebhookServer serves `admission.k8s.io/v1` AdmissionReview over HTTPS for kube-apiserver: POST any
 * path (the ValidatingWebhookConfiguration names /validate). Like controller-runtime, a request it
 * cannot read (bad JSON, no `request`) is answered HTTP 200 with `allowed: false` and status code
 * 400, so the API server applies the verdict instead of its failurePolicy; only an oversized body gets
 * HTTP 413. GET /healthz and /readyz answer `ok`.
 */
export class WebhookServer {
  private readonly server: Server;
  private readonly maxBody: number;

  constructor(private readonly opts: WebhookOptions) {
    this.maxBody = opts.maxBodyBytes ?? 16 * 1024 * 1024;
    this.server = createServer({ cert: opts.cert, key: opts.key, keepAliveTimeout: opts.keepAliveMs ?? 60_000 }, (req, res) => this.handle(req, res));
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

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
      if (!tooBig) this.respond(res, Buffer.concat(chunks));
    });
    req.on('error', () => res.destroy());
  }

  private respond(res: ServerResponse, body: Buffer): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch (e) {
      return this.json(res, reviewResponse('admission.k8s.io/v1', '', { allowed: false, status: { code: 400, reason: 'BadRequest', message: `cannot decode the AdmissionReview: ${(e as Error).message}` } }));
    }
    const review = parsed as { apiVersion?: string; kind?: string; request?: { uid?: string } };
    const apiVersion = typeof review?.apiVersion === 'string' && REVIEW_VERSIONS.has(review.apiVersion) ? review.apiVersion : 'admission.k8s.io/v1';
    const uid = typeof review?.request?.uid === 'string' ? review.request.uid : '';
    if (!review || typeof review !== 'object' || review.kind !== 'AdmissionReview')
      return this.json(res, reviewResponse(apiVersion, uid, { allowed: false, status: { code: 400, reason: 'BadRequest', message: 'expected kind AdmissionReview (admission.k8s.io/v1)' } }));
    let decision;
    try {
      const r = reviewFromRequest(review.request);
      const ns = r.namespace;
      const nsObj = ns ? this.opts.client.inventory.namespace(ns) : undefined;
      const pss: PodSecurityInput = this.opts.pss ? { fixed: this.opts.pss } : { namespace: namespacePolicy(nsObj?.metadata?.labels) };
      decision = decide(this.opts.client, r, { namespaceObject: nsObj }, pss);
    } catch (e) {
      return this.json(res, reviewResponse(apiVersion, uid, { allowed: false, status: { code: 400, reason: 'BadRequest', message: (e as Error).message } }));
    }
    const warnings = decision.warnings.length ? { warnings: decision.warnings } : {};
    if (decision.allowed) return this.json(res, reviewResponse(apiVersion, uid, { allowed: true, ...warnings }));
    return this.json(res, reviewResponse(apiVersion, uid, { allowed: false, status: { code: 403, reason: 'Forbidden', message: decision.denials.map((d) => d.message).join('\n') }, ...warnings }));
  }

  private json(res: ServerResponse, body: unknown): void {
    this.send(res, 200, JSON.stringify(body), 'application/json');
  }

  private send(res: ServerResponse, status: number, body: string, type: string): void {
    if (res.headersSent) return;
    res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }
}

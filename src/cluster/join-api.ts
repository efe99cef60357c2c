import type http from 'node:http';

import type { Logger } from 'pino';

import { ApiError } from '../api/errors.js';
import { readBodyBytes } from '../api/request-body.js';
import type { ResourceService } from '../api/resources.js';
import type { ApiMount } from '../api/server.js';
import { CertificateRequestError, spiffeId } from '../gateway/index.js';

import type { ClusterAuthority } from './bootstrap.js';
import { FailureLimiter } from './join-limiter.js';

/** The cluster endpoints on every node's API listener (K3s serves the same under /cacerts and /v1-k3s). */
export const CLUSTER_API_PREFIX = '/cluster/v1/';

/** How long a node certificate lives; nodes renew it when two thirds have passed. */
export const NODE_CERT_TTL_MS = 24 * 3600 * 1000;

/** The longest overlap `skiff cluster rotate-ca` accepts (a year). */
const MAX_OVERLAP_MS = 365 * 24 * 3600 * 1000;

// One answer for every secret that does not authenticate, so a caller learns nothing from it.
const UNAUTHORIZED = 'the join secret was not accepted: use the token in DATA_DIR/node-token of a node of this cluster';

/** JoinRequest is what a joining (or renewing) node posts: its secret, its name and a CSR for its key. */
interface JoinRequest {
  secret: string;
  nodeName: string;
  csr: string;
}

/** JoinResponse is what it gets: its certificate, the trust bundle, and for a join the cluster-wide tokens. */
export interface JoinResponse {
  certificate: string;
  trustBundle: string;
  token?: string;
  controllerToken?: string;
}

export interface ClusterMountOptions {
  authority: ClusterAuthority;
  resources: ResourceService;
  logger: Logger;
  trustDomain: string;
  limiter?: FailureLimiter;
  /** Whether a Node of that name is live now (its heartbeat Lease is current); a join under its name is refused. */
  nodeIsLive: (name: string) => Promise<boolean>;
  /** Called after a rotation so this node renews at once (the others notice the Secret change). */
  rotated?: () => void;
}

const NODE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/**
 * clusterMount serves:
 * - `GET /cluster/v1/cacerts`: the trust bundle, without authentication (a joiner checks it against
 *   the hash in its token before trusting it);
 * - `POST /cluster/v1/join` and `POST /cluster/v1/certificates`: authenticated by the join secret (the
 *   node token's last part), they sign the node's CSR; a join also returns the API and controller tokens;
 * - `POST /cluster/v1/rotate-ca`: with the API token, starts a CA rotation (`skiff cluster rotate-ca`).
 * Failed secrets from one address are slowed down exponentially (429 with Retry-After until then).
 */
export function clusterMount(opts: ClusterMountOptions): ApiMount {
  const limiter = opts.limiter ?? new FailureLimiter();
  const selfAuth = new Set([`${CLUSTER_API_PREFIX}join`, `${CLUSTER_API_PREFIX}certificates`]);
  return {
    matches: (path) => path.startsWith(CLUSTER_API_PREFIX),
    public: (path) => path === `${CLUSTER_API_PREFIX}cacerts`,
    authenticatesItself: (path, method) => method === 'POST' && selfAuth.has(path),
    handle: async (req, res, path, _query, principal) => {
      const method = req.method ?? 'GET';
      if (path === `${CLUSTER_API_PREFIX}cacerts`) {
        if (method !== 'GET' && method !== 'HEAD') return methodNotAllowed(res, path, 'GET');
        res.writeHead(200, { 'content-type': 'application/x-pem-file', 'cache-control': 'no-store' });
        res.end(method === 'HEAD' ? undefined : opts.authority.certPem);
        return;
      }
      if (selfAuth.has(path)) {
        if (method !== 'POST') return methodNotAllowed(res, path, 'POST');
        const source = req.socket.remoteAddress ?? 'unknown';
        const wait = limiter.retryAfterMs(source);
        if (wait > 0) {
          res.setHeader('retry-after', String(Math.ceil(wait / 1000)));
          throw new ApiError(429, 'TooManyRequests', 'too many failed join attempts from this address; retry later', { retryAfterSeconds: Math.ceil(wait / 1000) });
        }
        const body = parseJoin(await readBodyBytes(req, res, 64 * 1024));
        // A malformed body is a failure too: every unauthenticated answer looks the same.
        if (!body || !(await opts.authority.checkJoinSecret(body.secret))) {
          limiter.failed(source);
          opts.logger.warn({ source, path }, 'refused a cluster request with a wrong join secret');
          throw new ApiError(401, 'Unauthorized', UNAUTHORIZED);
        }
        limiter.succeeded(source);
        const joining = path.endsWith('/join');
        if (joining && (await opts.nodeIsLive(body.nodeName))) {
          throw new ApiError(409, 'Conflict', `node name ${body.nodeName} is held by a live node of this cluster; give this node another --node-name, or stop the other one and wait until its heartbeat lapses`);
        }
        if (!joining && !(await opts.resources.tryGet(opts.resources.kind('Node'), undefined, body.nodeName))) {
          throw new ApiError(403, 'Forbidden', `node ${body.nodeName} is not a member of this cluster (no Node object): join it again`);
        }
        const want = spiffeId(opts.trustDomain, 'skiff-system', body.nodeName, 'node');
        let signed;
        try {
          signed = await opts.authority.sign(body.csr, NODE_CERT_TTL_MS);
        } catch (err) {
          if (err instanceof CertificateRequestError) throw new ApiError(400, 'BadRequest', err.message);
          throw err;
        }
        if (signed.spiffeId !== want) throw new ApiError(400, 'BadRequest', `the certificate request names ${signed.spiffeId}; node ${body.nodeName} may only ask for ${want}`);
        opts.logger.info({ node: body.nodeName, source, join: joining }, joining ? 'signed the certificate of a joining node' : 'renewed a node certificate');
        const out: JoinResponse = { certificate: signed.certPem, trustBundle: opts.authority.certPem };
        if (joining) Object.assign(out, { token: opts.authority.token, controllerToken: opts.authority.controllerToken });
        return json(res, 200, out);
      }
      if (path === `${CLUSTER_API_PREFIX}rotate-ca`) {
        if (!principal) throw new ApiError(401, 'Unauthorized', 'rotating the cluster CA needs the API token');
        if (method !== 'POST') return methodNotAllowed(res, path, 'POST');
        const raw = (await readBodyBytes(req, res, 4096)).toString('utf8');
        let overlapMs: unknown;
        try {
          overlapMs = raw ? (JSON.parse(raw) as { overlapMs?: unknown }).overlapMs : undefined;
        } catch {
          throw new ApiError(400, 'BadRequest', 'the body must be JSON: {"overlapMs": N}');
        }
        const overlap = overlapMs === undefined ? NODE_CERT_TTL_MS : overlapMs;
        if (typeof overlap !== 'number' || !Number.isInteger(overlap) || overlap < 0 || overlap > MAX_OVERLAP_MS) throw new ApiError(400, 'BadRequest', 'overlapMs must be a whole number of milliseconds between 0 and a year');
        const { retireAt } = await opts.authority.rotate(overlap);
        opts.rotated?.();
        opts.logger.info({ retireAt, by: principal }, 'rotated the cluster CA');
        return json(res, 200, { retireAt, caHash: opts.authority.caHash });
      }
      if (!principal) throw new ApiError(401, 'Unauthorized', 'this path needs the API token');
      throw new ApiError(404, 'NotFound', `${path} is not a cluster endpoint`);
    },
  };
}

function parseJoin(bytes: Buffer): JoinRequest | undefined {
  try {
    const v = JSON.parse(bytes.toString('utf8')) as Partial<JoinRequest>;
    if (typeof v.secret !== 'string' || typeof v.nodeName !== 'string' || typeof v.csr !== 'string') return undefined;
    if (v.nodeName.length > 253 || !NODE_NAME.test(v.nodeName) || v.secret.length > 1024) return undefined;
    return { secret: v.secret, nodeName: v.nodeName, csr: v.csr };
  } catch {
    return undefined;
  }
}

function methodNotAllowed(res: http.ServerResponse, path: string, allow: string): never {
  res.setHeader('allow', allow);
  throw new ApiError(405, 'MethodNotAllowed', `only ${allow} is supported on ${path}`);
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/**
 * nodeLeaseIsLive tells whether node `name` heartbeats: its Lease in kube-node-lease was renewed
 * within its duration. A stopped node's name is free again once its lease lapses.
 */
export async function nodeLeaseIsLive(resources: ResourceService, name: string, now = Date.now()): Promise<boolean> {
  const lease = await resources.tryGet(resources.kind('Lease'), 'kube-node-lease', name);
  const spec = lease?.spec as { renewTime?: string; leaseDurationSeconds?: number } | undefined;
  if (!spec?.renewTime) return false;
  return Date.parse(spec.renewTime) + (spec.leaseDurationSeconds ?? 40) * 1000 > now;
}

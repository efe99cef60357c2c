import { X509Certificate } from 'node:crypto';
import https from 'node:https';

import { createCsr, spiffeId } from '../gateway/index.js';

import { chainsTo } from './bootstrap.js';
import { JoinError } from './errors.js';
import type { JoinResponse } from './join-api.js';
import { caBundleHash, type NodeToken, parseNodeToken, sameHash } from './token.js';

/** Joined is what a node has after joining: its key and certificate, the trust bundle and the cluster's tokens. */
export interface Joined {
  certPem: string;
  keyPem: string;
  notBefore: Date;
  notAfter: Date;
  trustBundle: string;
  token: string;
  controllerToken: string;
}

export interface JoinOptions {
  /** Any existing node's API, https://HOST:PORT. */
  url: string;
  /** The node token (DATA_DIR/node-token of a node of the cluster). */
  token: string;
  nodeName: string;
  trustDomain: string;
  timeoutMs?: number;
}

/**
 * joinCluster joins through an existing node's API, as a K3s agent does: it fetches the trust bundle
 * without verifying the server (nothing is trusted yet), accepts it only if its hash is the one in the
 * token, then over TLS verified with that bundle sends the join secret and a certificate request for
 * a key made here. The server signs the node's certificate and returns the cluster-wide tokens. It
 * writes nothing: the caller stores the result once everything has succeeded.
 */
export async function joinCluster(opts: JoinOptions): Promise<Joined> {
  const token = parseNodeToken(opts.token);
  const base = baseUrl(opts.url);
  const bundle = await fetchBundle(base, token, opts.timeoutMs);
  const id = spiffeId(opts.trustDomain, 'skiff-system', opts.nodeName, 'node');
  const csr = await createCsr(id, { dnsNames: ['localhost'] });
  const answer = await post(base, '/cluster/v1/join', { secret: token.secret, nodeName: opts.nodeName, csr: csr.csrPem }, bundle, opts.timeoutMs);
  if (typeof answer.certificate !== 'string' || typeof answer.trustBundle !== 'string' || typeof answer.token !== 'string' || typeof answer.controllerToken !== 'string') {
    throw new JoinError('join_refused', `${base} answered the join without a certificate and tokens: is it a Skiff node?`);
  }
  if (!chainsTo(answer.certificate, bundle)) throw new JoinError('join_refused', `${base} returned a node certificate that does not chain to the cluster CA it served`);
  const cert = new X509Certificate(answer.certificate);
  if (!cert.subjectAltName?.split(', ').includes(`URI:${id}`)) throw new JoinError('join_refused', `${base} returned a certificate for another identity than ${id}`);
  return { certPem: answer.certificate, keyPem: csr.keyPem, notBefore: new Date(cert.validFrom), notAfter: new Date(cert.validTo), trustBundle: answer.trustBundle, token: answer.token, controllerToken: answer.controllerToken };
}

function baseUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new JoinError('join_unreachable', `--join ${url}: expected an existing node's API as https://HOST:PORT`);
  }
  if (u.protocol !== 'https:') throw new JoinError('join_unreachable', `--join ${url}: the join goes over HTTPS (https://HOST:PORT of a node's API)`);
  return `${u.protocol}//${u.host}`;
}

/** fetchBundle reads /cluster/v1/cacerts and refuses a bundle whose hash is not the token's. */
async function fetchBundle(base: string, token: NodeToken, timeoutMs = 10_000): Promise<string> {
  // Unverified on purpose: the hash pinned in the token is what authenticates this answer.
  const { status, body } = await request(`${base}/cluster/v1/cacerts`, { method: 'GET', rejectUnauthorized: false }, undefined, timeoutMs);
  if (status !== 200) throw new JoinError('join_refused', `${base}/cluster/v1/cacerts answered ${status}: is it a Skiff node's API in cluster mode?`);
  if (!sameHash(caBundleHash(body), token.caHash)) {
    throw new JoinError('join_ca_mismatch', `the CA served by ${base} does not match the hash in the token: either the token belongs to another cluster (or predates a CA rotation: take the current DATA_DIR/node-token), or something between here and ${base} is impersonating it; nothing was sent`);
  }
  return body;
}

async function post(base: string, path: string, payload: unknown, bundle: string, timeoutMs = 10_000): Promise<JoinResponse> {
  const { status, body, headers } = await request(`${base}${path}`, { method: 'POST', ca: bundle, rejectUnauthorized: true, headers: { 'content-type': 'application/json' } }, JSON.stringify(payload), timeoutMs);
  if (status === 200) {
    try {
      return JSON.parse(body) as JoinResponse;
    } catch {
      throw new JoinError('join_refused', `${base}${path} answered with something other than JSON`);
    }
  }
  let message = body.slice(0, 300);
  try {
    message = (JSON.parse(body) as { message?: string }).message ?? message;
  } catch {
    // not a Status
  }
  if (status === 401) throw new JoinError('join_token', `the cluster refused the token (${message})`);
  if (status === 429) throw new JoinError('join_refused', `too many failed attempts from this address; retry after ${String(headers['retry-after'] ?? 'a while')} s`);
  throw new JoinError('join_refused', `${base}${path} answered ${status}: ${message}`);
}

function request(url: string, options: https.RequestOptions, body: string | undefined, timeoutMs: number): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolveReq, reject) => {
    const req = https.request(url, { ...options, timeout: timeoutMs, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        text += d;
        if (text.length > 1024 * 1024) req.destroy(new Error('answer too large'));
      });
      res.on('end', () => resolveReq({ status: res.statusCode ?? 0, body: text, headers: res.headers }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err) => {
      const e = err as NodeJS.ErrnoException;
      reject(new JoinError('join_unreachable', `cannot reach ${url}: ${e.code === 'ERR_TLS_CERT_ALTNAME_INVALID' || /certificate/i.test(e.message) ? `its TLS certificate does not verify against the cluster CA (${e.message})` : e.message}`, { cause: err }));
    });
    req.end(body);
  });
}

/**
 * renewNodeCertificate asks a node of the cluster to sign a new certificate for this node's identity,
 * authenticated by the join secret, over TLS verified with the trust bundle: the way a node that
 * does not read the store itself renews (a node with the store signs with the CA there).
 */
export async function renewNodeCertificate(opts: JoinOptions & { trustBundle: string }): Promise<{ certPem: string; keyPem: string; trustBundle: string }> {
  const token = parseNodeToken(opts.token);
  const base = baseUrl(opts.url);
  const id = spiffeId(opts.trustDomain, 'skiff-system', opts.nodeName, 'node');
  const csr = await createCsr(id, { dnsNames: ['localhost'] });
  const answer = await post(base, '/cluster/v1/certificates', { secret: token.secret, nodeName: opts.nodeName, csr: csr.csrPem }, opts.trustBundle, opts.timeoutMs);
  if (typeof answer.certificate !== 'string' || typeof answer.trustBundle !== 'string' || !chainsTo(answer.certificate, opts.trustBundle + answer.trustBundle)) {
    throw new JoinError('join_refused', `${base} returned no certificate chaining to the cluster CA`);
  }
  return { certPem: answer.certificate, keyPem: csr.keyPem, trustBundle: answer.trustBundle };
}

import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';

import { StoreUnavailableError } from './errors.js';

/** Client TLS towards etcd (`--store-cafile`, `--store-certfile`, `--store-keyfile`), as PEM text. */
export interface EtcdTls {
  /** CA certificates that sign the members' serving certificates (default: the system's). */
  ca?: string;
  /** This client's certificate and key, for members started with `--client-cert-auth`. */
  cert?: string;
  key?: string;
}

/**
 * EtcdAnswerError: a member answered, with an error. `transient` says the request was not carried out
 * because the member cannot serve now (no leader, request timed out on the member, too many requests):
 * another member, or the same one later, may answer.
 */
export class EtcdAnswerError extends StoreUnavailableError {
  constructor(
    readonly status: number,
    readonly grpcCode: number | undefined,
    readonly etcdMessage: string,
  ) {
    super(`etcd answered HTTP ${status}: ${etcdMessage.slice(0, 200)}`, undefined, 'store_etcd_error');
  }

  get transient(): boolean {
    // gRPC Unavailable and DeadlineExceeded, and the members' own words for the same.
    return this.grpcCode === 14 || this.grpcCode === 4 || /no leader|timed out|deadline exceeded|not capable|too many requests|unhealthy/i.test(this.etcdMessage);
  }

  /** The member refused before proposing anything: trying another member cannot apply a write twice. */
  get notApplied(): boolean {
    return /no leader|not capable|too many requests/i.test(this.etcdMessage);
  }
}

/** EtcdUnreachableError: no member could be connected to (or every TLS handshake failed). */
export class EtcdUnreachableError extends StoreUnavailableError {
  constructor(message: string, cause?: unknown) {
    super(message, cause, 'store_etcd_unreachable');
  }
}

/** A TLS failure is a configuration problem, not an outage: it is named as one. */
export function isTlsError(err: unknown): boolean {
  const e = err as NodeJS.ErrnoException | undefined;
  const code = String(e?.code ?? '');
  return code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL') || /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|DEPTH_ZERO/.test(code) || /certificate|handshake|alert/i.test(e?.message ?? '');
}

/** tlsReason says in words what went wrong in a TLS handshake with a member. */
export function tlsReason(err: unknown): string {
  const e = err as NodeJS.ErrnoException | undefined;
  const code = String(e?.code ?? '');
  if (/ALERT_(BAD_CERTIFICATE|CERTIFICATE_REQUIRED|UNKNOWN_CA|CERTIFICATE_UNKNOWN|HANDSHAKE_FAILURE)/.test(code) || /alert (bad certificate|certificate required|unknown ca)/i.test(e?.message ?? '')) {
    return `the members refused this client's certificate, or its lack of one (${code || 'TLS alert'})`;
  }
  if (/SELF_SIGNED|UNABLE_TO_(GET_ISSUER|VERIFY_LEAF)|CERT_UNTRUSTED|DEPTH_ZERO/.test(code)) return `the members' certificate is not signed by a CA this client trusts (${code})`;
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return `the members' certificate does not name the address connected to (${code})`;
  if (/CERT_HAS_EXPIRED|CERT_NOT_YET_VALID/.test(code)) return `the members' certificate is outside its validity period (${code})`;
  return code || (e?.message ?? 'TLS handshake failed').split('\n')[0]!.slice(0, 120);
}

/**
 * EtcdTransport posts JSON to the members' gRPC gateway over node:http or node:https, with keep-alive
 * connections and, for `etcd+https://`, the operator's CA and client certificate. It knows nothing of
 * quorum: it answers the response of one member or throws what went wrong with it.
 */
export class EtcdTransport {
  private readonly agent: http.Agent;

  constructor(
    readonly endpoints: string[],
    tls?: EtcdTls,
  ) {
    const secure = endpoints.some((e) => e.startsWith('https:'));
    this.agent = secure ? new https.Agent({ keepAlive: true, ca: tls?.ca, cert: tls?.cert, key: tls?.key }) : new http.Agent({ keepAlive: true });
  }

  /** post sends one request to one member and resolves with its response head; the body is the caller's to read. */
  post(endpoint: number, path: string, body: unknown, signal: AbortSignal): Promise<IncomingMessage> {
    const url = new URL(path, this.endpoints[endpoint]);
    const payload = Buffer.from(JSON.stringify(body));
    const mod = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = mod.request(url, { method: 'POST', agent: this.agent, signal, headers: { 'content-type': 'application/json', 'content-length': payload.length } }, resolve);
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** postJson is post for a unary call: the whole body, parsed; a non-2xx answer throws EtcdAnswerError. */
  async postJson<T>(endpoint: number, path: string, body: unknown, signal: AbortSignal): Promise<T> {
    const res = await this.post(endpoint, path, body, signal);
    const text = await readAll(res);
    if ((res.statusCode ?? 0) < 200 || (res.statusCode ?? 0) >= 300) {
      let code: number | undefined;
      let message = text;
      try {
        const j = JSON.parse(text) as { code?: number; message?: string; error?: string };
        code = j.code;
        message = j.message ?? j.error ?? text;
      } catch {
        // not JSON: keep the text
      }
      throw new EtcdAnswerError(res.statusCode ?? 0, code, message);
    }
    return JSON.parse(text) as T;
  }

  close(): void {
    this.agent.destroy();
  }
}

function readAll(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
    res.on('aborted', () => reject(new Error('the response was cut short')));
  });
}

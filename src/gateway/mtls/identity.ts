import { type ConnectionOptions,createSecureContext, type SecureContext } from 'node:tls';

import { SkiffError } from '../../util/errors.js';

import type { IssuedCertificate } from './ca.js';

/**
 * CertificateIssuer is what an identity gets its certificates from: the internal CA of a single node,
 * or a cluster's CA. `certPem` is the trust bundle peers are checked against (one root, or several
 * while a cluster rotates its CA); it is read again at every renewal.
 */
export interface CertificateIssuer {
  readonly certPem: string;
  issue(id: string, opts: { ttlMs?: number; dnsNames?: string[] }): Promise<IssuedCertificate>;
}

/** WorkloadIdentityOptions tune how long certificates live and what happens when renewal fails. */
export interface WorkloadIdentityOptions {
  /** Lifetime of each certificate in ms (an hour by default). */
  ttlMs?: number;
  /** Fraction of a certificate's lifetime after which it is renewed (two thirds by default). */
  renewAt?: number;
  /** Told about a renewal that failed; it is tried again shortly, while the current certificate is valid. */
  onError?: (err: Error) => void;
}

/**
 * WorkloadIdentity holds the current short-lived certificate for one SPIFFE ID and renews it before
 * it expires (by default when two thirds of its lifetime have passed). Listeners take the new
 * certificate through `setSecureContext`, so established connections are not dropped; new upstream
 * connections read `clientOptions()` when they open. Certificates are signed asynchronously, so an
 * identity is made with `WorkloadIdentity.create`.
 */
export class WorkloadIdentity {
  private context: SecureContext;
  private client: ConnectionOptions;
  private timer?: NodeJS.Timeout;
  private rotating?: Promise<void>;
  private closed = false;
  private readonly listeners: Array<(ctx: SecureContext) => void> = [];
  private readonly ttlMs: number;
  private readonly renewAt: number;
  private readonly onError?: (err: Error) => void;

  private constructor(
    readonly ca: CertificateIssuer,
    readonly id: string,
    private current: IssuedCertificate,
    opts: WorkloadIdentityOptions,
  ) {
    this.ttlMs = opts.ttlMs ?? 3_600_000;
    this.renewAt = opts.renewAt ?? 2 / 3;
    this.onError = opts.onError;
    this.context = this.makeContext();
    this.client = this.makeClientOptions();
    this.schedule();
  }

  /** create issues the first certificate for `id` and starts renewing it. */
  static async create(ca: CertificateIssuer, id: string, opts: WorkloadIdentityOptions = {}): Promise<WorkloadIdentity> {
    return new WorkloadIdentity(ca, id, await WorkloadIdentity.issue(ca, id, opts.ttlMs ?? 3_600_000), opts);
  }

  /** fromIssued starts from a certificate obtained elsewhere (a node's, signed when it joined) and renews it from `ca`. */
  static fromIssued(ca: CertificateIssuer, id: string, issued: IssuedCertificate, opts: WorkloadIdentityOptions = {}): WorkloadIdentity {
    return new WorkloadIdentity(ca, id, issued, opts);
  }

  private static issue(ca: CertificateIssuer, id: string, ttlMs: number): Promise<IssuedCertificate> {
    return ca.issue(id, { ttlMs, dnsNames: ['localhost'] });
  }

  get certificate(): IssuedCertificate {
    return this.current;
  }

  private makeContext(): SecureContext {
    return createSecureContext({ cert: this.current.certPem, key: this.current.keyPem, ca: this.ca.certPem });
  }

  private schedule(): void {
    const life = this.current.notAfter.getTime() - this.current.notBefore.getTime();
    this.arm(this.current.notBefore.getTime() + life * this.renewAt - Date.now());
  }

  private arm(delayMs: number): void {
    clearTimeout(this.timer);
    if (this.closed) return;
    this.timer = setTimeout(() => {
      this.rotate().catch((err: Error) => {
        this.onError?.(err);
        // Try again soon, but not in a tight loop: a twentieth of the lifetime, between 1 s and a minute.
        this.arm(Math.min(60_000, Math.max(1_000, this.ttlMs / 20)));
      });
    }, Math.max(10, delayMs));
    this.timer.unref();
  }

  /**
   * rotate issues a fresh certificate now and hands it to every listener. A rotation already under
   * way is joined rather than repeated; a failed one leaves the current certificate in place.
   */
  rotate(): Promise<void> {
    this.rotating ??= (async () => {
      try {
        const next = await WorkloadIdentity.issue(this.ca, this.id, this.ttlMs);
        if (this.closed) return;
        this.current = next;
        this.context = this.makeContext();
        this.client = this.makeClientOptions();
        for (const l of this.listeners) l(this.context);
        this.schedule();
      } finally {
        this.rotating = undefined;
      }
    })();
    return this.rotating;
  }

  /**
   * refreshTrust keeps the certificate and takes the issuer's current trust bundle (a root added or
   * retired), handing the new context to every listener.
   */
  refreshTrust(): void {
    if (this.closed) return;
    this.context = this.makeContext();
    this.client = this.makeClientOptions();
    for (const l of this.listeners) l(this.context);
  }

  /** onRotate registers a callback receiving each new secure context. */
  onRotate(fn: (ctx: SecureContext) => void): void {
    this.listeners.push(fn);
  }

  /** serverOptions are the TLS options for a listener that asks for and verifies client certificates. */
  serverOptions(requireClientCert: boolean): { cert: string; key: string; ca: string; requestCert: boolean; rejectUnauthorized: boolean } {
    return { cert: this.current.certPem, key: this.current.keyPem, ca: this.ca.certPem, requestCert: true, rejectUnauthorized: requireClientCert };
  }

  /**
   * clientOptions are the TLS options for a connection to a peer that must present an internal-CA
   * certificate. The same object is returned until the next rotation, so callers can tell a new
   * certificate from the one they already use.
   */
  clientOptions(): ConnectionOptions {
    return this.client;
  }

  private makeClientOptions(): ConnectionOptions {
    return Object.freeze({ cert: this.current.certPem, key: this.current.keyPem, ca: this.ca.certPem, rejectUnauthorized: true });
  }

  /** close stops renewing. */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }
}

/** IdentityClosedError: the identity was asked for after the server started shutting down. */
export class IdentityClosedError extends SkiffError {
  constructor() {
    super('identity_closed', 'the node identity is closed: the server is shutting down');
  }
}

/**
 * LazyIdentity is a WorkloadIdentity made the first time one is needed (the CA behind it included):
 * a node serves its mesh listener with it from start-up, but a node without one pays for certificates
 * only when a Service with `tls.mode: ISTIO_MUTUAL` first connects. A failed attempt is not kept:
 * the next caller tries again.
 */
export class LazyIdentity {
  private made?: WorkloadIdentity;
  private making?: Promise<WorkloadIdentity>;
  private closed = false;

  constructor(private readonly make: () => Promise<WorkloadIdentity>) {}

  /** The identity, once it exists. */
  get current(): WorkloadIdentity | undefined {
    return this.made;
  }

  /** get resolves with the identity, making it on the first call. */
  get(): Promise<WorkloadIdentity> {
    if (this.made) return Promise.resolve(this.made);
    if (this.closed) return Promise.reject(new IdentityClosedError());
    this.making ??= this.make().then(
      (id) => {
        this.making = undefined;
        if (this.closed) {
          id.close();
          throw new IdentityClosedError();
        }
        this.made = id;
        return id;
      },
      (err: unknown) => {
        this.making = undefined;
        throw err;
      },
    );
    return this.making;
  }

  /**
   * clientOptions are the identity's TLS client options: at once when it exists, else once it is
   * made (the caller's first connection waits for the certificate).
   */
  clientOptions(): ConnectionOptions | Promise<ConnectionOptions> {
    return this.made ? this.made.clientOptions() : this.get().then((id) => id.clientOptions());
  }

  /** close stops the identity's renewals, and any identity still being made is closed when it is ready. */
  close(): void {
    this.closed = true;
    this.made?.close();
  }
}

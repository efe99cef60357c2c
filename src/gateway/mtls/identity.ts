import { createSecureContext, type SecureContext, type ConnectionOptions } from 'node:tls';
import type { InternalCA, IssuedCertificate } from './ca.js';

/**
 * WorkloadIdentity holds the current short-lived certificate for one SPIFFE ID and renews it before
 * it expires (by default when two thirds of its lifetime have passed). Listeners take the new
 * certificate through `setSecureContext`, so established connections are not dropped; new upstream
 * connections read `clientOptions()` when they open.
 */
export class WorkloadIdentity {
  private current: IssuedCertificate;
  private context: SecureContext;
  private client: ConnectionOptions;
  private timer?: NodeJS.Timeout;
  private readonly listeners: Array<(ctx: SecureContext) => void> = [];

  constructor(
    readonly ca: InternalCA,
    readonly id: string,
    private readonly ttlMs = 3_600_000,
    private readonly renewAt = 2 / 3,
  ) {
    this.current = ca.issue(id, { ttlMs, dnsNames: ['localhost'] });
    this.context = this.makeContext();
    this.client = this.makeClientOptions();
    this.schedule();
  }

  get certificate(): IssuedCertificate {
    return this.current;
  }

  private makeContext(): SecureContext {
    return createSecureContext({ cert: this.current.certPem, key: this.current.keyPem, ca: this.ca.certPem });
  }

  private schedule(): void {
    const life = this.current.notAfter.getTime() - this.current.notBefore.getTime();
    const at = this.current.notBefore.getTime() + life * this.renewAt;
    this.timer = setTimeout(() => this.rotate(), Math.max(10, at - Date.now()));
    this.timer.unref();
  }

  /** rotate issues a fresh certificate now and hands it to every listener. */
  rotate(): void {
    clearTimeout(this.timer);
    this.current = this.ca.issue(this.id, { ttlMs: this.ttlMs, dnsNames: ['localhost'] });
    this.context = this.makeContext();
    this.client = this.makeClientOptions();
    for (const l of this.listeners) l(this.context);
    this.schedule();
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
    clearTimeout(this.timer);
  }
}

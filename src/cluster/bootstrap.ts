import { randomBytes, X509Certificate } from 'node:crypto';

import type { Logger } from 'pino';

import { ApiError } from '../api/errors.js';
import { secretValue } from '../api/kinds/index.js';
import type { ResourceObject } from '../api/kinds/types.js';
import type { ResourceService } from '../api/resources.js';
import { InternalCA, type IssuedCertificate, type SignedCertificate } from '../gateway/index.js';

import { BootstrapError } from './errors.js';
import { caBundleHash, hashJoinSecret, newJoinSecret, verifyJoinSecret } from './token.js';

/** Where the cluster's bootstrap lives: one Secret in the system namespace. */
export const BOOTSTRAP_SECRET = { namespace: 'skiff-system', name: 'skiff-cluster-bootstrap' } as const;

/** One root in the trust bundle; `retireAt` is when a replaced root leaves it (ISO time). */
interface BundleEntry {
  certPem: string;
  retireAt?: string;
}

/** BootstrapMode: how this node came to the store (`--cluster-init`, `--join`, or neither). */
export type BootstrapMode = 'init' | 'join' | 'plain';

export interface ClusterAuthorityOptions {
  resources: ResourceService;
  logger: Logger;
  trustDomain: string;
  mode: BootstrapMode;
  /** The join secret `--cluster-init --token` sets; a random one otherwise. */
  joinSecret?: string;
  /** How often the bootstrap Secret is read again for a rotated CA (default 2 s; 0: only by `refresh()`). */
  pollMs?: number;
  now?: () => number;
}

/**
 * ClusterAuthority is the cluster CA as every node sees it: the bootstrap Secret in the store holds
 * the signing root and its key, the trust bundle (the signing root, and roots being retired with the
 * time they leave), the API and controller tokens and a hash of the join secret. Each node reads it at
 * start-up, signs with the current root, and reads it again every few seconds so that a rotated root
 * reaches every node without a restart. The CA key is only ever read from the store, never sent to a
 * joining node, and the join secret is kept only as a hash.
 */
export class ClusterAuthority {
  private entries: BundleEntry[] = [];
  private ca!: InternalCA;
  private resourceVersion = '';
  private timer?: NodeJS.Timeout;
  private readonly listeners: Array<() => void> = [];
  private readonly now: () => number;
  /** The join secret in clear: known only on the node that made or was given it. */
  joinSecret?: string;
  token = '';
  controllerToken = '';
  private joinSecretHash = '';
  /** Whether this node created the bootstrap (a first `--cluster-init`). */
  created = false;

  private constructor(private readonly opts: ClusterAuthorityOptions) {
    this.now = opts.now ?? Date.now;
  }

  /**
   * open reads the bootstrap, creating it when the store has none and this node may: `--cluster-init`
   * and a plain start both initialise an empty store (two nodes racing both end up reading the one
   * that was created first); a node that joined finds none only when its --store is another cluster's.
   */
  static async open(opts: ClusterAuthorityOptions): Promise<ClusterAuthority> {
    const a = new ClusterAuthority(opts);
    const existing = await a.read();
    if (existing) {
      await a.load(existing);
      if (opts.joinSecret !== undefined && opts.mode === 'init') {
        if (!(await verifyJoinSecret(opts.joinSecret, a.joinSecretHash))) throw new BootstrapError('the store already holds a cluster whose join secret is not the one --token gives; start without --token to use the existing secret (DATA_DIR/node-token on the first node)');
        a.joinSecret = opts.joinSecret;
      }
    } else {
      if (opts.mode === 'join') throw new BootstrapError('the store named by --store holds no cluster bootstrap: a joining node must use the same etcd (and prefix) as the cluster it joins');
      await a.initialise();
    }
    return a;
  }

  private async read(): Promise<ResourceObject | undefined> {
    const r = this.opts.resources;
    return r.tryGet(r.kind('Secret'), BOOTSTRAP_SECRET.namespace, BOOTSTRAP_SECRET.name);
  }

  private async initialise(): Promise<void> {
    const { resources: r, trustDomain } = this.opts;
    const secret = this.opts.joinSecret ?? newJoinSecret();
    const { ca, keyPem } = await InternalCA.createWithKey(trustDomain, { label: new Date(this.now()).toISOString() });
    const data = {
      'ca.crt': ca.certPem,
      'ca.key': keyPem,
      'bundle.json': JSON.stringify([{ certPem: ca.certPem }]),
      'trust-bundle.pem': ca.certPem,
      token: randomBytes(32).toString('base64url'),
      'controller-token': randomBytes(32).toString('base64url'),
      'join-secret-hash': await hashJoinSecret(secret),
    };
    try {
      await r.create(r.kind('Namespace'), undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: BOOTSTRAP_SECRET.namespace } });
    } catch (err) {
      if (!(err instanceof ApiError && err.reason === 'AlreadyExists')) throw err;
    }
    try {
      const { object: obj } = await r.create(r.kind('Secret'), BOOTSTRAP_SECRET.namespace, { apiVersion: 'v1', kind: 'Secret', metadata: { name: BOOTSTRAP_SECRET.name, namespace: BOOTSTRAP_SECRET.namespace }, type: 'Opaque', data: encode(data) });
      this.created = true;
      this.joinSecret = secret;
      await this.load(obj);
      this.opts.logger.info({ secret: `${BOOTSTRAP_SECRET.namespace}/${BOOTSTRAP_SECRET.name}` }, 'initialised the cluster: CA, tokens and join secret hash are in the store');
    } catch (err) {
      if (!(err instanceof ApiError && err.reason === 'AlreadyExists')) throw err;
      // Another node initialised the store first: use its bootstrap.
      const theirs = await this.read();
      if (!theirs) throw new BootstrapError('the cluster bootstrap was created and removed while this node started; start it again', { cause: err });
      await this.load(theirs);
    }
  }

  private async load(obj: ResourceObject): Promise<void> {
    const get = (k: string) => {
      const v = secretValue(obj, k);
      if (!v) throw new BootstrapError(`the cluster bootstrap ${BOOTSTRAP_SECRET.namespace}/${BOOTSTRAP_SECRET.name} has no "${k}"`);
      return v;
    };
    let entries: BundleEntry[];
    try {
      entries = JSON.parse(get('bundle.json')) as BundleEntry[];
      if (!Array.isArray(entries) || entries.some((e) => typeof e?.certPem !== 'string')) throw new Error('not a list of roots');
    } catch (err) {
      throw new BootstrapError(`the cluster bootstrap's bundle.json cannot be read (${(err as Error).message})`, { cause: err });
    }
    const certPem = get('ca.crt');
    if (!this.ca || this.ca.certPem !== certPem) this.ca = await InternalCA.load(this.opts.trustDomain, certPem, get('ca.key'), `the cluster CA in ${BOOTSTRAP_SECRET.namespace}/${BOOTSTRAP_SECRET.name}`);
    this.entries = entries;
    this.token = get('token');
    this.controllerToken = get('controller-token');
    this.joinSecretHash = get('join-secret-hash');
    this.resourceVersion = obj.metadata.resourceVersion ?? '';
  }

  /**
   * certPem is the trust bundle as served at /cluster/v1/cacerts and trusted by every listener: the
   * roots not yet retired, the signing root first. A retired root leaves it at its time on every node,
   * whether or not the store has been rewritten yet.
   */
  get certPem(): string {
    const t = this.now();
    return this.entries
      .filter((e) => !e.retireAt || Date.parse(e.retireAt) > t)
      .map((e) => e.certPem)
      .join('');
  }

  /** caHash is the hash a node token pins for the current bundle. */
  get caHash(): string {
    return caBundleHash(this.certPem);
  }

  /** The signing root's certificate. */
  get signingCertPem(): string {
    return this.ca.certPem;
  }

  /** checkJoinSecret tells whether a presented secret is the cluster's (constant-time, see verifyJoinSecret). */
  checkJoinSecret(secret: string): Promise<boolean> {
    return verifyJoinSecret(secret, this.joinSecretHash);
  }

  /** sign signs a node's certificate request with the current root. */
  sign(csrPem: string, ttlMs: number): Promise<SignedCertificate> {
    return this.ca.sign(csrPem, { ttlMs });
  }

  /** issue makes a key and a certificate for this node's own identity (a CertificateIssuer). */
  issue(id: string, opts: { ttlMs?: number; dnsNames?: string[] }): Promise<IssuedCertificate> {
    return this.ca.issue(id, opts);
  }

  /** issueServing makes the API's serving certificate, so that one kubeconfig CA fits every node. */
  issueServing(names: { dnsNames: string[]; ipAddresses: string[] }): Promise<IssuedCertificate> {
    return this.ca.issueServing(names);
  }

  /** onChange registers a callback for a new trust bundle or signing root (rotation, retirement). */
  onChange(fn: () => void): void {
    this.listeners.push(fn);
  }

  /** start reads the bootstrap again every pollMs, and notices roots reaching their retirement time. */
  start(): void {
    const every = this.opts.pollMs ?? 2_000;
    if (every <= 0) return;
    // One read at a time (a store without quorum may hold a read for seconds), and one warning per outage.
    let reading = false;
    let failing = false;
    this.timer = setInterval(() => {
      if (reading) return;
      reading = true;
      this.refresh()
        .then(() => {
          if (failing) this.opts.logger.info('reading the cluster bootstrap works again');
          failing = false;
        })
        .catch((err: Error) => {
          if (!failing) this.opts.logger.warn({ err: err.message }, 'reading the cluster bootstrap failed; the current CA stays in use');
          failing = true;
        })
        .finally(() => (reading = false));
    }, every);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private lastBundle?: string;

  /** refresh reads the bootstrap once, and tells the listeners when the bundle or the signing root changed. */
  async refresh(): Promise<void> {
    const before = { bundle: this.lastBundle ?? this.certPem, signer: this.ca.certPem };
    const obj = await this.read();
    if (obj && obj.metadata.resourceVersion !== this.resourceVersion) await this.load(obj);
    const after = { bundle: this.certPem, signer: this.ca.certPem };
    this.lastBundle = after.bundle;
    if (after.bundle !== before.bundle || after.signer !== before.signer) {
      this.opts.logger.info({ roots: this.entries.length }, 'the cluster trust bundle changed');
      for (const l of this.listeners) l();
    }
  }

  /**
   * rotate makes a new signing root. The old roots stay trusted for `overlapMs`, so certificates they
   * signed keep working while every node renews with the new root; after that they leave the bundle.
   * The write names the version read, so two rotations at once cannot lose one another's root.
   */
  async rotate(overlapMs: number): Promise<{ retireAt: string }> {
    const r = this.opts.resources;
    const obj = await this.read();
    if (!obj) throw new BootstrapError('the cluster bootstrap is gone from the store');
    await this.load(obj);
    const t = this.now();
    const retireAt = new Date(t + overlapMs).toISOString();
    const { ca, keyPem } = await InternalCA.createWithKey(this.opts.trustDomain, { label: new Date(t).toISOString() });
    const kept = this.entries.filter((e) => !e.retireAt || Date.parse(e.retireAt) > t).map((e) => ({ certPem: e.certPem, retireAt: e.retireAt && Date.parse(e.retireAt) < t + overlapMs ? e.retireAt : retireAt }));
    const entries: BundleEntry[] = [{ certPem: ca.certPem }, ...kept];
    const data = {
      ...(obj.data as Record<string, string>),
      ...encode({ 'ca.crt': ca.certPem, 'ca.key': keyPem, 'bundle.json': JSON.stringify(entries), 'trust-bundle.pem': entries.map((e) => e.certPem).join('') }),
    };
    const { object: updated } = await r.update(r.kind('Secret'), BOOTSTRAP_SECRET.namespace, BOOTSTRAP_SECRET.name, { ...obj, data, metadata: { ...obj.metadata, resourceVersion: obj.metadata.resourceVersion } });
    await this.load(updated);
    await this.refresh();
    return { retireAt };
  }
}

function encode(data: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')]));
}

/** chainsTo tells whether `certPem` was signed by one of the roots in `bundlePem`. */
export function chainsTo(certPem: string, bundlePem: string): boolean {
  const cert = new X509Certificate(certPem);
  return splitPem(bundlePem).some((root) => {
    const ca = new X509Certificate(root);
    return cert.checkIssued(ca) && cert.verify(ca.publicKey);
  });
}

/** splitPem cuts a PEM bundle into its certificates. */
export function splitPem(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [];
}

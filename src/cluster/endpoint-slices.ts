import { createHash } from 'node:crypto';
import { isIP } from 'node:net';

import type { Logger } from 'pino';

import { ApiError } from '../api/errors.js';
import { type Endpoint,ENDPOINT_SLICE_FUNCTION_LABEL, ENDPOINT_SLICE_MANAGED_BY_LABEL, ENDPOINT_SLICE_NODE_LABEL } from '../api/kinds/index.js';
import type { ResourceObject } from '../api/kinds/types.js';
import type { ResourceService } from '../api/resources.js';
import { Informer } from '../controllers/runtime/index.js';

/** The managed-by value of the slices a node writes about its own replicas (a label value has no '/', so the
 * controller's name is written the way Kubernetes writes endpointslice-controller.k8s.io). */
export const NODE_AGENT_MANAGER = 'node-agent.skiff.dev';
const NAME_MAX = 63;

/** One replica a node runs of a Function, as its slice lists it. */
export interface LocalReplica {
  ready: boolean;
}

export interface EndpointSliceWriterOptions {
  resources: ResourceService;
  logger: Logger;
  nodeName: string;
  /** This node's mesh address (Node.status.addresses InternalIP) and port, or undefined before it listens. */
  mesh: () => { host: string; port: number } | undefined;
  /** How long after its slice was deleted by another (the scheduler's sweep) the node writes it again (default 5 s). */
  rewriteDelayMs?: number;
  /** First wait before a failed write is tried again, doubled per failure up to 30 s (default 1 s). */
  retryMs?: number;
}

const RETRY_MAX_MS = 30_000;

/**
 * sliceName is `FUNCTION-NODE`, shortened to a DNS label with a hash of the whole when too long, so
 * that two long names never collide.
 */
export function sliceName(fn: string, node: string): string {
  const full = `${fn}-${node}`;
  if (full.length <= NAME_MAX) return full;
  const hash = createHash('sha256').update(full).digest('hex').slice(0, 10);
  return `${full.slice(0, NAME_MAX - hash.length - 1).replace(/[-.]+$/, '')}-${hash}`;
}

/** addressType of a mesh host: an IP literal's family, else a name. */
export function addressTypeOf(host: string): 'IPv4' | 'IPv6' | 'FQDN' {
  const v = isIP(host);
  return v === 4 ? 'IPv4' : v === 6 ? 'IPv6' : 'FQDN';
}

/**
 * EndpointSliceWriter keeps, per Function this node runs replicas of, one EndpointSlice in the
 * Function's namespace listing them at this node's mesh address. Gateways on every node route from
 * these slices, and every write reaches each of their watchers: a slice is written only when what it
 * says changed (compared with the informer's copy), and deleted when the node stops running the
 * Function. Writes of one Function are serialized; the last wanted state wins.
 */
export class EndpointSliceWriter {
  readonly informer: Informer;
  private readonly wanted = new Map<string, LocalReplica[]>();
  private readonly chains = new Map<string, Promise<void>>();
  private stopped = false;
  private readonly rewrites = new Map<string, NodeJS.Timeout>();
  private readonly retries = new Map<string, { timer?: NodeJS.Timeout; failures: number }>();

  constructor(private readonly opts: EndpointSliceWriterOptions) {
    this.informer = new Informer(opts.resources, opts.resources.kind('EndpointSlice'), opts.logger);
    // The scheduler removes the slices of a node it saw not ready; back, the node writes them again,
    // after a pause, so that a node still seen as not ready does not rewrite them in a loop.
    this.informer.addHandlers({
      onDelete: (o) => {
        if (o.metadata.labels?.[ENDPOINT_SLICE_NODE_LABEL] !== opts.nodeName) return;
        const fn = o.metadata.labels?.[ENDPOINT_SLICE_FUNCTION_LABEL];
        const ns = o.metadata.namespace!;
        const key = `${ns}/${fn}`;
        if (!fn || (this.wanted.get(key)?.length ?? 0) === 0 || this.stopped || this.rewrites.has(key)) return;
        const t = setTimeout(() => {
          this.rewrites.delete(key);
          if (!this.stopped) this.kick(key, ns, fn);
        }, opts.rewriteDelayMs ?? 5_000);
        t.unref();
        this.rewrites.set(key, t);
      },
    });
  }

  async start(): Promise<void> {
    await this.informer.start();
  }

  /** stop waits for the writes in flight; none starts after. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.rewrites.values()) clearTimeout(t);
    this.rewrites.clear();
    for (const r of this.retries.values()) clearTimeout(r.timer);
    this.retries.clear();
    await Promise.all([...this.chains.values()]);
    this.informer.stop();
  }

  /** set says which replicas of a Function run here now (none: the slice goes). */
  set(namespace: string, name: string, replicas: LocalReplica[]): void {
    const key = `${namespace}/${name}`;
    this.wanted.set(key, replicas);
    this.kick(key, namespace, name);
  }

  remove(namespace: string, name: string): void {
    this.set(namespace, name, []);
  }

  /** resync writes every wanted slice again if it differs (the mesh address became known). */
  resync(): void {
    for (const key of this.wanted.keys()) {
      const i = key.indexOf('/');
      this.kick(key, key.slice(0, i), key.slice(i + 1));
    }
  }

  /** settled resolves once the writes queued so far are done (tests). */
  async settled(): Promise<void> {
    await Promise.all([...this.chains.values()]);
  }

  /** prune deletes this node's slices of Functions that no longer exist (a node restarted after a delete). */
  async prune(): Promise<void> {
    const fnDef = this.opts.resources.kind('Function');
    for (const s of this.informer.list()) {
      if (s.metadata.labels?.[ENDPOINT_SLICE_NODE_LABEL] !== this.opts.nodeName || s.metadata.labels?.[ENDPOINT_SLICE_MANAGED_BY_LABEL] !== NODE_AGENT_MANAGER) continue;
      const fn = s.metadata.labels[ENDPOINT_SLICE_FUNCTION_LABEL];
      if (!fn) continue;
      const key = `${s.metadata.namespace}/${fn}`;
      if (this.wanted.has(key)) continue;
      if (!(await this.opts.resources.tryGet(fnDef, s.metadata.namespace, fn))) this.set(s.metadata.namespace!, fn, []);
    }
    await this.settled();
  }

  private kick(key: string, namespace: string, name: string): void {
    const prev = this.chains.get(key) ?? Promise.resolve();
    const next = prev
      .then(() => this.sync(key, namespace, name))
      .then(
        () => {
          const r = this.retries.get(key);
          if (r?.timer) r.failures = 0;
          else if (r) this.retries.delete(key);
        },
        (err: Error) => this.retry(key, namespace, name, err),
      );
    this.chains.set(key, next);
    void next.then(() => {
      if (this.chains.get(key) === next) this.chains.delete(key);
    });
  }

  /**
   * retry tries a failed write again later: nothing else would (a Wasm Function's slice is set once,
   * when it starts serving), and gateways of other nodes route only by what the slice says.
   */
  private retry(key: string, namespace: string, name: string, err: Error): void {
    const r = this.retries.get(key) ?? { failures: 0 };
    r.failures++;
    this.retries.set(key, r);
    if (this.stopped || r.timer) return;
    const delay = Math.min(RETRY_MAX_MS, (this.opts.retryMs ?? 1_000) * 2 ** (r.failures - 1));
    this.opts.logger.warn({ fn: key, err: err.message, retryInMs: delay }, 'writing the EndpointSlice failed');
    r.timer = setTimeout(() => {
      r.timer = undefined;
      if (!this.stopped) this.kick(key, namespace, name);
    }, delay);
    r.timer.unref();
  }

  private async sync(key: string, namespace: string, name: string): Promise<void> {
    if (this.stopped) return;
    const replicas = this.wanted.get(key) ?? [];
    const def = this.opts.resources.kind('EndpointSlice');
    const sname = sliceName(name, this.opts.nodeName);
    const existing = this.informer.get(`${namespace}/${sname}`) ?? (await this.opts.resources.tryGet(def, namespace, sname));
    const mesh = this.opts.mesh();
    if (replicas.length === 0 || !mesh) {
      if (replicas.length === 0) this.wanted.delete(key);
      if (!existing) return;
      try {
        await this.opts.resources.delete(def, namespace, sname);
      } catch (err) {
        if (!(err instanceof ApiError && err.reason === 'NotFound')) throw err;
      }
      return;
    }
    const fn = await this.opts.resources.tryGet(this.opts.resources.kind('Function'), namespace, name);
    // The Function is gone: its slice goes with it (the API does not collect owner references).
    if (!fn) {
      this.wanted.set(key, []);
      return this.sync(key, namespace, name);
    }
    const body = this.slice(fn, sname, replicas, mesh);
    if (existing && sameSlice(existing, body)) return;
    try {
      if (existing) await this.opts.resources.update(def, namespace, sname, { ...body, metadata: { ...body.metadata, resourceVersion: existing.metadata.resourceVersion } });
      else await this.opts.resources.create(def, namespace, body);
    } catch (err) {
      // Another write won (a restart's leftover, a create racing the informer): try once more from a fresh read.
      if (err instanceof ApiError && (err.reason === 'Conflict' || err.reason === 'AlreadyExists')) {
        const fresh = await this.opts.resources.tryGet(def, namespace, sname);
        if (fresh && sameSlice(fresh, body)) return;
        if (fresh) await this.opts.resources.update(def, namespace, sname, { ...body, metadata: { ...body.metadata, resourceVersion: fresh.metadata.resourceVersion } });
        else await this.opts.resources.create(def, namespace, body);
        return;
      }
      throw err;
    }
  }

  private slice(fn: ResourceObject, sname: string, replicas: LocalReplica[], mesh: { host: string; port: number }): ResourceObject {
    const ns = fn.metadata.namespace!;
    const endpoints: Endpoint[] = replicas.map((r) => ({
      addresses: [mesh.host],
      conditions: { ready: r.ready, serving: r.ready },
      nodeName: this.opts.nodeName,
      targetRef: { kind: 'Function', namespace: ns, name: fn.metadata.name, uid: fn.metadata.uid },
    }));
    return {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name: sname,
        namespace: ns,
        labels: { [ENDPOINT_SLICE_FUNCTION_LABEL]: fn.metadata.name, [ENDPOINT_SLICE_NODE_LABEL]: this.opts.nodeName, [ENDPOINT_SLICE_MANAGED_BY_LABEL]: NODE_AGENT_MANAGER },
        ownerReferences: [{ apiVersion: fn.apiVersion, kind: 'Function', name: fn.metadata.name, uid: fn.metadata.uid, controller: true, blockOwnerDeletion: true }],
      },
      addressType: addressTypeOf(mesh.host),
      endpoints,
      ports: [{ name: 'mesh', port: mesh.port, protocol: 'TCP' }],
    } as ResourceObject;
  }
}

function sameSlice(a: ResourceObject, b: ResourceObject): boolean {
  const pick = (o: ResourceObject) => JSON.stringify([o.metadata.labels ?? {}, o.metadata.ownerReferences ?? [], o.addressType, o.endpoints ?? [], o.ports ?? []]);
  return pick(a) === pick(b);
}

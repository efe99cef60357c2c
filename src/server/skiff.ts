import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { ApiServer } from '../api/server.js';
import { ResourceService } from '../api/resources.js';
import { builtinKinds } from '../api/kinds/index.js';
import { ApiError } from '../api/errors.js';
import { openStore, type Store } from '../store/index.js';
import { FunctionInvoker, FunctionLogs } from '../functions/index.js';
import { FunctionController } from '../controllers/function-controller.js';
import { RouteController } from '../controllers/route-controller.js';
import { referenceWarnings } from '../controllers/references.js';
import { EventGarbageCollector } from '../controllers/event-gc.js';
import { PolicyController } from '../controllers/policy-controller.js';
import { DecisionLogger } from '../policy/index.js';
import { Gateway, InternalCA, WorkloadIdentity, routeFunctionRefs, spiffeId } from '../gateway/index.js';
import { hostname } from 'node:os';
import { Runtime } from '../runtime/index.js';
import { readManifests, resolveModuleRef } from '../manifests/index.js';
import { VERSION } from '../version.js';
import { SkiffError } from '../util/errors.js';
import { ensureDataDir, ensureToken } from './data-dir.js';
import { AdmissionPlatform } from '../admission/index.js';
import { DEFAULT_FUNCTION_MAXIMA, HostDirs, UpstreamGuard, type FunctionMaxima } from '../security/index.js';

export interface Address {
  host: string;
  port: number;
}

export interface SkiffOptions {
  dataDir: string;
  api: Address;
  gateway: Address;
  /** Store endpoint URL (sqlite://PATH, memory://); default SQLite in the data dir. */
  store?: string;
  /** Apply examples/hello on start. */
  demo?: boolean;
  logger: Logger;
  /** Sandbox worker threads. */
  workers?: number;
  /** A second gateway listener for node-to-node traffic over mutual TLS (SPIFFE identities from the internal CA). */
  mesh?: Address;
  /** SPIFFE trust domain of the internal CA (default skiff.local). */
  trustDomain?: string;
  /** One JSON access-log line per gateway request (default true). */
  accessLog?: boolean;
  /** Record every policy decision the platform makes (gateway authorization, admission) as NDJSON here. */
  decisionLog?: { path: string; mask?: string[] };
  /** Host directories Functions may mount and the server may read on a resource's behalf (default: none). */
  hostDirs?: HostDirs;
  /** Which otherwise refused network targets Services and URL sources may reach (default: none). */
  upstreams?: UpstreamGuard;
  /** Ceilings on Function limits, enforced at admission. */
  functionMaxima?: FunctionMaxima;
}

const HISTORY_KEPT = 10_000;

/** nodeName is this machine's name in the form a SPIFFE path segment accepts. */
function nodeName(): string {
  return hostname().toLowerCase().replace(/[^a-z0-9.-]/g, '-') || 'node';
}

/** ListenError: a listener could not bind; the message says which flag to change. */
export class ListenError extends SkiffError {
  constructor(flag: string, addr: Address, cause: NodeJS.ErrnoException) {
    const why =
      cause.code === 'EADDRINUSE'
        ? 'the address is already in use (another Skiff, or another program, listens there)'
        : cause.code === 'EACCES'
          ? 'permission denied (ports below 1024 need privileges)'
          : cause.code === 'EADDRNOTAVAIL'
            ? 'no network interface has that address'
            : cause.message;
    super('listen_failed', `cannot listen on ${addr.host}:${addr.port}: ${why}; choose another address with ${flag} HOST:PORT (port 0 picks a free one)`, { cause });
  }
}

async function listenOr(flag: string, addr: Address, listen: () => Promise<Address>): Promise<Address> {
  try {
    return await listen();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code) throw new ListenError(flag, addr, err as NodeJS.ErrnoException);
    throw err;
  }
}

/**
 * Skiff is one running platform: the store, the resource API, the controllers, the sandbox runtime
 * and the gateway, started in dependency order and stopped in reverse.
 */
export class Skiff {
  apiAddress!: Address;
  gatewayAddress!: Address;
  meshAddress?: Address;
  /** This node's workload identity (`spiffe://TRUST_DOMAIN/ns/skiff-system/node/HOSTNAME`). */
  identity?: WorkloadIdentity;
  private store!: Store;
  private runtime!: Runtime;
  private api!: ApiServer;
  private gateway!: Gateway;
  private functions!: FunctionController;
  private routes!: RouteController;
  private policies!: PolicyController;
  private admission?: AdmissionPlatform;
  private compactor?: NodeJS.Timeout;
  private eventGc?: EventGarbageCollector;
  private stopping?: Promise<void>;

  /** The operator's grants (see src/security): every area that touches the host on a resource's behalf asks these. */
  readonly hostDirs: HostDirs;
  readonly upstreams: UpstreamGuard;
  readonly functionMaxima: FunctionMaxima;

  private constructor(private readonly opts: SkiffOptions) {
    this.hostDirs = opts.hostDirs ?? HostDirs.none();
    this.upstreams = opts.upstreams ?? UpstreamGuard.from([]);
    this.functionMaxima = opts.functionMaxima ?? { ...DEFAULT_FUNCTION_MAXIMA };
  }

  static async start(opts: SkiffOptions): Promise<Skiff> {
    const s = new Skiff(opts);
    try {
      await s.boot();
    } catch (err) {
      await s.stop().catch(() => {});
      throw err;
    }
    return s;
  }

  private async boot(): Promise<void> {
    const { logger } = this.opts;
    const dataDir = resolve(this.opts.dataDir);
    ensureDataDir(dataDir);
    const token = ensureToken(dataDir, 'token');
    const controllerToken = ensureToken(dataDir, 'controller-token');
    this.store = await openStore(this.opts.store, dataDir);
    const resources = new ResourceService(this.store, builtinKinds());
    await this.ensureNamespace(resources, 'default');

    const logs = new FunctionLogs();
    this.runtime = new Runtime({ workers: this.opts.workers, logger });
    const invoker = new FunctionInvoker(this.runtime, logs, logger, { name: this.opts.gateway.host, port: String(this.opts.gateway.port) });
    const decisionLog = this.opts.decisionLog ? new DecisionLogger({ path: resolve(dataDir, this.opts.decisionLog.path), mask: this.opts.decisionLog.mask }) : undefined;
    this.policies = new PolicyController({ resources, logger, decisionLog, upstreams: this.upstreams });
    this.gateway = new Gateway({ functions: invoker, logger, authorizer: this.policies.authorizer, accessLog: this.opts.accessLog !== false });
    this.functions = new FunctionController({ resources, compiler: this.runtime, invoker, logger, baseDir: process.cwd() });
    this.routes = new RouteController({ resources, gateway: this.gateway, functions: this.functions.informer, logger, functionRefs: routeFunctionRefs });
    resources.addAdmissionHook(referenceWarnings(this.routes.routes));
    this.admission = new AdmissionPlatform({ resources, logger, decisionLog });
    resources.addAdmissionHook(this.admission.hook);

    await this.policies.start();
    await this.functions.start();
    await this.routes.start();
    await this.admission.start();

    this.api = new ApiServer({ resources, logger, version: VERSION, token, controllerToken, logs });
    this.apiAddress = await listenOr('--api', this.opts.api, () => this.api.listen(this.opts.api.host, this.opts.api.port));
    this.gatewayAddress = await listenOr('--gateway', this.opts.gateway, () => this.gateway.listen(this.opts.gateway.host, this.opts.gateway.port));
    this.upstreams.addOwnListener(this.apiAddress);
    this.upstreams.addOwnListener(this.gatewayAddress);

    // The internal CA lives in the data dir; the node's short-lived certificate is renewed before it expires.
    const ca = InternalCA.loadOrCreate({ trustDomain: this.opts.trustDomain ?? 'skiff.local', dir: join(dataDir, 'ca') });
    this.identity = new WorkloadIdentity(ca, spiffeId(ca.trustDomain, 'skiff-system', nodeName(), 'node'));
    this.gateway.useIdentity(this.identity);
    if (this.opts.mesh) {
      const mesh = this.opts.mesh;
      this.meshAddress = await listenOr('--mesh', mesh, () => this.gateway.listenSecure(mesh.host, mesh.port, this.identity!, { requireClientCert: true }));
      this.upstreams.addOwnListener(this.meshAddress);
    }

    if (this.opts.demo) await this.applyDemo(resources);
    await this.settle(5_000);

    this.eventGc = new EventGarbageCollector(resources, logger);
    this.eventGc.start();
    this.compactor = setInterval(() => {
      this.store
        .revision()
        .then((rev) => (rev > HISTORY_KEPT ? this.store.compact(rev - HISTORY_KEPT) : undefined))
        .catch((err) => logger.warn({ err: (err as Error).message }, 'compaction failed'));
    }, 60_000);
    this.compactor.unref();
  }

  /** settle waits (bounded) until the controllers have nothing left to do: used before announcing readiness. */
  async settle(timeoutMs: number): Promise<void> {
    const t = new Promise<void>((r) => setTimeout(r, timeoutMs).unref());
    await Promise.race([Promise.all([this.policies.controller.idle(), this.functions.controller.idle(), this.routes.settled()]), t]);
  }

  /** stop drains the gateway and the API, stops the controllers, the runtime, then closes the store. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      if (this.compactor) clearInterval(this.compactor);
      this.identity?.close();
      this.eventGc?.stop();
      await this.gateway?.close().catch(() => {});
      await this.api?.close().catch(() => {});
      await this.admission?.stop().catch(() => {});
      await this.routes?.stop().catch(() => {});
      await this.functions?.stop().catch(() => {});
      await this.policies?.stop().catch(() => {});
      await this.runtime?.close().catch(() => {});
      await this.store?.close();
    })();
    return this.stopping;
  }

  private async ensureNamespace(resources: ResourceService, name: string): Promise<void> {
    try {
      await resources.create(resources.kind('Namespace'), undefined, { apiVersion: 'skiff.dev/v1', kind: 'Namespace', metadata: { name } });
    } catch (err) {
      if (!(err instanceof ApiError && err.reason === 'AlreadyExists')) throw err;
    }
  }

  private async applyDemo(resources: ResourceService): Promise<void> {
    const dir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples', 'hello');
    for (const item of readManifests([dir])) {
      const obj = item.object;
      resolveModuleRef(obj, item.baseDir);
      const def = resources.kind(String(obj.kind));
      const ns = def.namespaced ? (obj.metadata?.namespace ?? 'default') : undefined;
      const live = await resources.tryGet(def, ns, obj.metadata.name);
      if (live) await resources.update(def, ns, obj.metadata.name, obj);
      else await resources.create(def, ns, obj);
    }
  }
}

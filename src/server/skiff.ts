import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import type { PeerCertificate } from 'node:tls';
import { fileURLToPath } from 'node:url';

import type { Logger } from 'pino';

import { AdmissionPlatform, ImagePolicyAdmission, imagePolicyValidator } from '../admission/index.js';
import { TokenAuthenticator } from '../api/authn.js';
import { BlobEndpoint } from '../api/blob-endpoint.js';
import { ApiError } from '../api/errors.js';
import { builtinKinds } from '../api/kinds/index.js';
import { BLOB_REF_PREFIX, BUILTIN_RUNTIME_CLASSES, MODULE_SOURCE_ANNOTATION } from '../api/kinds/index.js';
import type { ResourceObject } from '../api/kinds/types.js';
import { SKIFF_APPLY_MANAGER } from '../api/patch/field-manager.js';
import { ResourceService } from '../api/resources.js';
import { ApiServer } from '../api/server.js';
import type { Clock } from '../autoscaling/clock.js';
import { validateScaleSpec } from '../autoscaling/policy.js';
import { guardedFetchJson } from '../autoscaling/triggers/index.js';
import { type BootstrapMode, ClusterAuthority, clusterMount, defaultNodeName, type ElectionTimings, EndpointSliceWriter, followCaRotation, formatNodeToken, joinCluster, type Joined, joinSecretOf, LEADER_LEASE, Leadership, type LeaderTask, matchesNode, NODE_CERT_TTL_MS, NodeAgent, nodeLeaseIsLive, NodeLifecycleController, NodePeerCheck, parseNodeToken, renewWhenNodeRecreated, Scheduler } from '../cluster/index.js';
import { FunctionAutoscaler, placedWorkloadTarget, wasmTarget, workloadTarget } from '../controllers/autoscaler/index.js';
import { BlobGarbageCollector, imageFunctionDigests } from '../controllers/blob-gc.js';
import { BundleSource } from '../controllers/bundle-source.js';
import { EventGarbageCollector } from '../controllers/event-gc.js';
import { FunctionController } from '../controllers/function-controller.js';
import { PolicyBundleController } from '../controllers/policy-bundle-controller.js';
import { PolicyController } from '../controllers/policy-controller.js';
import { referenceWarnings } from '../controllers/references.js';
import { RouteController } from '../controllers/route-controller.js';
import { type Controller, Informer } from '../controllers/runtime/index.js';
import { WorkloadController } from '../controllers/workload-controller.js';
import { Dashboard, DecisionRing, SampleRing } from '../dashboard/index.js';
import { functionGrantsHook, FunctionInvoker, FunctionLogs, ModuleSource, moduleSourceAdmission, secretPullCredentials, sha256Digest } from '../functions/index.js';
import { Gateway, gatewayGrantsHook, gatewayKindValidators, InternalCA, LazyIdentity, type PathOptions,routeFunctionRefs, spiffeId, WorkloadIdentity } from '../gateway/index.js';
import { RolloutController } from '../gitops/rollout/index.js';
import { ArtifactStore, GitRepositoryController, gitUrlGuard, gitWebhookMount, RECONCILE_AT_ANNOTATION, type WebhookSources } from '../gitops/source/index.js';
import { SyncController } from '../gitops/sync/index.js';
import { readManifests, resolveModuleRef } from '../manifests/index.js';
import { MetricsExporter } from '../observability/index.js';
import { OtlpTracer, type TracingConfig } from '../observability/tracing/index.js';
import { createRegistryClient, type CredentialProvider, OciCache, type RegistryClient } from '../oci/index.js';
import { DecisionLogger, policyKindValidators } from '../policy/index.js';
import { Runtime } from '../runtime/index.js';
import { DEFAULT_FUNCTION_MAXIMA, type FunctionMaxima,HostDirs, UpstreamGuard } from '../security/index.js';
import { SigstoreVerifier } from '../signing/index.js';
import { BlobError, BlobStore, type EtcdTls, InstrumentedStore, openStore, type Store } from '../store/index.js';
import { SkiffError } from '../util/errors.js';
import { VERSION } from '../version.js';
import { BwrapHandler, ImageStore, QemuHandler, RuncHandler, type RuntimeHandler, WorkloadManager } from '../workloads/index.js';

import { type ApiCertificate, ensureApiCertificate, servingNames } from './api-tls.js';
import { clientUrl, ensureDataDir, ensureToken, writeKubeconfig, writeSecretFile } from './data-dir.js';
import { fetchBlobFromPeers } from './peer-blobs.js';
import { MeshPeerSampler } from './peer-samples.js';
import { RemoteEndpointFeed } from './remote-endpoints.js';

export interface Address {
  host: string;
  port: number;
}

export interface SkiffOptions {
  dataDir: string;
  api: Address;
  gateway: Address;
  /** Store endpoint URL (sqlite://PATH, memory://, etcd://HOST:PORT[,HOST:PORT]/PREFIX); default SQLite in the data dir. */
  store?: string;
  /** For an `etcd+https://` store: the CA of the members' certificates and this node's client certificate and key (PEM). */
  storeTls?: EtcdTls;
  /** Apply examples/hello on start. */
  demo?: boolean;
  logger: Logger;
  /** Sandbox worker threads. */
  workers?: number;
  /** How often the autoscaler decides (default 2 s); 0 leaves it to `autoscaler.tick()` (tests, the benchmark). */
  autoscalerTickMs?: number;
  /** The autoscaler's clock (default: wall-clock time); the benchmark replays traffic on a compressed one. */
  autoscalerClock?: Clock;
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
  /** Gateway request path normalisation (escaped slashes, slash merging); Envoy's defaults when unset. */
  gatewayPaths?: Partial<PathOptions>;
  /** Unreferenced uploaded modules are removed once older than this (default one hour). */
  blobGraceMs?: number;
  /** How the server reaches OCI registries (oci:// modules): plain-HTTP hosts, extra CAs, default credentials. */
  registries?: RegistrySettings;
  /** Where OpenTelemetry spans go (OTLP/HTTP) and which are kept; tracing is off without it. */
  tracing?: TracingConfig;
  /** This node's name (`skiff up --node-name`); default the host name lower-cased. */
  nodeName?: string;
  /** A listener serving only /metrics (`--metrics`); without a token on loopback, with the API's token elsewhere. */
  metrics?: Address;
  /** Leader election timings (`--leader-elect-lease-duration`, `-renew-deadline`, `-retry-period`); client-go's defaults. */
  leaderElection?: ElectionTimings;
  /** Node heartbeats (`--node-lease-duration`, `--node-monitor-grace-period`); the agent renews every quarter of the lease, as kubelet does. */
  nodeHeartbeat?: { leaseDurationSeconds?: number; graceMs?: number };
  /** How this node comes to a shared (etcd) store: `skiff up --cluster-init`, `--join URL --token TOKEN`. */
  cluster?: ClusterJoinOptions;
}

/** ClusterJoinOptions: `--cluster-init [--token SECRET]` or `--join URL --token TOKEN`. */
export interface ClusterJoinOptions {
  init?: boolean;
  /** An existing node's API (https://HOST:PORT). */
  join?: string;
  /** With `join`, the node token; with `init`, the join secret to use instead of a random one. */
  token?: string;
}

/** RegistrySettings: `skiff up --insecure-registry`, `--registry-ca`, `--registry-config`. */
export interface RegistrySettings {
  /** `HOST:PORT` registries reached over plain HTTP. */
  insecure?: string[];
  /** PEM CA certificates trusted beside the system's. */
  ca?: string;
  /** Credentials used when a Function names no pull secret for the registry (a docker config.json). */
  credentials?: CredentialProvider;
}

const HISTORY_KEPT = 10_000;
/** The leader-only controllers, by the names the leader scope knows them under. */
const LEADER_TASKS = { nodeLifecycle: 'node-lifecycle', eventGc: 'event-gc', audit: 'admission-audit', gitSources: 'gitrepositories', syncs: 'syncs', rollouts: 'rollouts', compactor: 'store-compactor', scheduler: 'scheduler' } as const;
/** The mesh listener's port in a cluster when `--mesh` is not given (and `--api` names a fixed port). */
export const DEFAULT_MESH_PORT = 7443;

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
  metricsAddress?: Address;
  /** This node's name: its Node object, its heartbeat Lease and its SPIFFE identity. */
  readonly nodeName: string;
  /** This node's workload identity (`spiffe://TRUST_DOMAIN/ns/skiff-system/node/HOSTNAME`). */
  identity?: LazyIdentity;
  private store!: Store;
  private runtime!: Runtime;
  private api!: ApiServer;
  private gateway!: Gateway;
  private functions!: FunctionController;
  private routes!: RouteController;
  private workloads?: WorkloadController;
  private tracer?: OtlpTracer;
  private workloadManager?: WorkloadManager;
  /** Decides every Function's replicas; public for tests and the benchmark, which drive its clock. */
  autoscaler?: FunctionAutoscaler;
  private images?: ImageStore;
  private policies!: PolicyController;
  private bundles!: PolicyBundleController;
  /** Who runs the once-per-cluster controllers: this node's elector and the controllers it starts when it leads. */
  leadership?: Leadership;
  /** This node's view of the GitRepositories, for the webhook on any node. */
  private gitRepos?: Informer;
  private admission?: AdmissionPlatform;
  private imagePolicies?: ImagePolicyAdmission;
  private blobGc?: BlobGarbageCollector;
  private blobs!: BlobStore;
  private registry?: RegistryClient;
  private stopping?: Promise<void>;
  private dashboard?: Dashboard;
  private metrics?: MetricsExporter;
  private handlers?: Map<string, RuntimeHandler>;
  private nodeAgent?: NodeAgent;
  /** In a cluster, every Node: this node's labels (Wasm placement), mesh peers, other nodes' addresses. */
  private nodes?: Informer;
  /** The cluster CA, tokens and join secret from the store (clustered nodes only). */
  clusterAuthority?: ClusterAuthority;
  private stopFollowingCa?: () => void;
  private slices?: EndpointSliceWriter;
  private remoteEndpoints?: RemoteEndpointFeed;

  /** The operator's grants (see src/security): every area that touches the host on a resource's behalf asks these. */
  readonly hostDirs: HostDirs;
  readonly upstreams: UpstreamGuard;
  readonly functionMaxima: FunctionMaxima;

  /**
   * The Git sources while this node leads (the controller runs on the leader only): `artifacts`,
   * `refresh(ns, name)`, `get(ns, name)`.
   */
  get gitSources(): GitRepositoryController | undefined {
    return this.leadership?.current<GitRepositoryController>(LEADER_TASKS.gitSources);
  }

  /** Whether this node is one of several: its store is shared (etcd), so other nodes may run beside it. */
  get clustered(): boolean {
    return /^etcd(\+https?)?:/.test(this.opts.store ?? '');
  }

  private constructor(private readonly opts: SkiffOptions) {
    this.hostDirs = opts.hostDirs ?? HostDirs.none();
    this.upstreams = opts.upstreams ?? UpstreamGuard.from([]);
    this.functionMaxima = opts.functionMaxima ?? { ...DEFAULT_FUNCTION_MAXIMA };
    this.nodeName = opts.nodeName ?? defaultNodeName();
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
    const trustDomain = this.opts.trustDomain ?? 'skiff.local';
    const clustered = this.clustered;
    // A join is checked before anything is written: a wrong token or a CA that does not match it
    // leaves the data directory as it was. A node that joined before has its node token and restarts.
    const joined = clustered && this.opts.cluster?.join && !existsSync(join(dataDir, 'node-token')) ? await joinCluster({ url: this.opts.cluster.join, token: this.opts.cluster.token ?? '', nodeName: this.nodeName, trustDomain }) : undefined;
    ensureDataDir(dataDir);
    let token = '';
    let controllerToken = '';
    let apiCert: Promise<ApiCertificate> | undefined;
    if (!clustered) {
      token = ensureToken(dataDir, 'token');
      controllerToken = ensureToken(dataDir, 'controller-token');
      // Started now, so that on a first start the certificate is signed while the store opens and the
      // controllers sync; later starts read the files back without loading the certificate library.
      apiCert = ensureApiCertificate(dataDir, trustDomain, servingNames(this.opts.api.host));
      apiCert.catch(() => undefined);
    }
    // Counted behind the Store interface, so every backend reports the same operations.
    const store = new InstrumentedStore(await openStore(this.opts.store, dataDir, { tls: this.opts.storeTls }));
    this.store = store;
    // The gateway's compilers check Routes and Services, the Rego parser Policies, at admission; the API imports neither.
    const resources = new ResourceService(this.store, builtinKinds({ ...gatewayKindValidators, ...policyKindValidators, ImagePolicy: imagePolicyValidator }, { scaleValidator: (fn) => validateScaleSpec(fn.spec?.scale) }));
    if (clustered) {
      const authority = await this.openClusterAuthority(resources, dataDir, trustDomain, joined);
      token = authority.token;
      controllerToken = authority.controllerToken;
      const names = servingNames(this.opts.api.host);
      apiCert = authority.issueServing(names).then((c) => ({ caPem: authority.certPem, certPem: c.certPem, keyPem: c.keyPem }));
    }
    await this.ensureNamespace(resources, 'default');
    await this.ensureNamespace(resources, LEADER_LEASE.namespace);
    // Built first so that bad timings stop the start; the controllers it runs are registered below.
    const leadership = new Leadership({ resources, store, nodeName: this.nodeName, logger, ...this.opts.leaderElection });
    this.leadership = leadership;
    await this.ensureRuntimeClasses(resources);

    this.blobs = new BlobStore({ dir: join(dataDir, 'blobs') });
    await this.blobs.open();
    // One registry client and one content-addressed cache for every consumer of OCI artifacts.
    const reg = this.opts.registries ?? {};
    const ociCache = new OciCache({ dataDir });
    this.registry = createRegistryClient({ upstreams: this.upstreams, insecure: reg.insecure, ca: reg.ca, credentials: reg.credentials, cache: ociCache });
    // In a cluster an uploaded module may sit on the node whose API received it: others fetch it over the mesh.
    const peerBlobs = this.clustered ? (hex: string, max: number) => this.fetchPeerBlob(hex, max) : undefined;
    const modules = new ModuleSource({ blobs: this.blobs, hostDirs: this.hostDirs, upstreams: this.upstreams, registry: this.registry, pullSecrets: secretPullCredentials(resources), verifyArtifact: (ref, digest) => this.verifyArtifact(ref, digest), peerBlobs });

    const logs = new FunctionLogs();
    this.runtime = new Runtime({ workers: this.opts.workers, logger });
    const functionGrants = { hostDirs: this.hostDirs, maxima: this.functionMaxima };
    const invoker = new FunctionInvoker(this.runtime, logs, logger, { name: this.opts.gateway.host, port: String(this.opts.gateway.port) }, functionGrants);
    const decisionLog = this.opts.decisionLog ? new DecisionLogger({ path: resolve(dataDir, this.opts.decisionLog.path), mask: this.opts.decisionLog.mask }) : undefined;
    const decisions = new DecisionRing();
    this.policies = new PolicyController({ resources, logger, decisionLog, upstreams: this.upstreams, onDecision: decisions.fromAuthorizer });
    this.bundles = new PolicyBundleController({ resources, logger, policies: this.policies, dir: join(dataDir, 'bundles'), source: new BundleSource({ upstreams: this.upstreams, registry: this.registry, maxBytes: 16 * 1024 * 1024 }) });
    this.gateway = new Gateway({ functions: invoker, logger, authorizer: this.policies.authorizer, accessLog: this.opts.accessLog !== false, paths: this.opts.gatewayPaths, upstreams: this.upstreams, hostDirs: this.hostDirs });
    // The OTLP endpoint is an outbound connection the operator chose, so it needs no --allow-upstream grant.
    if (this.opts.tracing) {
      this.tracer = new OtlpTracer({ config: this.opts.tracing, serviceVersion: VERSION, logger });
      // Not the URL or headers: they may hold credentials.
      logger.info({ protocol: this.opts.tracing.protocol, sampler: this.opts.tracing.sampler }, 'sending traces over OTLP');
    }
    this.gateway.useTracer(this.tracer);
    // In a cluster a Function with no replica here is forwarded to a node that has one (before the
    // routes compile, which capture the other nodes' table).
    const blobs = this.blobs;
    const remote = this.clustered ? this.gateway.useMesh({ trustDomain, node: this.nodeName, blobs: (hex) => blobs.get(hex).catch((err: unknown) => (err instanceof BlobError && err.code === 'blob_not_found' ? undefined : Promise.reject(err))), samples: () => this.autoscaler?.samples() ?? {} }) : undefined;
    invoker.useTracer(this.tracer);
    // In a cluster each node lists what it runs in EndpointSlices, and loads only the Wasm Functions
    // whose node selector and affinity match its own Node's labels.
    if (clustered) {
      this.slices = new EndpointSliceWriter({ resources, logger, nodeName: this.nodeName, mesh: () => this.meshAddress });
      await this.slices.start();
      this.nodes = new Informer(resources, resources.kind('Node'), logger);
      await this.nodes.start();
    }
    const slices = this.slices;
    const nodes = this.nodes;
    const nodeName = this.nodeName;
    this.functions = new FunctionController({
      resources,
      compiler: this.runtime,
      invoker,
      logger,
      modules,
      ...(nodes && slices
        ? {
            eligible: (fn: ResourceObject) => {
              const rules = { nodeSelector: fn.spec?.nodeSelector, affinity: fn.spec?.affinity };
              if (!rules.nodeSelector && !rules.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution) return true;
              const me = nodes.get(nodeName);
              // Until this node has registered, its labels are unknown: the registration requeues.
              return me !== undefined && matchesNode(rules, { name: nodeName, labels: me.metadata.labels ?? {} });
            },
            serving: (ns: string, name: string, on: boolean) => slices.set(ns, name, on ? [{ ready: true }] : []),
          }
        : {}),
    });
    if (nodes) {
      const functions = this.functions;
      const mine = (o: ResourceObject) => o.metadata.name === nodeName;
      nodes.addHandlers({ onAdd: (o) => (mine(o) ? functions.requeueAll() : undefined), onUpdate: (a, b) => (mine(b) && JSON.stringify(a.metadata.labels) !== JSON.stringify(b.metadata.labels) ? functions.requeueAll() : undefined) });
    }
    this.routes = new RouteController({ resources, gateway: this.gateway, functions: this.functions.informer, logger, functionRefs: routeFunctionRefs });
    this.workloads = this.composeWorkloads(resources, logger, dataDir, logs);
    // The handlers probe the host once and keep the answer: started now, the probes run beside the rest
    // of the start instead of delaying the node's registration.
    this.availableRuntimeClasses().catch(() => undefined);
    // The operator's grants come first: what no flag allows is refused (422) before policies look at it.
    resources.addAdmissionHook(functionGrantsHook(functionGrants));
    resources.addAdmissionHook(moduleSourceAdmission({ hostDirs: this.hostDirs, upstreams: this.upstreams, blobs: this.blobs }));
    resources.addAdmissionHook(gatewayGrantsHook({ upstreams: this.upstreams, hostDirs: this.hostDirs }));
    resources.addAdmissionHook(referenceWarnings(this.routes.routes));
    // Signatures first: an artifact nobody trusted is refused before constraints look at the object,
    // and constraints that ask external_data reuse the same verdicts.
    this.imagePolicies = new ImagePolicyAdmission({ resources, logger, decisionLog, verifier: new SigstoreVerifier({ registry: this.registry }) });
    resources.addAdmissionHook(this.imagePolicies.hook);
    const imagePolicies = this.imagePolicies;
    this.admission = new AdmissionPlatform({ resources, logger, decisionLog, externalData: (obj) => imagePolicies.externalData(obj), onReview: decisions.fromAdmission });
    this.admission.useTracer(this.tracer);
    resources.addAdmissionHook(this.admission.hook);

    await this.policies.start();
    await this.bundles.start();
    await this.functions.start();
    await this.routes.start();
    await this.workloads.start();
    const workloadController = this.workloads;
    this.autoscaler = new FunctionAutoscaler({
      resources,
      store,
      logger,
      gates: this.gateway.scaling,
      wasm: wasmTarget(invoker),
      // In a cluster the autoscaler decides the total and the scheduler splits it over the nodes.
      workloads: clustered ? placedWorkloadTarget((ns, name) => workloadController.informer.get(`${ns}/${name}`)) : workloadTarget(this.workloadManager!),
      tickMs: this.opts.autoscalerTickMs,
      clock: this.opts.autoscalerClock,
      readMetric: (name, labels) => this.metrics!.read(name, labels),
      fetchJson: guardedFetchJson(this.upstreams),
      // Gates, activation and this node's replicas on every node; decisions and their writes once.
      leader: { isLeader: () => leadership.isLeader(), resources: leadership.resources, store: leadership.fencedStore },
      // The leader decides on the traffic of every node's gateway, not only its own.
      peers: clustered ? new MeshPeerSampler({ peers: () => this.remoteEndpoints?.peers() ?? [], tls: () => this.identity?.clientOptions(), trustDomain, logger }) : undefined,
    });
    await this.autoscaler.start();
    await this.imagePolicies.start();
    await this.admission.start();
    this.registerLeaderTasks(leadership, logger, dataDir);
    // Any node answers the GitOps webhook; the fetch is the leader's.
    this.gitRepos = new Informer(resources, resources.kind('GitRepository'), logger);
    await this.gitRepos.start();

    const blobEndpoint = new BlobEndpoint({ blobs: this.blobs });
    const autoscaler = this.autoscaler;
    this.dashboard = new Dashboard({ samples: new SampleRing({ read: () => this.gateway.metrics(), replicas: () => autoscaler.stats() }), decisions, resources });
    this.dashboard.start();
    const controllers = [this.policies.controller, this.bundles.controller, this.functions.controller, this.routes.controller, workloadController.controller];
    const running = () => [...controllers, ...leadership.scope.running().flatMap((name) => leadership.current<LeaderTask & { controller?: Controller }>(name)?.controller ?? [])];
    this.metrics = new MetricsExporter({ gateway: this.gateway, runtime: this.runtime, policies: this.policies, admission: this.admission, store, controllers: running, workloads: this.workloadManager, autoscaler: this.autoscaler, leader: { stats: () => leadership.stats() } });
    const mounts = [this.dashboard.mount, this.metrics.mount(), gitWebhookMount({ sources: this.webhookSources(resources, leadership, logger), resources, logger })];
    const authority = this.clusterAuthority;
    if (authority) mounts.push(clusterMount({ authority, resources, logger, trustDomain, nodeIsLive: (name) => nodeLeaseIsLive(resources, name) }));
    this.api = new ApiServer({ resources, logger, version: VERSION, token, controllerToken, logs, blobs: blobEndpoint, mounts });
    // A lone node, or one restarted under its own name, wins at once: its controllers run before the API answers.
    // Only a shared (etcd) store can have another node: elsewhere a lease under another name is stale.
    await leadership.start(undefined, { sole: !this.clustered });
    const tls = await apiCert!;
    this.apiAddress = await listenOr('--api', this.opts.api, () => this.api.listen(this.opts.api.host, this.opts.api.port, tls));
    this.gatewayAddress = await listenOr('--gateway', this.opts.gateway, () => this.gateway.listen(this.opts.gateway.host, this.opts.gateway.port));
    // The gateway records its own listeners (plain and mesh) in the guard; the API's is recorded here.
    this.upstreams.addOwnListener(this.apiAddress);
    if (this.opts.metrics) {
      const m = this.opts.metrics;
      const exporter = this.metrics;
      const authn = new TokenAuthenticator(token, controllerToken);
      this.metricsAddress = await listenOr('--metrics', m, () => exporter.listen(m.host, m.port, authn));
      this.upstreams.addOwnListener(this.metricsAddress);
    }
    // kubectl and client-go send the token over TLS only: the kubeconfig names the HTTPS side of the port.
    writeKubeconfig(dataDir, clientUrl(this.apiAddress.host, this.apiAddress.port, 'https'), token, tls.caPem);

    // The internal CA lives in the data dir (it also signs the API's serving certificate); the node's
    // short-lived certificate is renewed before it expires. It is made when first needed: at start-up
    // for a mesh listener, otherwise by the first ISTIO_MUTUAL upstream connection.
    // Checked now, so that a bad --trust-domain stops the start rather than the first mTLS connection.
    const nodeId = spiffeId(trustDomain, 'skiff-system', this.nodeName, 'node');
    const onError = (err: Error) => logger.warn({ err: err.message }, 'renewing the node certificate failed; trying again shortly');
    // In a cluster the node certificate comes from the cluster CA (signed at the join, or here from the
    // store's CA), lives a day and is renewed with the same CA; a single node keeps its own CA on disk.
    const identity = new LazyIdentity(async () => {
      if (authority) {
        if (joined) return WorkloadIdentity.fromIssued(authority, nodeId, { certPem: joined.certPem, keyPem: joined.keyPem, notBefore: joined.notBefore, notAfter: joined.notAfter, spiffeId: nodeId }, { ttlMs: NODE_CERT_TTL_MS, onError });
        return WorkloadIdentity.create(authority, nodeId, { ttlMs: NODE_CERT_TTL_MS, onError });
      }
      const ca = await InternalCA.loadOrCreate({ trustDomain, dir: join(dataDir, 'ca') });
      return WorkloadIdentity.create(ca, nodeId, { onError });
    });
    this.identity = identity;
    this.gateway.useIdentity(identity);
    if (authority) {
      const api = this.api;
      const names = servingNames(this.opts.api.host);
      this.stopFollowingCa = followCaRotation({
        authority,
        identity,
        onError,
        renewApiCertificate: async () => api.useCertificate(await authority.issueServing(names)),
        bundleChanged: (bundle) => writeKubeconfig(dataDir, clientUrl(this.apiAddress.host, this.apiAddress.port, 'https'), token, bundle),
      });
      authority.start();
    }
    // In a cluster every node has a mesh listener: other nodes' gateways reach its replicas there.
    const meshOpt = this.opts.mesh ?? (clustered ? { host: this.opts.api.host, port: this.opts.api.port === 0 ? 0 : DEFAULT_MESH_PORT } : undefined);
    if (meshOpt) {
      const mesh = meshOpt;
      const id = await identity.get();
      // In a cluster only current nodes may call in (see NodePeerCheck), checked against this node's Node cache.
      const peers = authority && nodes ? new NodePeerCheck(trustDomain, (name) => nodes.get(name)) : undefined;
      const acceptPeer = peers
        ? (cert: PeerCertificate) => {
            const why = peers.reason(cert);
            if (why) logger.warn({ peer: cert.subjectaltname, why }, 'refused a mesh connection');
            return why === undefined;
          }
        : undefined;
      this.meshAddress = await listenOr('--mesh', mesh, () => this.gateway.listenSecure(mesh.host, mesh.port, id, { requireClientCert: true, acceptPeer }));
    }

    // This node's heartbeats, and the controller that notices when any node's stop.
    const meshAt = this.meshAddress;
    this.nodeAgent = new NodeAgent({
      resources,
      logger,
      nodeName: this.nodeName,
      version: VERSION,
      ...(this.opts.nodeHeartbeat?.leaseDurationSeconds ? { leaseDurationSeconds: this.opts.nodeHeartbeat.leaseDurationSeconds, renewMs: this.opts.nodeHeartbeat.leaseDurationSeconds * 250 } : {}),
      runtimeClasses: () => this.availableRuntimeClasses(),
      addresses: meshAt ? [{ type: 'InternalIP', address: meshAt.host }] : [],
      daemonEndpoints: { apiEndpoint: { Port: this.apiAddress.port }, ...(meshAt ? { meshEndpoint: { Port: meshAt.port } } : {}) },
    });
    await this.nodeAgent.start();
    // Peers refuse certificates older than this node's Node: a Node made anew needs a new one.
    if (authority && this.nodes) renewWhenNodeRecreated(this.nodes, this.nodeName, identity, onError);
    if (clustered) {
      // Slices wanted before the mesh listener had its address are written now; a restarted node's
      // slices of Functions deleted meanwhile go.
      this.slices?.resync();
      void this.slices?.prune().catch((err: Error) => logger.warn({ err: err.message }, 'pruning EndpointSlices failed'));
    }
    if (remote && meshAt && this.nodes && this.slices) {
      this.remoteEndpoints = new RemoteEndpointFeed({ nodes: this.nodes, slices: this.slices.informer, node: this.nodeName, remote });
      this.remoteEndpoints.start();
    }

    if (this.opts.demo) await this.applyDemo(resources);
    await this.settle(5_000);

    this.blobGc = new BlobGarbageCollector(resources, this.blobs, logger, this.opts.blobGraceMs, ociCache);
    const images = this.images;
    if (images) {
      // An unpacked image no Function runs is removed (after the image store's own grace period).
      this.blobGc.addSweep(async () => {
        const gone = await images.gc(await imageFunctionDigests(resources));
        if (gone.removed) logger.info({ removed: gone.removed, bytes: gone.bytes }, 'removed unpacked images no Function runs');
      });
    }
    // Artifacts no GitRepository (nor a Sync, through artifacts.addReferences) still names; the
    // artifacts are the leader's, made by its source controller.
    this.blobGc.addSweep(async () => {
      const removed = this.gitSources?.gc() ?? 0;
      if (removed) logger.info({ removed }, 'removed Git artifacts nothing references');
    });
    this.blobGc.start();
  }

  /**
   * registerLeaderTasks lists the controllers that run once per cluster, on the leader, writing through
   * its fenced ResourceService. Each entry builds a fresh controller per term of leadership; another
   * leader-only controller is one more `leadership.add(...)`.
   */
  private registerLeaderTasks(leadership: Leadership, logger: Logger, dataDir: string): void {
    const fenced = leadership.resources;
    const gitopsDir = join(dataDir, 'gitops');
    // One artifact store for every term: Syncs of the next term read what the previous one packed.
    const artifacts = new ArtifactStore({ dir: join(gitopsDir, 'artifacts') });
    artifacts.addReferences(() => leadership.current<SyncController>(LEADER_TASKS.syncs)?.artifactDigests() ?? []);
    leadership.add(LEADER_TASKS.nodeLifecycle, () => new NodeLifecycleController({ resources: fenced, logger, graceMs: this.opts.nodeHeartbeat?.graceMs }));
    // Placement of container and VM replicas over the nodes; a lone node runs them all without it.
    if (this.clustered) leadership.add(LEADER_TASKS.scheduler, () => new Scheduler({ resources: fenced, logger }));
    leadership.add(LEADER_TASKS.eventGc, () => new EventGarbageCollector(fenced, logger));
    leadership.add(LEADER_TASKS.audit, () => ({ start: () => this.admission!.startAudit(fenced), stop: () => this.admission!.stopAudit() }));
    // GitOps sources: mirrors and artifacts in DATA_DIR/gitops; fetches never hold up the start.
    leadership.add(LEADER_TASKS.gitSources, () => new GitRepositoryController({ resources: fenced, logger, dir: gitopsDir, artifacts, checkUrl: gitUrlGuard(this.upstreams, this.hostDirs) }));
    // GitOps Syncs apply through the same admission hooks (the fenced service shares them).
    leadership.add(LEADER_TASKS.syncs, () => new SyncController({ resources: fenced, logger, artifacts, blobs: this.blobs }));
    // Rollouts: canary Functions and Route weights driven by the gateway's per-Function counters.
    const gateway = this.gateway;
    leadership.add(
      LEADER_TASKS.rollouts,
      () =>
        new RolloutController({
          resources: fenced,
          logger,
          functions: this.functions.informer,
          routes: this.routes.routes,
          metrics: {
            snapshot: (ns, name) => {
              const s = gateway.upstreamMetrics(`fn:${ns}/${name}`);
              return s && { requests: s.requests, errors5xx: s.responses['5xx'] ?? 0, latencyBoundsUs: s.latencyUs.buckets, latencyCounts: s.latencyUs.counts };
            },
          },
        }),
    );
    // The store's history is shared: compacting it is one node's job.
    const store = leadership.fencedStore;
    leadership.add(LEADER_TASKS.compactor, () => {
      let timer: NodeJS.Timeout | undefined;
      return {
        start: () => {
          timer = setInterval(() => {
            store
              .revision()
              .then((rev) => (rev > HISTORY_KEPT ? store.compact(rev - HISTORY_KEPT) : undefined))
              .catch((err) => logger.warn({ err: (err as Error).message }, 'compaction failed'));
          }, 60_000);
          timer.unref();
        },
        stop: () => clearInterval(timer),
      };
    });
  }

  /**
   * webhookSources: the leader fetches at once; any other node asks the leader to, with the
   * reconcile-at annotation its source controller honours, instead of fetching itself.
   */
  private webhookSources(resources: ResourceService, leadership: Leadership, logger: Logger): WebhookSources {
    return {
      get: (ns, name) => this.gitRepos?.get(`${ns}/${name}`),
      refresh: async (ns, name) => {
        const local = leadership.isLeader() ? this.gitSources : undefined;
        if (local) return local.refresh(ns, name);
        if (!this.gitRepos?.get(`${ns}/${name}`)) return false;
        await resources.patch(resources.kind('GitRepository'), ns, name, { metadata: { annotations: { [RECONCILE_AT_ANNOTATION]: new Date().toISOString() } } });
        logger.info({ gitrepository: `${ns}/${name}`, leader: leadership.leader() }, 'asked the leader to fetch');
        return true;
      },
    };
  }

  /**
   * openClusterAuthority reads (or, on a first start, creates) the cluster bootstrap in the store, and
   * writes what every node of the cluster shares to the data dir: the API and controller tokens, and
   * the node token when this node knows the join secret (it made it, was given it, or joined with it).
   */
  private async openClusterAuthority(resources: ResourceService, dataDir: string, trustDomain: string, joined: Joined | undefined): Promise<ClusterAuthority> {
    const c = this.opts.cluster ?? {};
    const mode: BootstrapMode = c.join ? 'join' : c.init ? 'init' : 'plain';
    const joinSecret = c.token !== undefined ? joinSecretOf(c.token) : undefined;
    const authority = await ClusterAuthority.open({ resources, logger: this.opts.logger, trustDomain, mode, joinSecret: mode === 'join' ? undefined : joinSecret });
    this.clusterAuthority = authority;
    if (mode === 'join' && joinSecret !== undefined) authority.joinSecret = joinSecret;
    if (authority.joinSecret === undefined) {
      // A restart: the node token kept here still holds the secret (its CA hash may be out of date).
      const kept = readOptional(join(dataDir, 'node-token'));
      const secret = kept?.startsWith('K10') ? parseNodeToken(kept).secret : undefined;
      if (secret && (await authority.checkJoinSecret(secret))) authority.joinSecret = secret;
    }
    if (joined && joined.token !== authority.token) this.opts.logger.warn('the token the joined node returned differs from the store\'s: --store and --join name different clusters?');
    writeSecretFile(dataDir, 'token', authority.token);
    writeSecretFile(dataDir, 'controller-token', authority.controllerToken);
    const write = () => authority.joinSecret !== undefined && writeSecretFile(dataDir, 'node-token', formatNodeToken(authority.certPem, authority.joinSecret));
    if (authority.joinSecret !== undefined) write();
    else if (!existsSync(join(dataDir, 'node-token'))) this.opts.logger.warn('this node does not know the join secret (another node initialised the cluster): its node token is in that node\'s DATA_DIR/node-token');
    // A rotated CA changes the hash a token pins: the token kept here follows it.
    authority.onChange(write);
    return authority;
  }

  /** settle waits (bounded) until the controllers have nothing left to do: used before announcing readiness. */
  async settle(timeoutMs: number): Promise<void> {
    const t = new Promise<void>((r) => setTimeout(r, timeoutMs).unref());
    await Promise.race([Promise.all([this.policies.controller.idle(), this.bundles.controller.idle(), this.functions.controller.idle(), this.routes.settled()]), t]);
  }

  /** stop drains the gateway and the API, stops the controllers, the runtime, then closes the store. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.identity?.close();
      this.clusterAuthority?.stop();
      this.stopFollowingCa?.();
      this.blobGc?.stop();
      this.dashboard?.stop();
      // The leader-only controllers end while the lease is held, then the lease is given up.
      await this.leadership?.stop().catch(() => {});
      this.gitRepos?.stop();
      await this.nodeAgent?.stop().catch(() => {});
      await this.gateway?.close().catch(() => {});
      await this.api?.close().catch(() => {});
      await this.metrics?.close().catch(() => {});
      await this.admission?.stop().catch(() => {});
      this.imagePolicies?.stop();
      await this.routes?.stop().catch(() => {});
      await this.functions?.stop().catch(() => {});
      await this.autoscaler?.stop().catch(() => {});
      await this.workloads?.stop().catch(() => {});
      // Every container and VM replica gets SIGTERM, its grace period, then SIGKILL.
      await this.workloadManager?.close().catch(() => {});
      // After the replicas stopped, so that the slices' last word is that none runs here.
      await this.slices?.stop().catch(() => {});
      this.nodes?.stop();
      await this.bundles?.stop().catch(() => {});
      await this.policies?.stop().catch(() => {});
      await this.runtime?.close().catch(() => {});
      this.registry?.close();
      // Spans of the requests just drained are sent before the process exits (SIGTERM path).
      await this.tracer?.shutdown().catch((err) => this.opts.logger.warn({ err: (err as Error).message }, 'sending the last spans failed'));
      await this.store?.close();
    })();
    return this.stopping;
  }

  /**
   * composeWorkloads sets up the container and VM runtime classes: one image store in the data dir,
   * the handlers (bwrap and runc for containers, qemu for micro-VMs), the replica manager publishing to the gateway's
   * workload table, and their controller. A handler missing on this host makes its Functions
   * Ready=False with the reason, never a failed start.
   */
  private composeWorkloads(resources: ResourceService, logger: Logger, dataDir: string, logs: FunctionLogs): WorkloadController {
    const images = new ImageStore({ dataDir, registry: this.registry!, hostDirs: this.hostDirs, logger });
    this.images = images;
    const handlers = (this.handlers = new Map<string, RuntimeHandler>([
      ['bwrap', new BwrapHandler({ logger })],
      ['runc', new RuncHandler({ logger })],
      ['qemu', new QemuHandler({ logger, cacheDir: dataDir })],
    ]));
    const gateway = this.gateway;
    // The manager reports changes to the controller, which is built with the manager.
    const owner: { controller?: WorkloadController } = {};
    const manager = new WorkloadManager({
      dataDir,
      logger,
      publish: (ns, name, endpoints) => {
        gateway.workloads.set(ns, name, endpoints);
        // The activator lets waiting requests go once a replica is ready.
        const gate = gateway.scaling.ensure(`${ns}/${name}`);
        if (endpoints.length > 0) gate.open();
        else gate.close();
      },
      failing: (ns, name, why) => gateway.scaling.get(`${ns}/${name}`)?.fail(why),
      changed: (ns, name) => owner.controller?.changed(ns, name),
      log: (ns, name, stream, line) => logs.append(ns, name, { stream, line }),
    });
    this.workloadManager = manager;
    const slices = this.slices;
    const controller = new WorkloadController({
      resources,
      logger,
      manager,
      ...(slices ? { placementNode: this.nodeName, localReplicas: (ns: string, name: string, replicas: Array<{ ready: boolean }>) => slices.set(ns, name, replicas) } : {}),
      images,
      handlers,
      pullSecrets: secretPullCredentials(resources) as (ns: string, names: string[]) => Promise<CredentialProvider>,
      verifyArtifact: (ref, digest) => this.verifyArtifact(ref, digest),
      unpublish: (ns, name) => {
        gateway.workloads.remove(ns, name);
        slices?.remove(ns, name);
      },
    });
    owner.controller = controller;
    return controller;
  }

  /**
   * availableRuntimeClasses lists the runtime classes this host can run, by asking their handlers (as
   * the workload controller does before it starts a replica): wasm always, the others when the
   * handler their built-in RuntimeClass names works here.
   */
  private async availableRuntimeClasses(): Promise<string[]> {
    // A class runs here when its handler does: the mapping is the built-in RuntimeClasses' own, so a
    // handler that no class names (runc beside the bwrap-backed container class) adds nothing.
    const runs = async (handler: string) => {
      if (handler === 'wasm') return true;
      const h = this.handlers?.get(handler);
      return h ? (await h.unavailable().catch(() => 'probe failed')) === undefined : false;
    };
    const classes: string[] = [];
    for (const rc of BUILTIN_RUNTIME_CLASSES) if (await runs(rc.handler)) classes.push(rc.name);
    return classes;
  }

  /**
   * fetchPeerBlob asks the other nodes for an uploaded module this node lacks. Before the mesh is up
   * (Functions load while the node starts) there is nobody to ask yet; the Function controller's
   * retry asks again.
   */
  private async fetchPeerBlob(hex: string, maxBytes: number): Promise<Uint8Array | undefined> {
    const feed = this.remoteEndpoints;
    const identity = this.identity;
    if (!feed || !identity) return undefined;
    return fetchBlobFromPeers({ peers: () => feed.peers(), tls: () => identity.clientOptions(), trustDomain: this.opts.trustDomain ?? 'skiff.local', logger: this.opts.logger }, hex, maxBytes);
  }

  /** verifyArtifact checks a module about to be loaded against the ImagePolicies: undefined admits it. */
  private async verifyArtifact(reference: string, digest: string): Promise<string | undefined> {
    const enforcer = this.imagePolicies?.enforcer;
    if (!enforcer?.covers(reference)) return undefined;
    const d = await enforcer.check(reference, digest);
    return d.allowed ? undefined : d.messages.join('; ');
  }

  /** ensureRuntimeClasses creates the built-in RuntimeClasses that are missing; an operator's edits to them stay. */
  private async ensureRuntimeClasses(resources: ResourceService): Promise<void> {
    for (const rc of BUILTIN_RUNTIME_CLASSES) {
      try {
        await resources.create(resources.kind('RuntimeClass'), undefined, { apiVersion: 'node.k8s.io/v1', kind: 'RuntimeClass', metadata: { name: rc.name, annotations: { 'skiff.dev/description': rc.description } }, handler: rc.handler });
      } catch (err) {
        if (!(err instanceof ApiError && err.reason === 'AlreadyExists')) throw err;
      }
    }
  }

  private async ensureNamespace(resources: ResourceService, name: string): Promise<void> {
    try {
      await resources.create(resources.kind('Namespace'), undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
    } catch (err) {
      if (!(err instanceof ApiError && err.reason === 'AlreadyExists')) throw err;
    }
  }

  /**
   * applyDemo applies examples/hello. The server stores the demo's module in its own blob store, as
   * `skiff apply` would upload it, so the demo needs no host directory grant.
   */
  private async applyDemo(resources: ResourceService): Promise<void> {
    const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
    const dir = join(root, 'examples', 'hello');
    for (const item of readManifests([dir])) {
      const obj = item.object;
      resolveModuleRef(obj, item.baseDir);
      if (obj.kind === 'Function' && typeof obj.spec?.module === 'string' && !obj.spec.module.startsWith(BLOB_REF_PREFIX)) {
        const path = obj.spec.module;
        const bytes = readFileSync(path);
        const hex = sha256Digest(bytes).slice('sha256:'.length);
        await this.blobs.put(hex, bytes);
        obj.spec.module = BLOB_REF_PREFIX + hex;
        obj.metadata.annotations = { ...(obj.metadata.annotations ?? {}), [MODULE_SOURCE_ANNOTATION]: relative(root, path) };
      }
      const def = resources.kind(String(obj.kind));
      const ns = def.namespaced ? (obj.metadata?.namespace ?? 'default') : undefined;
      // The demo is what `skiff apply -f examples/hello` would do, so a later skiff apply of the same
      // objects is the same field manager and changes them without conflicts.
      await resources.apply(def, ns, obj.metadata.name, obj, { fieldManager: SKIFF_APPLY_MANAGER, force: true });
    }
  }
}

function readOptional(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

import { readFileSync } from 'node:fs';

import type { Command } from 'commander';

import { ESCAPED_SLASHES_ACTIONS, type EscapedSlashesAction } from '../../gateway/index.js';
import { type TracingConfig,tracingConfig } from '../../observability/tracing/index.js';
import { DockerConfig } from '../../oci/index.js';
import { HostDirs, parseFunctionMaxima,UpstreamGuard } from '../../security/index.js';
import { type RegistrySettings, Skiff } from '../../server/skiff.js';
import { UsageError } from '../../util/errors.js';
import { bindToProcess, createLogger } from '../../util/logger.js';
import { parseDurationMs } from '../../util/quantity.js';

interface UpOpts {
  dataDir: string;
  api: string;
  gateway: string;
  store?: string;
  demo?: boolean;
  otlpEndpoint?: string;
  workers?: string;
  mesh?: string;
  trustDomain: string;
  decisionLog?: string | boolean;
  decisionLogMask?: string;
  accessLog: boolean;
  allowHostDir: string[];
  allowUpstream: string[];
  maxFunctionMemory?: string;
  maxFunctionTimeout?: string;
  maxFunctionConcurrency?: string;
  maxFunctionQueue?: string;
  maxFunctionOutput?: string;
  pathEscapedSlashes: string;
  mergeSlashes: boolean;
  insecureRegistry: string[];
  registryConfig?: string;
  registryCa?: string;
  metrics?: string;
  nodeName?: string;
  leaderElectLeaseDuration: string;
  leaderElectRenewDeadline: string;
  leaderElectRetryPeriod: string;
  clusterInit?: boolean;
  join?: string;
  token?: string;
}

const collect = (v: string, prev: string[]) => [...prev, v];

/** `skiff up`: runs the whole platform in this process until SIGINT/SIGTERM. */
export function register(program: Command): void {
  program
    .command('up')
    .description('start Skiff: store, API server, controllers, sandbox runtime and gateway in one process')
    .option('--data-dir <dir>', 'where state, tokens and logs live', process.env.SKIFF_DATA_DIR ?? './.skiff')
    .option('--api <host:port>', 'API listen address (port 0 picks a free port)', '127.0.0.1:7070')
    .option('--gateway <host:port>', 'gateway listen address (port 0 picks a free port)', '127.0.0.1:8080')
    .option('--store <url>', 'store endpoint: sqlite://PATH or memory:// (default: SQLite in the data dir)')
    .option('--workers <n>', 'sandbox worker threads')
    .option('--mesh <host:port>', 'also serve the gateway over mutual TLS for other Skiff nodes (client certificates from the internal CA)')
    .option('--node-name <name>', 'this node\'s name: its Node object and heartbeat Lease (default: the host name, lower-cased)')
    .option('--cluster-init', 'with --store etcd://: start a cluster; the first start writes its CA, tokens and join secret hash to the store and the node token to DATA_DIR/node-token (again on an initialised store: join it as a server; plain --store etcd:// initialises an empty store the same way)')
    .option('--join <url>', 'with --store etcd:// and --token: join the cluster through an existing node\'s API (https://HOST:PORT); the CA it serves must match the token\'s hash')
    .option('--token <token>', 'with --join: the node token (DATA_DIR/node-token of a node of the cluster, K10<hash>::node:<secret>); with --cluster-init: the join secret to use instead of a random one')
    .option('--trust-domain <domain>', 'SPIFFE trust domain of the internal CA', 'skiff.local')
    .option('--no-access-log', 'do not log one JSON line per gateway request (saves ~10-20 µs of CPU per request)')
    .option('--decision-log [file]', 'record every policy decision (gateway authorization, admission) as NDJSON; relative to the data dir (default decisions.log)')
    .option('--decision-log-mask <paths>', 'comma-separated input paths to redact in the decision log, e.g. attributes.request.http.headers.authorization')
    .option('--demo', 'apply examples/hello on start')
    .option('--otlp-endpoint <url>', 'send OpenTelemetry traces over OTLP/HTTP to this base URL (/v1/traces is appended), e.g. http://127.0.0.1:4318; overrides OTEL_EXPORTER_OTLP_ENDPOINT')
    .option('--allow-host-dir <dir>', 'a host directory Functions may mount and the server may read on a resource\'s behalf (repeatable; none by default)', collect, [])
    .option('--allow-upstream <cidr|host:port>', 'a loopback, link-local or other otherwise refused target that Services and URL sources may reach (repeatable)', collect, [])
    .option('--max-function-memory <bytes>', 'largest spec.limits.memory a Function may ask for (default 1Gi)')
    .option('--max-function-timeout <duration>', 'largest spec.limits.timeout a Function may ask for (default 5m)')
    .option('--max-function-concurrency <n>', 'largest spec.limits.concurrency a Function may ask for (default 256)')
    .option('--max-function-queue <n>', 'largest spec.limits.queue a Function may ask for (default 4096)')
    .option('--max-function-output <bytes>', 'largest spec.limits.output a Function may ask for (default 64Mi)')
    .option('--path-escaped-slashes <action>', `what the gateway does with %2F and %5C in a request path (Envoy's path_with_escaped_slashes_action): ${ESCAPED_SLASHES_ACTIONS.join(', ')}`, 'reject')
    .option('--no-merge-slashes', 'keep repeated slashes in request paths (merged by default)')
    .option('--insecure-registry <host:port>', 'an OCI registry reached over plain HTTP for oci:// modules (repeatable); every other one over HTTPS', collect, [])
    .option('--registry-config <file>', 'default registry credentials for oci:// modules: a docker config.json (Functions add their own with spec.imagePullSecrets)')
    .option('--registry-ca <file>', 'PEM CA certificates to trust for HTTPS registries, beside the system\'s')
    .option('--leader-elect-lease-duration <duration>', 'in a cluster, how long other nodes wait after the leader\'s last renew before one of them takes over the once-per-cluster controllers', '15s')
    .option('--leader-elect-renew-deadline <duration>', 'how long the leader keeps leading without renewing its lease (shorter than the lease duration)', '10s')
    .option('--leader-elect-retry-period <duration>', 'how often a node tries to take or renew the leader lease', '2s')
    .option('--metrics <host:port>', 'also serve /metrics on its own listener: without a token on a loopback address, with the API token on any other')
    .action(async (opts: UpOpts) => {
      const log = createLogger();
      const { logger, flush } = log;
      // From here on a crash is logged at fatal and flushed, and whatever is buffered is written on exit.
      bindToProcess(log);
      const workers = opts.workers === undefined ? undefined : Number(opts.workers);
      if (workers !== undefined && (!Number.isInteger(workers) || workers < 1)) throw new UsageError('--workers must be a positive integer');
      // A Node's name is a DNS subdomain, and it is also a segment of the node's SPIFFE identity.
      if (opts.nodeName !== undefined && (opts.nodeName.length > 253 || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(opts.nodeName))) throw new UsageError(`--node-name must be a lower-case DNS name such as node-1, not "${opts.nodeName}"`);
      const etcd = /^etcd(\+https?)?:/.test(opts.store ?? '');
      if ((opts.clusterInit || opts.join) && !etcd) throw new UsageError(`--${opts.join ? 'join' : 'cluster-init'} needs a shared store: --store etcd://HOST:PORT[,HOST:PORT...][/PREFIX]`);
      if (opts.clusterInit && opts.join) throw new UsageError('--cluster-init starts a cluster and --join joins one: give one of them');
      if (opts.join && !opts.token) throw new UsageError('--join needs --token TOKEN (DATA_DIR/node-token of a node of the cluster)');
      if (opts.token && !opts.join && !opts.clusterInit) throw new UsageError('--token goes with --join URL or --cluster-init');
      let hostDirs: HostDirs;
      let upstreams: UpstreamGuard;
      try {
        hostDirs = HostDirs.from(opts.allowHostDir);
        upstreams = UpstreamGuard.from(opts.allowUpstream);
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
      const escapedSlashes = opts.pathEscapedSlashes as EscapedSlashesAction;
      if (!ESCAPED_SLASHES_ACTIONS.includes(escapedSlashes)) throw new UsageError(`--path-escaped-slashes must be one of ${ESCAPED_SLASHES_ACTIONS.join(', ')}, not "${opts.pathEscapedSlashes}"`);
      const functionMaxima = parseFunctionMaxima({ memory: opts.maxFunctionMemory, timeout: opts.maxFunctionTimeout, concurrency: opts.maxFunctionConcurrency, queue: opts.maxFunctionQueue, output: opts.maxFunctionOutput });
      const registries = registrySettings(opts);
      const tracing = tracingSettings(opts);
      const leaderElection = electionTimings(opts);
      const skiff = await Skiff.start({ tracing, registries, hostDirs, upstreams, functionMaxima, dataDir: opts.dataDir, api: parseAddr('--api', opts.api), gateway: parseAddr('--gateway', opts.gateway), store: opts.store, demo: opts.demo, logger, workers, mesh: opts.mesh ? parseAddr('--mesh', opts.mesh) : undefined, trustDomain: opts.trustDomain, accessLog: opts.accessLog, gatewayPaths: { escapedSlashes, mergeSlashes: opts.mergeSlashes }, metrics: opts.metrics ? parseAddr('--metrics', opts.metrics) : undefined, nodeName: opts.nodeName, leaderElection, cluster: etcd ? { init: opts.clusterInit, join: opts.join, token: opts.token } : undefined, decisionLog: opts.decisionLog ? { path: typeof opts.decisionLog === 'string' ? opts.decisionLog : 'decisions.log', mask: opts.decisionLogMask?.split(',').map((x) => x.trim()).filter(Boolean) } : undefined });
      const a = skiff.apiAddress;
      const g = skiff.gatewayAddress;
      const m = skiff.meshAddress;
      const mx = skiff.metricsAddress;
      // The readiness line is a contract; mesh= and metrics= are appended only when their flags ask for those listeners.
      process.stdout.write(`skiff ready api=http://${hostForUrl(a.host)}:${a.port} gateway=http://${hostForUrl(g.host)}:${g.port}${m ? ` mesh=https://${hostForUrl(m.host)}:${m.port}` : ''}${mx ? ` metrics=http://${hostForUrl(mx.host)}:${mx.port}/metrics` : ''}\n`);
      process.stdout.write(`dashboard: http://${hostForUrl(a.host)}:${a.port}/ui\n`);
      logger.info({ api: a, gateway: g, dataDir: opts.dataDir }, 'skiff ready');
      await new Promise<void>((resolveStop) => {
        const onSignal = (sig: string) => {
          logger.info({ signal: sig }, 'shutting down');
          skiff.stop().then(resolveStop, (err) => {
            logger.error({ err }, 'shutdown failed');
            resolveStop();
          });
        };
        process.once('SIGINT', onSignal);
        process.once('SIGTERM', onSignal);
      });
      flush();
    });
}

/** tracingSettings reads the OpenTelemetry environment and --otlp-endpoint; a bad value is a usage error naming it. */
function tracingSettings(opts: UpOpts): TracingConfig | undefined {
  try {
    return tracingConfig(process.env, opts.otlpEndpoint);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** registrySettings reads the registry flags; unlike the CLI's, the server reads no default docker config. */
function registrySettings(opts: UpOpts): RegistrySettings {
  for (const h of opts.insecureRegistry) if (!/^(\[[^\]]+\]|[^:/\s]+)(:\d{1,5})?$/.test(h)) throw new UsageError(`--insecure-registry ${h}: expected HOST:PORT, e.g. 127.0.0.1:5000`);
  const out: RegistrySettings = { insecure: opts.insecureRegistry };
  try {
    if (opts.registryConfig) out.credentials = DockerConfig.load(opts.registryConfig).provider();
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (opts.registryCa) {
    try {
      out.ca = readFileSync(opts.registryCa, 'utf8');
    } catch (err) {
      throw new UsageError(`--registry-ca ${opts.registryCa}: cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  return out;
}

function parseAddr(flag: string, v: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(v);
  if (!m) throw new UsageError(`${flag} must be HOST:PORT (e.g. 127.0.0.1:7070), not "${v}"`);
  const port = Number(m[2]);
  if (port > 65535) throw new UsageError(`${flag}: port ${port} is out of range`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

function hostForUrl(h: string): string {
  return h.includes(':') ? `[${h}]` : h;
}

/** electionTimings reads the `--leader-elect-*` durations (kube-controller-manager's flags and defaults). */
function electionTimings(opts: UpOpts): { leaseDurationMs: number; renewDeadlineMs: number; retryPeriodMs: number } {
  const read = (flag: string, v: string) => {
    const ms = parseDurationMs(v);
    if (ms === undefined || !(ms > 0)) throw new UsageError(`${flag} must be a positive duration such as 15s or 500ms, not "${v}"`);
    return ms;
  };
  const leaseDurationMs = read('--leader-elect-lease-duration', opts.leaderElectLeaseDuration);
  const renewDeadlineMs = read('--leader-elect-renew-deadline', opts.leaderElectRenewDeadline);
  const retryPeriodMs = read('--leader-elect-retry-period', opts.leaderElectRetryPeriod);
  if (!(renewDeadlineMs < leaseDurationMs)) throw new UsageError(`--leader-elect-renew-deadline (${opts.leaderElectRenewDeadline}) must be shorter than --leader-elect-lease-duration (${opts.leaderElectLeaseDuration}), so a leader stops before another node may take over`);
  if (!(retryPeriodMs < renewDeadlineMs)) throw new UsageError(`--leader-elect-retry-period (${opts.leaderElectRetryPeriod}) must be shorter than --leader-elect-renew-deadline (${opts.leaderElectRenewDeadline}), so a leader can retry a failed renew`);
  return { leaseDurationMs, renewDeadlineMs, retryPeriodMs };
}

import type { Logger } from 'pino';

import type { InvokeRequest, InvokeResult, Runtime } from '../runtime/index.js';
import { epochMs, parseTraceparent, SpanKind, type Tracer } from '../util/tracing.js';

import { FunctionError } from './errors.js';
import { checkHostDirs, DEFAULT_LIMITS, defaultFunctionGrants, type FunctionGrants, type ResolvedLimits,resolveLimits } from './grants.js';
import type { FunctionLogs, LineTrace } from './logs.js';
import { parseWagiOutput, wagiArgs, wagiEnv, WagiOutputError, type WagiRequest, type WagiResponse } from './wagi.js';

/** RunTrace is a sampled run's span: its trace, its parent (the gateway's span) and its own id. */
interface RunTrace {
  traceId: string;
  parentSpanId: string;
  spanId: string;
  startedAt: number;
  /** Filled in from the runtime's result once the guest ran. */
  warm?: boolean;
  fuel?: number;
}

/** The slice of the sandbox runtime that serving needs: its two entry points, and warm reservations for replicas. */
export type FunctionRuntime = Pick<Runtime, 'tryInline' | 'invoke'> & Partial<Pick<Runtime, 'reserve' | 'tryReserve' | 'warmInstances' | 'reservation' | 'release'>>;

/** What the Function controller publishes for each loaded function. */
export interface ServedFunction {
  namespace: string;
  name: string;
  digest: string;
  spec: FunctionSpec;
}

export interface FunctionSpec {
  module: string;
  digest?: string;
  args?: string[];
  env?: Record<string, string>;
  capabilities?: { dirs?: Array<{ host: string; guest: string; readOnly?: boolean }>; memfs?: boolean; env?: Record<string, string>; clock?: 'real' | 'frozen'; random?: 'real' | { seed: number } };
  limits?: { memory?: string | number; timeout?: string | number; concurrency?: number; queue?: number; output?: string | number };
  /** Secrets (kubernetes.io/dockerconfigjson) with credentials for an oci:// module's registry. */
  imagePullSecrets?: Array<{ name: string }>;
}

// The defaults live with the grants that clamp them; they are exported from here as before.
export { DEFAULT_LIMITS };

/** How long a check that a Function's host directories are still granted holds before it is made again. */
const DIRS_RECHECK_MS = 1000;

interface Entry {
  served: ServedFunction;
  /** `namespace/name`: the runtime's pool key. */
  key: string;
  limits: ResolvedLimits;
  capabilities: Record<string, unknown>;
  env: Record<string, string>;
  /** When the host directories must be checked against the grants again (0: the Function mounts none). */
  dirsCheckDue: number;
}

/**
 * FunctionInvoker serves HTTP requests with Functions: it keeps the set of loaded functions (kept up
 * to date by the Function controller), turns a request into a WAGI invocation of the sandbox runtime,
 * and turns the guest's output, or its failure, into a response and log lines.
 */
export class FunctionInvoker {
  private readonly fns = new Map<string, Entry>();
  /** Invocations prepared by tryInline that the runtime declined to run inline, for invoke to reuse. */
  private readonly declined = new WeakMap<WagiRequest, { entry: Entry; invocation: InvokeRequest }>();
  private readonly notReady = new Map<string, string>();
  /** Where sampled runs' spans go; undefined (tracing off) costs a run nothing. */
  private tracer?: Tracer;

  constructor(
    private readonly runtime: FunctionRuntime,
    private readonly logs: FunctionLogs,
    private readonly logger: Logger,
    private readonly server: { name: string; port: string },
    private readonly grants: FunctionGrants = defaultFunctionGrants(),
  ) {}

  /**
   * set publishes (or replaces) a loaded function. A Function whose directories or limits this server
   * does not grant (it was admitted under other flags) is taken out of service and a
   * FunctionGrantError naming the flag is thrown, for the controller to report.
   */
  set(served: ServedFunction): void {
    const key = `${served.namespace}/${served.name}`;
    let limits: ResolvedLimits;
    try {
      checkHostDirs(served.namespace, served.name, served.spec, this.grants.hostDirs);
      limits = resolveLimits(served.spec, this.grants.maxima);
    } catch (err) {
      this.fns.delete(key);
      this.notReady.set(key, (err as Error).message);
      throw err;
    }
    const caps = served.spec.capabilities ?? {};
    const dirsCheckDue = caps.dirs?.length ? Date.now() + DIRS_RECHECK_MS : 0;
    const prev = this.fns.get(key);
    this.fns.set(key, { served, key, limits, capabilities: { ...caps }, env: { ...(served.spec.env ?? {}), ...(caps.env ?? {}) }, dirsCheckDue });
    this.notReady.delete(key);
    // A new module or memory cap keeps the Function's replicas: they are warmed of the new build.
    const reserved = this.runtime.reservation?.(key) ?? 0;
    if (reserved > 0 && (prev?.served.digest !== served.digest || prev.limits.memoryBytes !== limits.memoryBytes)) this.trySetReplicas(served.namespace, served.name, reserved);
  }

  /** useTracer records a span for each run of a request whose trace is sampled (undefined: none). */
  useTracer(tracer: Tracer | undefined): void {
    this.tracer = tracer;
  }

  /** markNotReady records why a function cannot serve (requests get 503 with this reason). */
  markNotReady(namespace: string, name: string, reason: string): void {
    this.notReady.set(`${namespace}/${name}`, reason);
  }

  remove(namespace: string, name: string): void {
    this.runtime.release?.(`${namespace}/${name}`);
    this.fns.delete(`${namespace}/${name}`);
    this.notReady.delete(`${namespace}/${name}`);
  }

  has(namespace: string, name: string): boolean {
    return this.fns.has(`${namespace}/${name}`);
  }

  /**
   * setReplicas keeps `n` warm instances of a loaded Function's module ready (its replicas; 0: none,
   * only the compiled module stays). It answers at once when the module's builds are at hand (true),
   * else false after starting them; `replicasSettled` then waits for them.
   */
  trySetReplicas(namespace: string, name: string, n: number): boolean {
    const e = this.fns.get(`${namespace}/${name}`);
    if (!e || !this.runtime.tryReserve) return e !== undefined;
    if (this.runtime.tryReserve(e.key, e.served.digest, e.limits.memoryBytes, n) !== undefined) return true;
    void this.setReplicas(namespace, name, n).catch((err: Error) => this.logger.warn({ fn: e.key, err: err.message }, 'could not warm the function\'s instances'));
    return false;
  }

  /** setReplicas is trySetReplicas that waits for the module's builds; resolves to the instances waiting warm. */
  async setReplicas(namespace: string, name: string, n: number): Promise<number> {
    const e = this.fns.get(`${namespace}/${name}`);
    if (!e || !this.runtime.reserve) return 0;
    return this.runtime.reserve(e.key, e.served.digest, e.limits.memoryBytes, n);
  }

  /** warmReplicas is how many of a Function's reserved instances wait warm now. */
  warmReplicas(namespace: string, name: string): number {
    return this.runtime.warmInstances?.(`${namespace}/${name}`) ?? 0;
  }

  get(namespace: string, name: string): ServedFunction | undefined {
    return this.fns.get(`${namespace}/${name}`)?.served;
  }

  /**
   * tryInline answers the request at once when the runtime ran the guest on this thread (see the
   * runtime's `tryInline`), and never throws nor returns a promise. It returns the response; a
   * FunctionError (a missing or unready function, a trap, malformed output...), returned rather than
   * thrown; or undefined when the function must run on a worker: then call {@link invoke}, which reuses
   * the invocation prepared here for the same request object.
   */
  tryInline(namespace: string, name: string, req: WagiRequest): WagiResponse | FunctionError | undefined {
    const run = this.tracer !== undefined ? this.startRun(this.tracer, req) : undefined;
    let out: WagiResponse | FunctionError | undefined;
    try {
      const entry = this.entry(namespace, name);
      const invocation = this.invocation(entry, name, req);
      const now = this.runtime.tryInline(entry.served.digest, invocation);
      if (now === undefined) {
        this.declined.set(req, { entry, invocation });
        // The worker run records the span.
        return undefined;
      }
      out = now instanceof Error ? this.failure(namespace, name, req, now, run) : this.respond(namespace, name, req, now, run);
    } catch (err) {
      out = err instanceof FunctionError ? err : this.failure(namespace, name, req, err, run);
    }
    if (run) this.endRun(run, namespace, name, req, 'inline', out instanceof FunctionError ? out : undefined);
    return out;
  }

  /**
   * invoke runs the request on one of the runtime's workers; failures reject with a FunctionError. The
   * gateway's cancellation is not looked at (so its signal is never built): a guest cannot be
   * interrupted, the runtime's deadline stops it, and the gateway stops waiting at its own deadline.
   */
  invoke(namespace: string, name: string, req: WagiRequest, _cancel?: unknown): Promise<WagiResponse> {
    // Not async itself: an untraced run must not pay for a second promise.
    const run = this.tracer !== undefined ? this.startRun(this.tracer, req) : undefined;
    return run ? this.tracedRun(namespace, name, req, run) : this.invokeRun(namespace, name, req, undefined);
  }

  private async tracedRun(namespace: string, name: string, req: WagiRequest, run: RunTrace): Promise<WagiResponse> {
    try {
      const res = await this.invokeRun(namespace, name, req, run);
      this.endRun(run, namespace, name, req, 'worker', undefined);
      return res;
    } catch (err) {
      this.endRun(run, namespace, name, req, 'worker', err);
      throw err;
    }
  }

  private async invokeRun(namespace: string, name: string, req: WagiRequest, run: RunTrace | undefined): Promise<WagiResponse> {
    const prepared = this.declined.get(req);
    let entry: Entry;
    let invocation: InvokeRequest;
    if (prepared && this.fns.get(`${namespace}/${name}`) === prepared.entry) {
      this.declined.delete(req);
      ({ entry, invocation } = prepared);
    } else {
      entry = this.entry(namespace, name);
      invocation = this.invocation(entry, name, req);
    }
    let result: InvokeResult;
    try {
      result = await this.runtime.invoke(entry.served.digest, invocation);
    } catch (err) {
      throw this.failure(namespace, name, req, err, run);
    }
    return this.respond(namespace, name, req, result, run);
  }

  /** startRun begins a run's span when the request's trace is sampled. */
  private startRun(tracer: Tracer, req: WagiRequest): RunTrace | undefined {
    const tp = parseTraceparent(req.traceparent);
    if (!tp?.sampled) return undefined;
    return { traceId: tp.traceId, parentSpanId: tp.spanId, spanId: tracer.spanId(), startedAt: performance.now() };
  }

  /** endRun records the run's span: which function, where it ran (inline on the gateway's thread or on a worker), how it ended. */
  private endRun(run: RunTrace, namespace: string, name: string, req: WagiRequest, mode: 'inline' | 'worker', err: unknown): void {
    const code = err === undefined ? undefined : ((err as { code?: string }).code ?? 'internal');
    this.tracer?.record({
      traceId: run.traceId,
      spanId: run.spanId,
      parentSpanId: run.parentSpanId,
      name: `function ${namespace}/${name}`,
      kind: SpanKind.INTERNAL,
      startMs: epochMs(run.startedAt),
      endMs: epochMs(performance.now()),
      attributes: { 'faas.name': name, 'skiff.function': `${namespace}/${name}`, 'faas.invocation_id': req.requestId, 'skiff.function.mode': mode, 'faas.coldstart': run.warm === undefined ? undefined : !run.warm, 'skiff.function.fuel': run.fuel, 'error.type': code },
      error: code,
    });
  }

  /** lineTrace is the trace and span a request's log lines are tagged with: the run's span when sampled, else the gateway's. */
  private lineTrace(req: WagiRequest, run: RunTrace | undefined): LineTrace | undefined {
    if (run) return { traceId: run.traceId, spanId: run.spanId };
    const tp = parseTraceparent(req.traceparent);
    return tp && { traceId: tp.traceId, spanId: tp.spanId };
  }

  /** entry finds a served function, or throws why it cannot serve (a FunctionError). */
  private entry(namespace: string, name: string): Entry {
    const key = `${namespace}/${name}`;
    const entry = this.fns.get(key);
    if (!entry) {
      const why = this.notReady.get(key);
      throw new FunctionError(why ? 'not_ready' : 'function_not_found', why ? `function ${key} is not ready: ${why}` : `function ${key} does not exist`);
    }
    if (entry.dirsCheckDue !== 0 && Date.now() >= entry.dirsCheckDue) this.recheckDirs(key, entry);
    return entry;
  }

  /** invocation turns the request into the runtime's WAGI invocation of the function. */
  private invocation(entry: Entry, name: string, req: WagiRequest): InvokeRequest {
    const ctx = { name, serverName: this.server.name, serverPort: this.server.port, env: entry.env, args: entry.served.spec.args };
    return {
      args: wagiArgs(req, ctx),
      env: wagiEnv(req, ctx),
      stdin: req.body,
      capabilities: entry.capabilities,
      limits: entry.limits,
      poolKey: entry.key,
    };
  }

  /**
   * recheckDirs confirms, at most once a second, that a Function's host directories still lie inside
   * the grants: a directory inside an allowed one can be replaced by a symlink to somewhere else after
   * admission. A Function that fails is taken out of service until the controller loads it again.
   */
  private recheckDirs(key: string, entry: Entry): void {
    try {
      checkHostDirs(entry.served.namespace, entry.served.name, entry.served.spec, this.grants.hostDirs);
    } catch (err) {
      const message = (err as Error).message;
      this.fns.delete(key);
      this.notReady.set(key, message);
      this.logger.warn({ function: key }, message);
      throw new FunctionError('not_ready', `function ${key} is not ready: ${message}`);
    }
    entry.dirsCheckDue = Date.now() + DIRS_RECHECK_MS;
  }

  /** respond keeps the guest's stderr lines and turns its stdout into a response (or a 502 naming what is wrong). */
  private respond(namespace: string, name: string, req: WagiRequest, result: InvokeResult, run: RunTrace | undefined): WagiResponse {
    const requestId = req.requestId;
    if (run) {
      run.warm = result.warm;
      run.fuel = result.fuel;
    }
    // Log lines are rare next to runs: their trace ids are worked out only when there are some.
    const trace = result.stderr.length > 0 ? this.lineTrace(req, run) : undefined;
    this.logs.appendOutput(namespace, name, requestId, result.stderr, trace);
    try {
      return parseWagiOutput(result.stdout);
    } catch (err) {
      if (!(err instanceof WagiOutputError)) throw err;
      const key = `${namespace}/${name}`;
      const msg = result.exitCode !== 0 ? `the function exited with code ${result.exitCode} without a valid response (${err.message})` : err.message;
      const t = trace ?? this.lineTrace(req, run);
      this.logs.append(namespace, name, { stream: 'system', requestId, line: `bad output: ${msg}`, trace_id: t?.traceId, span_id: t?.spanId });
      this.logger.warn({ function: key, requestId, trace_id: t?.traceId, span_id: t?.spanId, exitCode: result.exitCode }, msg);
      throw new FunctionError(result.exitCode !== 0 ? 'function_failed' : 'bad_gateway', result.exitCode !== 0 ? `function ${key} failed` : `function ${key} returned a malformed response`);
    }
  }

  private failure(namespace: string, name: string, req: WagiRequest, err: unknown, run: RunTrace | undefined): FunctionError {
    const key = `${namespace}/${name}`;
    const requestId = req.requestId;
    const code = (err as { code?: string }).code ?? 'internal';
    const message = (err as Error).message ?? String(err);
    const trace = this.lineTrace(req, run);
    const note = (line: string) => this.logs.append(namespace, name, { stream: 'system', requestId, line, trace_id: trace?.traceId, span_id: trace?.spanId });
    // What the guest managed to say before it failed is often the best clue.
    const stderr = (err as { stderr?: Uint8Array }).stderr;
    if (stderr) this.logs.appendOutput(namespace, name, requestId, stderr, trace);
    switch (code) {
      case 'trap':
        note(`trap: ${message}`);
        return new FunctionError('trap', `function ${key} trapped`);
      case 'timeout':
        note(`deadline exceeded: ${message}`);
        return new FunctionError('timeout', `function ${key} did not finish in time`);
      case 'memory_limit':
        note(`out of memory: ${message}`);
        return new FunctionError('memory_limit', `function ${key} ran out of memory`);
      case 'output_limit':
        note(`output limit: ${message}`);
        return new FunctionError('bad_gateway', `function ${key} wrote more output than allowed`);
      case 'overloaded':
        note('overloaded: too many concurrent requests, request shed');
        return new FunctionError('overloaded', `function ${key} is overloaded; retry later`);
      case 'unknown_module':
        return new FunctionError('not_ready', `function ${key} is not loaded yet`);
      default:
        note(`failed: ${message}`);
        this.logger.error({ function: key, requestId, trace_id: trace?.traceId, span_id: trace?.spanId, err }, 'function invocation failed');
        return new FunctionError('internal', `function ${key} failed`);
    }
  }
}

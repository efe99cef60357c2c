import type { IncomingMessage } from 'node:http';

import { CompactedError, FutureRevisionError, StoreConfigError, StoreUnavailableError } from './errors.js';
import { EtcdAnswerError, type EtcdTls, EtcdTransport, EtcdUnreachableError, isTlsError, tlsReason } from './etcd-transport.js';
import type { KeyValue, RangeOptions, RangeResult, Store, Watcher, WatchEvent, WatchOptions, WriteCondition, WriteFailure, WriteResult } from './types.js';
import { prefixEnd } from './watch-hub.js';

/** How etcd's JSON gateway spells a key-value (numbers arrive as strings, bytes as base64). */
interface EtcdKv {
  key: string;
  value?: string;
  create_revision?: string;
  mod_revision?: string;
  version?: string;
}

interface Header {
  revision?: string;
}

export interface EtcdStoreOptions {
  /** Base URLs of the cluster's client endpoints, tried in order. */
  endpoints: string[];
  /** Every key is stored under this prefix, so several Skiff instances can share a cluster. */
  prefix: string;
  /**
   * Longest any request may take in all, every member tried included (default 8 s): with quorum lost a
   * write fails within it, and the API answers 503 inside the 10 s the contracts allow.
   */
  requestTimeoutMs?: number;
  /** Longest a linearizable read waits before the store reads from any member instead (default 2 s). */
  readTimeoutMs?: number;
  /** Client TLS for `https` endpoints: CA, client certificate and key (PEM). */
  tls?: EtcdTls;
}

/** EtcdTimeoutError: the cluster did not answer within the request's budget (quorum lost, members paused). */
export class EtcdTimeoutError extends StoreUnavailableError {
  constructor(message: string, cause?: unknown) {
    super(message, cause, 'store_etcd_timeout');
  }
}

const DEFAULT_REQUEST_TIMEOUT_MS = 8_000;
const DEFAULT_READ_TIMEOUT_MS = 2_000;
/** While reads fall back to serializable ones, a linearizable read is tried again this often. */
const LINEARIZABLE_PROBE_MS = 1_000;
/** A watch whose member went away is resumed on another for this long before its watcher is told. */
const WATCH_RESUME_MS = 30_000;
const QUORUM_ADVICE = 'writes need a majority of the etcd members (quorum): check them with `etcdctl endpoint health --cluster` and bring enough of them back';

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string | undefined) => (s ? Buffer.from(s, 'base64').toString('utf8') : '');

/**
 * EtcdStore keeps Skiff's state in an etcd v3 cluster (`etcd://HOST:PORT[,HOST:PORT]/PREFIX`), for
 * when one machine is not enough. It speaks etcd's JSON gateway over HTTP(S), so it needs no gRPC
 * stack: compare-and-swap maps onto a transaction on the key's mod revision, watches onto one
 * streaming watch request per prefix, and revisions are etcd's own.
 *
 * It is built to keep serving while members fail. Every request has a budget for all members
 * together; a member that cannot be connected to, or says it has no leader, hands the request to the
 * next. With quorum lost a write fails within the budget with a StoreUnavailableError naming the
 * cause (the API's 503), while reads fall back to serializable ones that any live member answers from
 * its own copy, until a linearizable read succeeds again. A watch whose member goes away resumes on
 * another member from the last revision it delivered.
 */
export class EtcdStore implements Store {
  private closed = false;
  private compacted = 0;
  private endpoint = 0;
  private readonly streams = new Map<object, () => void>();
  private readonly transport: EtcdTransport;
  private readonly requestTimeoutMs: number;
  private readonly readTimeoutMs: number;
  /** Set while linearizable reads fail: reads are served serializably, and a probe runs now and then. */
  private degraded = false;
  private probing = false;
  private probeAt = 0;

  constructor(private readonly opts: EtcdStoreOptions) {
    if (!opts.endpoints.length) throw new StoreConfigError('an etcd endpoint needs at least one host:port');
    this.transport = new EtcdTransport(opts.endpoints, opts.tls);
    this.requestTimeoutMs = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.readTimeoutMs = Math.min(opts.readTimeoutMs ?? DEFAULT_READ_TIMEOUT_MS, this.requestTimeoutMs);
  }

  /** Whether reads are being served serializably because linearizable ones fail (quorum lost). */
  get serializableReads(): boolean {
    return this.degraded;
  }

  /** open checks that the cluster answers and learns how far it has been compacted. */
  async open(): Promise<this> {
    await this.revision();
    this.compacted = await this.probeCompacted();
    return this;
  }

  async revision(): Promise<number> {
    const res = await this.read<{ header: Header }>({ key: b64(this.opts.prefix + '\0rev'), count_only: true });
    return Number(res.header.revision ?? 0);
  }

  async compactedRevision(): Promise<number> {
    return this.compacted;
  }

  async get(key: string): Promise<KeyValue | undefined> {
    const res = await this.read<{ kvs?: EtcdKv[] }>({ key: b64(this.opts.prefix + key) });
    return res.kvs?.length ? this.toKv(res.kvs[0]!) : undefined;
  }

  async range(prefix: string, opts: RangeOptions = {}): Promise<RangeResult> {
    const full = this.opts.prefix + prefix;
    const start = opts.startAfter !== undefined && opts.startAfter >= prefix ? this.opts.prefix + opts.startAfter + '\0' : full;
    const limit = opts.limit && opts.limit > 0 ? opts.limit : 0;
    const at = opts.revision;
    if (at !== undefined && at < this.compacted) throw new CompactedError(at, this.compacted);
    let res: { header: Header; kvs?: EtcdKv[]; more?: boolean };
    try {
      res = await this.read({
        key: b64(start),
        range_end: b64(prefixEnd(full)),
        ...(limit ? { limit: String(limit) } : {}),
        ...(at !== undefined ? { revision: String(at) } : {}),
      });
    } catch (err) {
      // etcd refuses a read below its compaction (another member may have compacted) or beyond its head.
      const text = (err as Error).message;
      if (at !== undefined && /required revision has been compacted/.test(text)) throw new CompactedError(at, Math.max(this.compacted, at));
      if (at !== undefined && /future revision/.test(text)) throw new FutureRevisionError(at, await this.revision());
      throw err;
    }
    return { items: (res.kvs ?? []).map((kv) => this.toKv(kv)), revision: at ?? Number(res.header.revision ?? 0), more: !!res.more };
  }

  async put(key: string, value: string, cond: WriteCondition = {}): Promise<WriteResult> {
    const k = b64(this.opts.prefix + key);
    const compare = cond.expectModRevision === undefined ? [] : [{ key: k, target: 'MOD', result: 'EQUAL', mod_revision: String(cond.expectModRevision) }];
    const res = await this.call<TxnResponse>('/v3/kv/txn', {
      compare: [...compare, ...this.guardCompare(cond)],
      success: [{ request_put: { key: k, value: b64(value), prev_kv: true } }],
      failure: this.failureReads(k, cond),
    }, { write: true });
    const revision = Number(res.header.revision ?? 0);
    if (!res.succeeded) return { ok: false, revision, current: this.firstKv(res), reason: this.failureReason(res, cond) };
    const prevRaw = res.responses?.[0]?.response_put?.prev_kv;
    const prevKv = prevRaw ? this.toKv(prevRaw) : undefined;
    const kv: KeyValue = { key, value, createRevision: prevKv?.createRevision ?? revision, modRevision: revision, version: (prevKv?.version ?? 0) + 1 };
    return { ok: true, revision, kv, prevKv };
  }

  async delete(key: string, cond: WriteCondition = {}): Promise<WriteResult> {
    const k = b64(this.opts.prefix + key);
    // A missing key has version 0: requiring a positive version makes "delete what is there" atomic.
    const compare = [cond.expectModRevision === undefined ? { key: k, target: 'VERSION', result: 'GREATER', version: '0' } : { key: k, target: 'MOD', result: 'EQUAL', mod_revision: String(cond.expectModRevision) }];
    const res = await this.call<TxnResponse>('/v3/kv/txn', {
      compare: [...compare, ...this.guardCompare(cond)],
      success: [{ request_delete_range: { key: k, prev_kv: true } }],
      failure: this.failureReads(k, cond),
    }, { write: true });
    const revision = Number(res.header.revision ?? 0);
    const prevRaw = res.responses?.[0]?.response_delete_range?.prev_kvs?.[0];
    if (!res.succeeded) return { ok: false, revision, current: this.firstKv(res), reason: this.failureReason(res, cond) };
    if (!prevRaw) return { ok: false, revision, reason: 'condition' };
    const prevKv = this.toKv(prevRaw);
    return { ok: true, revision, kv: { ...prevKv, modRevision: revision }, prevKv };
  }

  async watch(prefix: string, opts: WatchOptions): Promise<Watcher> {
    this.check();
    const full = this.opts.prefix + prefix;
    if (opts.afterRevision !== undefined && opts.afterRevision < this.compacted) throw new CompactedError(opts.afterRevision, this.compacted);
    const w: WatchState = { full, opts, last: opts.afterRevision, closed: false };
    const handle = {};
    const stop = () => {
      w.closed = true;
      this.streams.delete(handle);
      w.ctrl?.abort();
    };
    w.end = (err?: Error) => {
      if (w.closed) return;
      stop();
      opts.onClose?.(err);
    };
    // Closing the store ends the watch from the store's side: the watcher hears it through onClose.
    this.streams.set(handle, () => w.end?.());
    try {
      await this.openStream(w);
    } catch (err) {
      stop();
      throw err;
    }
    return { close: stop };
  }

  /**
   * openStream starts (or resumes, from the last revision delivered) one watch stream on the first
   * member that takes it, and resolves once etcd has accepted it. When the stream breaks later, it is
   * resumed on another member.
   */
  private async openStream(w: WatchState): Promise<void> {
    const ctrl = new AbortController();
    w.ctrl = ctrl;
    const start = w.last === undefined ? undefined : w.last + 1;
    const body = { create_request: { key: b64(w.full), range_end: b64(prefixEnd(w.full)), prev_kv: true, ...(start !== undefined ? { start_revision: String(start) } : {}) } };
    // The stream lives on; only getting its head is bounded.
    const timer = setTimeout(() => ctrl.abort(), this.requestTimeoutMs);
    let res: IncomingMessage | undefined;
    try {
      res = await this.onEachMember(async (idx) => {
        const r = await this.transport.post(idx, '/v3/watch', body, ctrl.signal);
        if (r.statusCode !== 200) {
          r.resume();
          throw new EtcdAnswerError(r.statusCode ?? 0, undefined, `the watch was refused (HTTP ${r.statusCode})`);
        }
        return r;
      }, ctrl.signal, false, 'watch');
    } finally {
      clearTimeout(timer);
    }
    const stream = res;
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      let ended = false;
      let buf = '';
      stream.setEncoding('utf8');
      // 'end', 'aborted', 'error' and 'close' may all come for one break: it is handled once.
      const broken = (err?: Error) => {
        if (ended) return;
        ended = true;
        if (!settled) {
          settled = true;
          reject(new StoreUnavailableError(`the etcd watch stream ended before etcd accepted it${err ? `: ${err.message}` : ''}`, err));
        } else if (!w.closed && w.ctrl === ctrl) void this.resume(w);
      };
      stream.on('data', (chunk: string) => {
        buf += chunk;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (!line) continue;
          let msg: WatchMessage;
          try {
            msg = (JSON.parse(line) as { result?: WatchMessage }).result ?? {};
          } catch {
            continue;
          }
          if (!settled) {
            settled = true;
            if (msg.canceled) {
              ctrl.abort();
              const compactRev = Number(msg.compact_revision ?? 0);
              if (compactRev > 0) {
                this.compacted = Math.max(this.compacted, compactRev - 1);
                reject(new CompactedError(w.last ?? 0, compactRev - 1));
              } else reject(new StoreUnavailableError(`etcd refused the watch: ${msg.cancel_reason ?? 'no reason given'}`));
              return;
            }
            // Watching from now: the stream starts after the revision etcd reports at creation.
            if (w.last === undefined) w.last = Number(msg.header?.revision ?? 0);
            resolve();
          }
          for (const ev of msg.events ?? []) {
            if (w.closed) return;
            const e = this.toEvent(ev);
            w.opts.onEvent(e);
            w.last = Math.max(w.last ?? 0, e.revision);
          }
        }
      });
      stream.on('end', () => broken());
      stream.on('aborted', () => broken());
      stream.on('error', (err) => broken(err));
      stream.on('close', () => broken());
    });
  }

  /** resume reopens a broken watch on another member from its last revision, for a while, then gives up. */
  private async resume(w: WatchState): Promise<void> {
    // The member this stream was on is the likeliest to be gone.
    this.endpoint = (this.endpoint + 1) % this.opts.endpoints.length;
    const deadline = Date.now() + WATCH_RESUME_MS;
    let delay = 50;
    let lastErr: unknown;
    while (!w.closed && !this.closed) {
      try {
        await this.openStream(w);
        return;
      } catch (err) {
        lastErr = err;
        if (err instanceof CompactedError) return w.end?.(err);
        if (Date.now() + delay > deadline) break;
        await new Promise((r) => setTimeout(r, delay).unref());
        delay = Math.min(delay * 2, 1_000);
      }
    }
    w.end?.(new StoreUnavailableError(`the etcd watch could not be resumed on any member within ${WATCH_RESUME_MS / 1000}s (${(lastErr as Error)?.message ?? 'closed'}); ${QUORUM_ADVICE}`, lastErr));
  }

  async compact(revision: number): Promise<void> {
    const upTo = Math.min(revision, await this.revision());
    if (upTo <= this.compacted) return;
    await this.call('/v3/kv/compaction', { revision: String(upTo), physical: true }, { write: true });
    this.compacted = upTo;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const end of [...this.streams.values()]) end();
    this.streams.clear();
    this.transport.close();
  }

  /** probeCompacted asks etcd for the oldest revision it still has by watching from revision 1. */
  private async probeCompacted(): Promise<number> {
    try {
      const w = await this.watch('\0probe', { afterRevision: 0, onEvent: () => {} });
      w.close();
      return 0;
    } catch (err) {
      if (err instanceof CompactedError) return err.compacted;
      throw err;
    }
  }

  private toKv(kv: EtcdKv): KeyValue {
    return {
      key: unb64(kv.key).slice(this.opts.prefix.length),
      value: unb64(kv.value),
      createRevision: Number(kv.create_revision ?? 0),
      modRevision: Number(kv.mod_revision ?? 0),
      version: Number(kv.version ?? 0),
    };
  }

  private toEvent(ev: { type?: string; kv: EtcdKv; prev_kv?: EtcdKv }): WatchEvent {
    const kv = this.toKv(ev.kv);
    const prevKv = ev.prev_kv ? this.toKv(ev.prev_kv) : undefined;
    if (ev.type === 'DELETE') return { type: 'delete', kv: { ...(prevKv ?? kv), modRevision: kv.modRevision }, prevKv, revision: kv.modRevision };
    return { type: 'put', kv, prevKv, revision: kv.modRevision };
  }

  /** A missing key has mod revision 0 in etcd too, so one MOD comparison covers "must not exist". */
  private guardCompare(cond: WriteCondition): object[] {
    if (!cond.guard) return [];
    return [{ key: b64(this.opts.prefix + cond.guard.key), target: 'MOD', result: 'EQUAL', mod_revision: String(cond.guard.modRevision) }];
  }

  /**
   * A failed txn does not say which comparison failed: the failure branch reads the written key and the
   * guard key at the same revision the comparisons saw, and failureReason tells them apart from those.
   */
  private failureReads(k: string, cond: WriteCondition): object[] {
    const reads: object[] = [{ request_range: { key: k } }];
    if (cond.guard) reads.push({ request_range: { key: b64(this.opts.prefix + cond.guard.key) } });
    return reads;
  }

  private failureReason(res: TxnResponse, cond: WriteCondition): WriteFailure {
    if (!cond.guard) return 'condition';
    const raw = res.responses?.[1]?.response_range?.kvs?.[0];
    return Number(raw?.mod_revision ?? 0) === cond.guard.modRevision ? 'condition' : 'guard';
  }

  private firstKv(res: TxnResponse): KeyValue | undefined {
    const kv = res.responses?.[0]?.response_range?.kvs?.[0];
    return kv ? this.toKv(kv) : undefined;
  }

  /** call is one unary request within the request budget, every member tried in turn. */
  private async call<T>(path: string, body: unknown, opts: { write?: boolean; budgetMs?: number } = {}): Promise<T> {
    this.check();
    const budget = opts.budgetMs ?? this.requestTimeoutMs;
    const signal = AbortSignal.timeout(budget);
    try {
      return await this.onEachMember((idx) => this.transport.postJson<T>(idx, path, body, signal), signal, !!opts.write, opts.write ? 'write' : 'read', budget);
    } catch (err) {
      // A write that found no quorum says as much about reads: the next ones go to any member at once.
      if (opts.write && !this.degraded && this.quorumTrouble(err)) {
        this.degraded = true;
        this.probeAt = Date.now() + LINEARIZABLE_PROBE_MS;
      }
      throw err;
    }
  }

  /**
   * read is a linearizable range; when those fail for want of quorum (a timeout, no leader) it is served
   * serializably by any live member, from its own copy, and stays so until a probe in the background
   * finds linearizable reads answering again.
   */
  private async read<T>(body: Record<string, unknown>): Promise<T> {
    if (!this.degraded) {
      try {
        return await this.call<T>('/v3/kv/range', body, { budgetMs: this.readTimeoutMs });
      } catch (err) {
        if (!this.quorumTrouble(err)) throw err;
        this.degraded = true;
        this.probeAt = Date.now() + LINEARIZABLE_PROBE_MS;
      }
    } else this.probe(body);
    return this.call<T>('/v3/kv/range', { ...body, serializable: true });
  }

  private probe(body: Record<string, unknown>): void {
    if (this.probing || Date.now() < this.probeAt) return;
    this.probing = true;
    this.call('/v3/kv/range', { ...body, count_only: true }, { budgetMs: this.readTimeoutMs })
      .then(
        () => (this.degraded = false),
        () => undefined,
      )
      .finally(() => {
        this.probing = false;
        this.probeAt = Date.now() + LINEARIZABLE_PROBE_MS;
      });
  }

  private quorumTrouble(err: unknown): boolean {
    if (this.closed) return false;
    const cause = err instanceof StoreUnavailableError && err.cause instanceof EtcdAnswerError ? err.cause : err;
    return cause instanceof EtcdTimeoutError || (cause instanceof EtcdAnswerError && cause.transient);
  }

  /**
   * onEachMember runs one request against the members in turn, starting with the last one that answered.
   * A member that cannot be connected to, or that refused before proposing anything (no leader), hands
   * the request on; a write the member may have carried out is never sent twice. Errors name the store
   * and what to do, never an endpoint (it may carry credentials).
   */
  private async onEachMember<T>(attempt: (idx: number) => Promise<T>, signal: AbortSignal, write: boolean, what: string, budgetMs = this.requestTimeoutMs): Promise<T> {
    const n = this.opts.endpoints.length;
    let lastErr: unknown;
    // What a live member said outranks a dead member's silence in the error.
    let answer: EtcdAnswerError | undefined;
    let unreachable = 0;
    // Read once: concurrent requests move the preferred member while this one goes round.
    const first = this.endpoint;
    for (let i = 0; i < n; i++) {
      const idx = (first + i) % n;
      try {
        const out = await attempt(idx);
        this.endpoint = idx;
        return out;
      } catch (err) {
        if (this.closed) throw new StoreUnavailableError('the store is closed', err);
        if (signal.aborted) {
          // A member that hangs (paused, partitioned) is not asked first again: the next request
          // starts with the next member. This one is not resent: a paused member may still apply it.
          if (this.endpoint === idx) this.endpoint = (idx + 1) % n;
          const seconds = budgetMs / 1000;
          throw new EtcdTimeoutError(`the etcd store did not answer the ${what} within ${seconds}s${write ? ' (the write was not acknowledged; it may still be applied once etcd recovers)' : ''}: ${QUORUM_ADVICE}`, err);
        }
        if (err instanceof EtcdAnswerError) {
          if (err.transient && (!write || err.notApplied)) {
            answer = err;
            continue;
          }
          if (err.transient) throw new StoreUnavailableError(`the etcd store could not carry out the ${what} (${err.etcdMessage}); the write may still be applied once etcd recovers: ${QUORUM_ADVICE}`, err);
          throw err;
        }
        lastErr = err;
        unreachable++;
      }
    }
    if (answer) throw new StoreUnavailableError(`the etcd store cannot serve the ${what}: ${unreachable} of ${n} members unreachable, the others answer "${answer.etcdMessage}"; ${QUORUM_ADVICE}`, answer);
    if (isTlsError(lastErr)) {
      throw new EtcdUnreachableError(`no etcd member accepted a TLS connection: ${tlsReason(lastErr)}; check --store-cafile (the CA of the members' serving certificates) and --store-certfile/--store-keyfile (a client certificate the members trust)`, lastErr);
    }
    throw new EtcdUnreachableError(`no etcd member answered (${(lastErr as Error)?.message ?? 'unknown error'})${write ? '; the write was not acknowledged' : ''}: check that the etcd members are running and reachable`, lastErr);
  }

  private check(): void {
    if (this.closed) throw new StoreUnavailableError('the store is closed');
  }
}

interface TxnResponse {
  header: Header;
  succeeded?: boolean;
  responses?: Array<{
    response_put?: { prev_kv?: EtcdKv };
    response_range?: { kvs?: EtcdKv[] };
    response_delete_range?: { prev_kvs?: EtcdKv[] };
  }>;
}

interface WatchState {
  full: string;
  opts: WatchOptions;
  /** The revision of the last event delivered (or the watch's starting point): a resume starts after it. */
  last: number | undefined;
  closed: boolean;
  ctrl?: AbortController;
  end?: (err?: Error) => void;
}

interface WatchMessage {
  header?: Header;
  created?: boolean;
  canceled?: boolean;
  compact_revision?: string;
  cancel_reason?: string;
  events?: Array<{ type?: string; kv: EtcdKv; prev_kv?: EtcdKv }>;
}

/** parseEtcdEndpoint reads `etcd://host:port[,host:port]/prefix` (https via `etcd+https://`). */
export function parseEtcdEndpoint(url: string): EtcdStoreOptions {
  const m = /^etcd(\+https?)?:\/\/([^/]+)(\/.*)?$/i.exec(url);
  if (!m) throw new StoreConfigError('an etcd endpoint looks like etcd://HOST:PORT[,HOST:PORT]/PREFIX');
  const scheme = m[1] ? m[1].slice(1).toLowerCase() : 'http';
  const endpoints = m[2]!.split(',').filter(Boolean).map((h) => `${scheme}://${h}`);
  const prefix = (m[3] ?? '/skiff').replace(/\/+$/, '') || '/skiff';
  return { endpoints, prefix };
}

import { CompactedError, FutureRevisionError, StoreConfigError, StoreUnavailableError } from './errors.js';
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
  requestTimeoutMs?: number;
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string | undefined) => (s ? Buffer.from(s, 'base64').toString('utf8') : '');

/**
 * EtcdStore keeps Skiff's state in an etcd v3 cluster (`etcd://HOST:PORT[,HOST:PORT]/PREFIX`), for
 * when one machine is not enough. It speaks etcd's JSON gateway over HTTP, so it needs no gRPC
 * stack: compare-and-swap maps onto a transaction on the key's mod revision, watches onto one
 * streaming watch request per prefix, and revisions are etcd's own.
 */
export class EtcdStore implements Store {
  private closed = false;
  private compacted = 0;
  private endpoint = 0;
  private readonly streams = new Map<AbortController, () => void>();

  constructor(private readonly opts: EtcdStoreOptions) {
    if (!opts.endpoints.length) throw new StoreConfigError('an etcd endpoint needs at least one host:port');
  }

  /** open checks that the cluster answers and learns how far it has been compacted. */
  async open(): Promise<this> {
    await this.revision();
    this.compacted = await this.probeCompacted();
    return this;
  }

  async revision(): Promise<number> {
    const res = await this.call<{ header: Header }>('/v3/kv/range', { key: b64(this.opts.prefix + '\0rev'), count_only: true });
    return Number(res.header.revision ?? 0);
  }

  async compactedRevision(): Promise<number> {
    return this.compacted;
  }

  async get(key: string): Promise<KeyValue | undefined> {
    const res = await this.call<{ kvs?: EtcdKv[] }>('/v3/kv/range', { key: b64(this.opts.prefix + key) });
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
      res = await this.call('/v3/kv/range', {
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
    });
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
    });
    const revision = Number(res.header.revision ?? 0);
    const prevRaw = res.responses?.[0]?.response_delete_range?.prev_kvs?.[0];
    if (!res.succeeded) return { ok: false, revision, current: this.firstKv(res), reason: this.failureReason(res, cond) };
    if (!prevRaw) return { ok: false, revision, reason: 'condition' };
    const prevKv = this.toKv(prevRaw);
    return { ok: true, revision, kv: { ...prevKv, modRevision: revision }, prevKv };
  }

  async watch(prefix: string, opts: WatchOptions): Promise<Watcher> {
    this.check();
    let closed = false;
    const full = this.opts.prefix + prefix;
    const start = opts.afterRevision === undefined ? undefined : opts.afterRevision + 1;
    if (opts.afterRevision !== undefined && opts.afterRevision < this.compacted) throw new CompactedError(opts.afterRevision, this.compacted);
    const ctrl = new AbortController();
    // Closing the store ends the watch from the store's side: the watcher hears it through onClose.
    this.streams.set(ctrl, () => {
      if (!closed) opts.onClose?.();
      closed = true;
    });
    const res = await this.fetch('/v3/watch', { create_request: { key: b64(full), range_end: b64(prefixEnd(full)), prev_kv: true, ...(start !== undefined ? { start_revision: String(start) } : {}) } }, ctrl.signal, false);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    const stop = () => {
      closed = true;
      this.streams.delete(ctrl);
      ctrl.abort();
    };
    // The first message says whether etcd accepted the watch; a compacted start revision is refused here.
    const first = await new Promise<WatchMessage>((resolve, reject) => {
      const pump = async () => {
        try {
          for (;;) {
            const { value, done } = await reader.read();
            if (done) {
              if (!closed) opts.onClose?.(new StoreUnavailableError('the etcd watch stream ended'));
              stop();
              return;
            }
            buf += decoder.decode(value, { stream: true });
            let nl: number;
            while ((nl = buf.indexOf('\n')) >= 0) {
              const line = buf.slice(0, nl).trim();
              buf = buf.slice(nl + 1);
              if (!line) continue;
              const msg = (JSON.parse(line) as { result?: WatchMessage }).result ?? ({} as WatchMessage);
              if (!settled) {
                settled = true;
                resolve(msg);
                if (msg.canceled) return;
              }
              for (const ev of msg.events ?? []) if (!closed) opts.onEvent(this.toEvent(ev));
            }
          }
        } catch (err) {
          if (!settled) reject(err);
          else if (!closed) opts.onClose?.(new StoreUnavailableError(`the etcd watch failed: ${(err as Error).message}`, err));
          stop();
        }
      };
      let settled = false;
      void pump();
    });
    if (first.canceled) {
      stop();
      const compactRev = Number(first.compact_revision ?? 0);
      if (compactRev > 0) {
        this.compacted = Math.max(this.compacted, compactRev - 1);
        throw new CompactedError(opts.afterRevision ?? 0, compactRev - 1);
      }
      throw new StoreUnavailableError(`etcd refused the watch: ${first.cancel_reason ?? 'no reason given'}`);
    }
    return { close: stop };
  }

  async compact(revision: number): Promise<void> {
    const upTo = Math.min(revision, await this.revision());
    if (upTo <= this.compacted) return;
    await this.call('/v3/kv/compaction', { revision: String(upTo), physical: true });
    this.compacted = upTo;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const [c, end] of this.streams) {
      end();
      c.abort();
    }
    this.streams.clear();
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

  private async call<T>(path: string, body: unknown): Promise<T> {
    this.check();
    const res = await this.fetch(path, body, AbortSignal.timeout(this.opts.requestTimeoutMs ?? 10_000), true);
    return (await res.json()) as T;
  }

  /** fetch tries each endpoint in turn, starting with the last one that answered. */
  private async fetch(path: string, body: unknown, signal: AbortSignal, checkStatus: boolean): Promise<Response> {
    let lastErr: unknown;
    for (let i = 0; i < this.opts.endpoints.length; i++) {
      const idx = (this.endpoint + i) % this.opts.endpoints.length;
      try {
        const res = await fetch(this.opts.endpoints[idx] + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal });
        if (checkStatus && !res.ok) {
          const text = await res.text();
          throw new StoreUnavailableError(`etcd answered HTTP ${res.status}: ${text.slice(0, 200)}`);
        }
        this.endpoint = idx;
        return res;
      } catch (err) {
        if (err instanceof StoreUnavailableError) throw err;
        lastErr = err;
      }
    }
    // Never name the endpoint: it may carry credentials.
    throw new StoreUnavailableError(`no etcd endpoint answered (${(lastErr as Error)?.message ?? 'unknown error'}); the write, if any, was not acknowledged`, lastErr);
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

interface WatchMessage {
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

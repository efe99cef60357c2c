import type http from 'node:http';

import { ApiError } from '../api/errors.js';

export interface LiveStreamOptions {
  /** Clients served at once; one more is refused with 503 (default 32). */
  maxClients?: number;
  /** Bytes queued for a client that does not read before it is dropped (default 1 MiB). */
  maxQueuedBytes?: number;
  /** A comment line this often keeps proxies and the browser from closing an idle stream (default 15 s). */
  heartbeatMs?: number;
}

/**
 * LiveStream sends server-sent events to the dashboard's pages. Each event is serialised once for all
 * clients; a client whose socket stops draining is dropped rather than buffered for, so a slow or gone
 * page cannot grow the server's memory.
 */
export class LiveStream {
  /** Each client with its channel (the tick rate it asked for; '' for the default) and what runs when it leaves. */
  private readonly clients = new Map<http.ServerResponse, { channel: string; onGone?: () => void }>();
  private readonly maxClients: number;
  private readonly maxQueued: number;
  private readonly heartbeatMs: number;
  private heartbeat?: NodeJS.Timeout;
  /** Clients dropped for not reading, since start. */
  dropped = 0;

  constructor(opts: LiveStreamOptions = {}) {
    this.maxClients = opts.maxClients ?? 32;
    this.maxQueued = opts.maxQueuedBytes ?? 1024 * 1024;
    this.heartbeatMs = opts.heartbeatMs ?? 15_000;
  }

  get size(): number {
    return this.clients.size;
  }

  /** on counts the clients of one channel. */
  on(channel: string): number {
    let n = 0;
    for (const c of this.clients.values()) if (c.channel === channel) n++;
    return n;
  }

  /**
   * attach answers the request with an event stream that stays open until the client or close() ends it.
   * A client joins one channel (default ''), so events meant for that channel alone reach it; `onGone`
   * runs once when it leaves.
   */
  attach(req: http.IncomingMessage, res: http.ServerResponse, channel = '', onGone?: () => void): void {
    if (this.clients.size >= this.maxClients) throw new ApiError(503, 'ServiceUnavailable', `the dashboard already streams to ${this.maxClients} pages; close one and retry`);
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
    res.write('retry: 2000\n\n');
    this.clients.set(res, { channel, onGone });
    const gone = () => this.leave(res);
    req.once('close', gone);
    res.once('close', gone);
    if (!this.heartbeat) {
      this.heartbeat = setInterval(() => this.write(': keep-alive\n\n'), this.heartbeatMs);
      this.heartbeat.unref();
    }
  }

  /** send writes one event (`data` as JSON) to every client, or only to those on `channel`. */
  send(event: string, data: unknown, channel?: string): void {
    if (!this.clients.size || (channel !== undefined && !this.on(channel))) return;
    this.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`, channel);
  }

  /** close ends every stream. */
  close(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    for (const res of [...this.clients.keys()]) {
      this.leave(res);
      res.end();
    }
  }

  /** leave forgets a client once, however many ways it went (closed, dropped, ended). */
  private leave(res: http.ServerResponse): void {
    const c = this.clients.get(res);
    if (!c) return;
    this.clients.delete(res);
    c.onGone?.();
  }

  private write(chunk: string, channel?: string): void {
    for (const [res, c] of this.clients) {
      if (channel !== undefined && c.channel !== channel) continue;
      if (res.writableLength > this.maxQueued) {
        this.leave(res);
        this.dropped++;
        res.destroy();
        continue;
      }
      res.write(chunk);
    }
  }
}

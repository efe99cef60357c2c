import type http from 'node:http';
import { resolve } from 'node:path';

import { ApiError } from '../api/errors.js';
import type { ResourceService } from '../api/resources.js';
import type { ApiMount } from '../api/server.js';

import { StaticAssets } from './assets.js';
import { ChangeFeed } from './changes.js';
import type { DecisionRing } from './decisions.js';
import type { SampleRing } from './samples.js';
import { LiveStream, type LiveStreamOptions } from './stream.js';

/** Where `npm run build` puts the page (scripts/build-web.mjs), from both src/dashboard and dist/dashboard. */
export const DEFAULT_ASSET_DIR = resolve(import.meta.dirname, '..', '..', 'dist', 'web');

const PREFIX = '/ui';
const API_PREFIX = '/ui/api';
const MAX_HISTORY_KEYS = 20;
/** The tick intervals a stream may ask for (`?interval=MS`): ten a second at most, one each ten seconds at least. */
export const STREAM_INTERVAL_MS = { min: 100, max: 10_000 } as const;

export interface DashboardOptions {
  samples: SampleRing;
  decisions: DecisionRing;
  /** The built page (default dist/web in the package). */
  assetDir?: string;
  stream?: LiveStreamOptions;
  /** With it, the stream also says which collections changed (event `changes`), so pages need no watch of their own. */
  resources?: ResourceService;
}

/**
 * Dashboard serves the web UI at /ui on the API listener: the page and its assets without a token (the
 * page asks for it), and under /ui/api the recent samples and decisions, with the token, as JSON and as
 * one stream of server-sent events (with which collections changed). Everything else the page shows
 * it reads from the resource API.
 */
export class Dashboard {
  readonly mount: ApiMount;
  private readonly assets: StaticAssets;
  private readonly live: LiveStream;
  private readonly unsubscribe: (() => void)[] = [];
  private readonly feed?: ChangeFeed;
  /** Rings at the other intervals streams asked for, each running while it has a client. */
  private readonly rates = new Map<number, { ring: SampleRing; off: () => void }>();

  constructor(private readonly opts: DashboardOptions) {
    this.assets = new StaticAssets(opts.assetDir ?? DEFAULT_ASSET_DIR);
    this.live = new LiveStream(opts.stream);
    if (opts.resources) this.feed = new ChangeFeed(opts.resources, (changed) => this.live.send('changes', { changed }));
    this.mount = {
      matches: (path) => path === PREFIX || path.startsWith(PREFIX + '/'),
      public: (path) => !(path === API_PREFIX || path.startsWith(API_PREFIX + '/')),
      handle: (req, res, path, query) => this.handle(req, res, path, query),
    };
  }

  /** start begins sampling and forwards each sample and decision to the open streams. */
  start(): void {
    this.unsubscribe.push(this.opts.samples.onTick((t) => this.live.send('tick', t, '')));
    this.unsubscribe.push(this.opts.decisions.onDecision((d) => this.live.send('decision', d)));
    this.opts.samples.start();
    void this.feed?.start();
  }

  stop(): void {
    this.opts.samples.stop();
    for (const r of this.rates.values()) {
      r.ring.stop();
      r.off();
    }
    this.rates.clear();
    this.feed?.stop();
    for (const u of this.unsubscribe.splice(0)) u();
    this.live.close();
  }

  /** streams is how many pages hold the live stream open. */
  get streams(): number {
    return this.live.size;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse, path: string, query: URLSearchParams): void {
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') throw new ApiError(405, 'MethodNotAllowed', `${method} is not supported on ${path}; the dashboard only reads`);
    if (path === API_PREFIX || path.startsWith(API_PREFIX + '/')) return this.api(req, res, path.slice(API_PREFIX.length), query);
    this.assets.serve(req, res, path.slice(PREFIX.length));
  }

  private api(req: http.IncomingMessage, res: http.ServerResponse, sub: string, query: URLSearchParams): void {
    const { samples, decisions } = this.opts;
    switch (sub) {
      case '/samples': {
        // An hour of every series at once is megabytes with many Routes: a page asks for the ones it charts.
        const keys = query.getAll('key');
        if (!keys.length || keys.length > MAX_HISTORY_KEYS) throw new ApiError(400, 'BadRequest', `name between 1 and ${MAX_HISTORY_KEYS} series as key=route:NS/NAME or key=function:NS/NAME (${API_PREFIX}/top lists them)`);
        return json(res, { intervalMs: samples.intervalMs, series: samples.history(keys) });
      }
      case '/top':
        return json(res, { intervalMs: samples.intervalMs, windowMs: samples.intervalMs * samples.coarseEvery, series: samples.summary() });
      case '/decisions': {
        const after = Number(query.get('after') ?? '0');
        if (!Number.isInteger(after) || after < 0) throw new ApiError(400, 'BadRequest', `after must be a decision id (a non-negative integer), not "${query.get('after')}"`);
        return json(res, { items: decisions.recent(after) });
      }
      case '/stream':
        return this.stream(req, res, query.get('interval'));
      default:
        throw new ApiError(404, 'NotFound', `the dashboard API has no ${API_PREFIX}${sub}; it serves ${API_PREFIX}/samples, /top, /decisions and /stream`);
    }
  }

  /**
   * stream attaches a page to the event stream. With `interval` its ticks come at that rate from a ring
   * of its own over the same counters (shared by every page that asks for the same rate and stopped with
   * the last one), so the ring the hour of history is kept in keeps its one interval.
   */
  private stream(req: http.IncomingMessage, res: http.ServerResponse, raw: string | null): void {
    const { samples } = this.opts;
    const ms = raw === null ? samples.intervalMs : parseInterval(raw);
    if (ms === samples.intervalMs) return this.live.attach(req, res);
    const channel = String(ms);
    this.live.attach(req, res, channel, () => {
      const rate = this.rates.get(ms);
      if (!rate || this.live.on(channel)) return;
      rate.ring.stop();
      rate.off();
      this.rates.delete(ms);
    });
    if (this.rates.has(ms)) return;
    const ring = samples.live(ms);
    this.rates.set(ms, { ring, off: ring.onTick((t) => this.live.send('tick', t, channel)) });
    ring.start();
  }
}

/** parseInterval reads a stream's `interval` (whole milliseconds within STREAM_INTERVAL_MS) or refuses it with 400. */
export function parseInterval(raw: string): number {
  const { min, max } = STREAM_INTERVAL_MS;
  const ms = /^\d{1,6}$/.test(raw) ? Number(raw) : NaN;
  if (!(ms >= min && ms <= max)) throw new ApiError(400, 'BadRequest', `interval must be whole milliseconds from ${min} to ${max} (ten ticks a second to one each ten seconds), not "${raw}"`);
  return ms;
}

function json(res: http.ServerResponse, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

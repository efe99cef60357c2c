import http from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction, type Socket } from 'node:net';

import { type UpstreamGuard, UpstreamRefusedError } from '../../security/upstream-guard.js';
import { parseQuantity } from '../../util/quantity.js';
import { readBounded } from '../../util/read-body.js';

import { TriggerError } from './errors.js';

/** The metrics-api trigger's metadata, strings as in a KEDA ScaledObject. */
export interface MetricsApiMetadata {
  /** The http(s) URL answering JSON. */
  url: string;
  /** Dotted path to the number in the answer: `depth`, `stats.queue`, `items.0.n`. */
  valueLocation: string;
  /** The value one replica should carry (read by the autoscaler, not here). */
  targetValue?: string;
  /** Below this value the trigger does not wake a Function at zero; default 0 (read by the autoscaler). */
  activationTargetValue?: string;
  /** Only GET is supported, as KEDA's default. */
  method?: string;
}

/** FetchJson fetches a URL and parses its JSON answer; it must stop when `signal` aborts. */
export type FetchJson = (url: string, signal: AbortSignal) => Promise<unknown>;

/** The deepest valueLocation accepted: a bound on the walk a user's path can ask for. */
const MAX_PATH_SEGMENTS = 32;

/**
 * readMetricsApi reads the metrics-api trigger's number: it fetches `meta.url` with `opts.fetchJson`
 * (at most `opts.timeoutMs`) and returns the number at `meta.valueLocation`. A numeric string is read
 * as a Kubernetes quantity (`"250m"`, `"3"`), as KEDA does. Throws TriggerError: bad metadata
 * (`trigger_metadata`), too slow (`trigger_timeout`), a path that finds nothing or something that is
 * not a number (`trigger_value`, naming the location and what it found).
 * @example
 * const depth = await readMetricsApi({ url: 'http://10.0.0.5:9000/queue', valueLocation: 'stats.depth' }, { fetchJson: guardedFetchJson(guard), timeoutMs: 3000 });
 */
export async function readMetricsApi(meta: MetricsApiMetadata, opts: { fetchJson: FetchJson; timeoutMs: number }): Promise<number> {
  const url = checkUrl(meta.url);
  const path = parseValueLocation(meta.valueLocation);
  if (meta.method !== undefined && meta.method.toUpperCase() !== 'GET') throw new TriggerError('trigger_metadata', `method "${meta.method}" is not supported; the metrics-api trigger uses GET`, 'method');
  const answer = await withTimeout(opts.fetchJson, url.href, opts.timeoutMs);
  return valueAt(answer, path, meta.valueLocation);
}

function checkUrl(raw: unknown): URL {
  let url: URL;
  try {
    url = new URL(String(raw ?? ''));
  } catch {
    throw new TriggerError('trigger_metadata', `url "${String(raw)}" is not an absolute URL (such as http://10.0.0.5:9000/queue)`, 'url');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TriggerError('trigger_metadata', `url "${url.href}" must be http or https`, 'url');
  if (url.username || url.password) throw new TriggerError('trigger_metadata', 'url must not carry credentials', 'url');
  return url;
}

/** parseValueLocation splits `a.b.0.c` into its segments. */
export function parseValueLocation(loc: unknown): string[] {
  if (typeof loc !== 'string' || loc.trim() === '') throw new TriggerError('trigger_metadata', 'valueLocation is required: a dotted path into the JSON answer, such as stats.queue or items.0.n', 'valueLocation');
  const segs = loc.split('.');
  if (segs.some((s) => s === '')) throw new TriggerError('trigger_metadata', `valueLocation "${loc}" has an empty segment; write it as a.b.0.c`, 'valueLocation');
  if (segs.length > MAX_PATH_SEGMENTS) throw new TriggerError('trigger_metadata', `valueLocation "${loc}" is deeper than ${MAX_PATH_SEGMENTS} segments`, 'valueLocation');
  return segs;
}

/** valueAt walks the path into a JSON value and reads a number there. */
export function valueAt(doc: unknown, path: string[], loc = path.join('.')): number {
  let cur: unknown = doc;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i]!;
    const here = path.slice(0, i).join('.') || '(the answer)';
    if (Array.isArray(cur)) {
      if (!/^\d+$/.test(seg)) throw new TriggerError('trigger_value', `valueLocation "${loc}": ${here} is an array, so "${seg}" must be an index`, 'valueLocation');
      if (Number(seg) >= cur.length) throw new TriggerError('trigger_value', `valueLocation "${loc}": ${here} has ${cur.length} entr${cur.length === 1 ? 'y' : 'ies'}, no index ${seg}`, 'valueLocation');
      cur = cur[Number(seg)];
    } else if (cur !== null && typeof cur === 'object') {
      if (!Object.prototype.hasOwnProperty.call(cur, seg)) {
        const keys = Object.keys(cur).slice(0, 10);
        throw new TriggerError('trigger_value', `valueLocation "${loc}": ${here} has no "${seg}" (it has ${keys.length ? keys.map((k) => `"${k}"`).join(', ') : 'no keys'})`, 'valueLocation');
      }
      cur = (cur as Record<string, unknown>)[seg];
    } else {
      throw new TriggerError('trigger_value', `valueLocation "${loc}": ${here} is ${describe(cur)}, which has no "${seg}"`, 'valueLocation');
    }
  }
  if (typeof cur === 'number' && Number.isFinite(cur)) return cur;
  if (typeof cur === 'string') {
    const n = parseQuantity(cur.trim());
    if (n !== undefined) return n;
  }
  throw new TriggerError('trigger_value', `valueLocation "${loc}" found ${describe(cur)}, not a number`, 'valueLocation');
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v === 'object') return 'an object';
  const text = JSON.stringify(v) ?? String(v);
  return `${typeof v} ${text.length > 40 ? `${text.slice(0, 40)}...` : text}`;
}

async function withTimeout(fetchJson: FetchJson, url: string, timeoutMs: number): Promise<unknown> {
  const ctl = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      ctl.abort();
      reject(new TriggerError('trigger_timeout', `${url} did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
  });
  try {
    // The race keeps the bound even for a fetch that ignores its signal.
    return await Promise.race([fetchJson(url, ctl.signal), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

/** Options of `guardedFetchJson`. */
export interface GuardedFetchOptions {
  /** Largest answer read, in bytes; default 1 MiB. */
  maxBytes?: number;
}

/**
 * guardedFetchJson is the default FetchJson: a GET through the operator's upstream guard (loopback,
 * link-local and metadata addresses are refused unless `--allow-upstream` allows them; Skiff's own
 * listeners always), connected only to checked addresses, reading at most `maxBytes`.
 */
export function guardedFetchJson(guard: UpstreamGuard, opts: GuardedFetchOptions = {}): FetchJson {
  const maxBytes = opts.maxBytes ?? 1024 * 1024;
  return async (raw, signal) => {
    const url = new URL(raw);
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    // A literal address is never looked up: refuse it before a connection is opened.
    if (isIP(host)) await guard.check(host, url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80);
    const res = await get(guard, url, signal);
    const where = `${url.origin}${url.pathname}`;
    if ((res.statusCode ?? 0) < 200 || (res.statusCode ?? 0) > 299) {
      res.destroy();
      throw new TriggerError('trigger_fetch', `${where} answered HTTP ${res.statusCode}`);
    }
    let body: Buffer;
    try {
      body = await readBounded(res, maxBytes, (announced) =>
        announced !== undefined
          ? new TriggerError('trigger_too_large', `${where} answered ${announced} bytes; the limit is ${maxBytes}`)
          : new TriggerError('trigger_too_large', `${where} answered more than the limit of ${maxBytes} bytes`),
      );
    } catch (err) {
      if (err instanceof TriggerError) throw err;
      throw new TriggerError('trigger_fetch', `the answer from ${where} broke off`, undefined, { cause: err });
    }
    try {
      return JSON.parse(body.toString('utf8')) as unknown;
    } catch (err) {
      throw new TriggerError('trigger_bad_json', `${where} did not answer JSON (${(err as Error).message})`, undefined, { cause: err });
    }
  };
}

function get(guard: UpstreamGuard, url: URL, signal: AbortSignal): Promise<http.IncomingMessage> {
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
  const lib = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.request(
      { protocol: url.protocol, hostname: host, port, path: `${url.pathname}${url.search}`, method: 'GET', agent: false, signal, lookup: guard.lookup(port) as unknown as LookupFunction, headers: { accept: 'application/json', 'user-agent': 'skiff-autoscaler' } },
      resolve,
    );
    // A literal address skips lookup: check where the socket went, before a byte is sent.
    req.once('socket', (socket: Socket) => {
      socket.once('connect', () => {
        const why = socket.remoteAddress ? guard.checkAddress(host, socket.remoteAddress, port) : 'the connection has no remote address';
        if (why) req.destroy(new UpstreamRefusedError(why));
      });
    });
    req.once('error', (err) => reject(err instanceof UpstreamRefusedError ? err : new TriggerError(signal.aborted ? 'trigger_timeout' : 'trigger_fetch', `GET ${url.origin}${url.pathname} failed (${(err as NodeJS.ErrnoException).code ?? err.message})`, undefined, { cause: err })));
    req.end();
  });
}

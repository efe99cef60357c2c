import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import type { ConnectionOptions } from 'node:tls';

import type { Logger } from 'pino';
import type { Agent, buildConnector } from 'undici';

import { type UpstreamGuard,UpstreamRefusedError } from '../../security/index.js';

type Undici = typeof import('undici');

// undici is loaded when the first upstream connection is built (see cluster.ts for why).
const requireHere = createRequire(import.meta.url);
const undici = (): Undici => requireHere('undici') as Undici;

/** Connector is undici's connection factory: one call per new upstream connection. */
export type Connector = buildConnector.connector;

/** GuardedConnectorOptions configure one guarded connection factory. */
export interface GuardedConnectorOptions {
  upstreams: UpstreamGuard;
  /** TCP connect deadline in ms. */
  timeoutMs: number;
  /**
   * TLS settings for `https:` origins, asked per connection (so a rotated identity applies to new
   * connections); the same object returned again reuses the built connector and its TLS sessions.
   * A promise (settings not ready yet, such as a node identity being made) delays the connection
   * until it settles. A throw or a rejection fails that connection with the error.
   */
  tls?: () => ConnectionOptions | Promise<ConnectionOptions>;
  /** Called with every refused or failed connection set-up (not with ordinary network errors). */
  onRefused?: (err: Error) => void;
}

/**
 * guardedConnector builds an undici connector whose every connection goes only where the operator's
 * UpstreamGuard allows: an IP literal is checked before the socket opens, and a name resolves through
 * `UpstreamGuard.lookup`, so the address connected to is the address checked (no rebinding between
 * check and connect). A refusal fails the connection with an UpstreamRefusedError (code
 * `upstream_refused`) that says why and which flag would allow it.
 */
export function guardedConnector(o: GuardedConnectorOptions): Connector {
  // undici's connector takes `lookup` from its build options only, and a lookup does not see the
  // port, which is part of the check (HOST:PORT grants, Skiff's own listeners): one built connector
  // per port, rebuilt when the TLS settings change.
  const built = new Map<number, { tls: ConnectionOptions | undefined; connect: Connector }>();
  return (opts, callback) => {
    const https = opts.protocol === 'https:';
    const host = opts.hostname.startsWith('[') ? opts.hostname.slice(1, -1) : opts.hostname;
    const port = Number(opts.port) || (https ? 443 : 80);
    const fail = (err: Error) => {
      o.onRefused?.(err);
      callback(err, null);
    };
    if (isIP(host)) {
      const why = o.upstreams.checkAddress(host, host, port);
      if (why) return fail(new UpstreamRefusedError(why));
    }
    const connect = (tls: ConnectionOptions | undefined): void => {
      let b = built.get(port);
      if (!b || b.tls !== tls) {
        if (built.size >= MAX_PORTS) built.clear();
        b = { tls, connect: undici().buildConnector({ ...(tls ?? {}), timeout: o.timeoutMs, lookup: o.upstreams.lookup(port) } as buildConnector.BuildOptions) };
        built.set(port, b);
      }
      b.connect({ ...opts, hostname: host }, (err, socket) => {
        if (err) {
          if ((err as { code?: string }).code === 'upstream_refused') o.onRefused?.(err);
          callback(err, null);
        } else callback(null, socket!);
      });
    };
    let tls: ConnectionOptions | Promise<ConnectionOptions> | undefined;
    try {
      tls = https ? o.tls?.() : undefined;
    } catch (err) {
      return fail(err as Error);
    }
    if (tls instanceof Promise) tls.then(connect, fail);
    else connect(tls);
  };
}

/** Distinct ports one guarded connector keeps a built connector for. */
const MAX_PORTS = 64;

/** GuardedFetchOptions configure a fetch for server-side requests a resource author controls. */
export interface GuardedFetchOptions {
  upstreams: UpstreamGuard;
  /** Largest response body read, in bytes; larger answers fail. */
  maxBytes: number;
  timeoutMs?: number;
  logger?: Logger;
  /** Names the resource field in log lines (`default/api spec.filters[0].jwt.jwksUri`). */
  where?: string;
}

/**
 * guardedFetch returns a `fetch` whose connections go through the UpstreamGuard, that never follows
 * redirects (a redirect could name any host) and that reads at most `maxBytes` of the answer.
 */
export function guardedFetch(o: GuardedFetchOptions): (url: string | URL, init?: RequestInit) => Promise<Response> {
  let agent: Agent | undefined;
  // A key set that cannot be fetched is asked again on every request: say why once every few seconds, not each time.
  let quietUntil = 0;
  const onRefused = (err: Error) => {
    const now = Date.now();
    if (now < quietUntil) return;
    quietUntil = now + 10_000;
    o.logger?.warn({ where: o.where, code: (err as { code?: string }).code }, `upstream connection refused: ${err.message}`);
  };
  return async (url, init) => {
    const u = undici();
    agent ??= new u.Agent({ connect: guardedConnector({ upstreams: o.upstreams, timeoutMs: o.timeoutMs ?? 10_000, onRefused }) });
    const res = await u.fetch(url, { ...(init as object), redirect: 'manual', dispatcher: agent } as Parameters<Undici['fetch']>[1]);
    const body = await readCapped(res.body as ReadableStream<Uint8Array> | null, o.maxBytes);
    return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers as unknown as Headers });
  };
}

async function readCapped(body: ReadableStream<Uint8Array> | null, maxBytes: number): Promise<Uint8Array> {
  if (!body) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw new UpstreamRefusedError(`the response is larger than ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}

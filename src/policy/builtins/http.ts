import { isIP } from 'node:net';

import type { UpstreamGuard } from '../../security/index.js';
import { fromJSON, isObject, ObjectBuilder, objEntries, objGet, toJSON, type Value } from '../value.js';

import { jsonText } from './encoding.js';
import { runSync } from './sync-worker.js';
import { type Builtin,builtinErr, BuiltinError, typeErr } from './types.js';

const KEYS = new Set([
  'method', 'url', 'body', 'raw_body', 'headers', 'enable_redirect', 'force_json_decode', 'force_yaml_decode', 'tls_use_system_certs',
  'tls_ca_cert', 'tls_ca_cert_file', 'tls_ca_cert_env_variable', 'tls_client_cert', 'tls_client_cert_file', 'tls_client_cert_env_variable',
  'tls_client_key', 'tls_client_key_file', 'tls_client_key_env_variable', 'tls_insecure_skip_verify', 'tls_server_name', 'timeout', 'cache',
  'force_cache', 'force_cache_duration_seconds', 'raise_error', 'caching_mode', 'max_retry_attempts', 'cache_ignored_headers',
]);

// Runs in a worker (see runSync): performs one request, without following redirects (the caller
// checks each hop), connecting to the checked address when one is given, and hands the answer back.
const FETCH = `
const req = input;
const mod = require(req.url.startsWith('https:') ? 'node:https' : 'node:http');
const opts = { method: req.method, headers: req.headers, timeout: req.timeoutMs };
if (req.ip) opts.lookup = (_h, o, cb) => (o && o.all ? cb(null, [{ address: req.ip, family: req.family }]) : cb(null, req.ip, req.family));
const r = mod.request(req.url, opts, (res) => {
  const chunks = [];
  let size = 0;
  res.on('data', (c) => {
    size += c.length;
    if (size > req.maxBytes) {
      res.destroy();
      done({ ok: false, error: 'response body is larger than ' + req.maxBytes + ' bytes' });
      return;
    }
    chunks.push(c);
  });
  res.on('end', () => {
    const headers = {};
    for (const [k, v] of Object.entries(res.headers)) headers[k] = Array.isArray(v) ? v : [String(v)];
    done({ ok: true, status: res.statusCode, statusText: res.statusMessage, headers, text: Buffer.concat(chunks).toString('utf8') });
  });
  res.on('error', (e) => done({ ok: false, error: String(e.message) }));
});
r.on('timeout', () => r.destroy(new Error('request timed out')));
r.on('error', (e) => done({ ok: false, error: String(e.message) }));
if (req.body !== undefined) r.write(req.body);
r.end();
`;

// Runs in a worker: resolves a name to every address, as the connection would.
const RESOLVE = `
require('node:dns').lookup(input.name, { all: true }, (err, addrs) => {
  if (err) done({ ok: false, error: err.code || err.message });
  else done({ ok: true, addrs: addrs.map((a) => ({ address: a.address, family: a.family })) });
});
`;

interface Answer {
  ok: boolean;
  status?: number;
  statusText?: string;
  headers?: Record<string, string[]>;
  text?: string;
  error?: string;
}

interface Request {
  url: string;
  method: string;
  headers: Record<string, string>;
  body?: string;
  ip?: string;
  family?: number;
  timeoutMs: number;
  maxBytes: number;
}

/** fetchSync performs an HTTP request synchronously (built-ins are synchronous) in a worker thread. */
function fetchSync(req: Request): Answer {
  return runSync<Answer>(FETCH, req, req.timeoutMs) ?? { ok: false, error: 'request timed out' };
}

function hostAllowed(url: URL, allow: string[]): boolean {
  return allow.some((a) => a === '*' || a === url.host || a === url.hostname);
}

/** portOf is the port a URL connects to. */
function portOf(url: URL): number {
  return url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
}

/**
 * checkedAddress resolves the URL's host and checks every address against the operator's allow-list
 * (refused: loopback, link-local, Skiff's own listeners... unless allowed); the request then connects
 * to the address that was checked, so a name cannot answer differently between check and connect.
 */
function checkedAddress(guard: UpstreamGuard, url: URL, timeoutMs: number): { ip: string; family: number } {
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = portOf(url);
  const literal = isIP(host);
  const addrs = literal
    ? [{ address: host, family: literal }]
    : (() => {
        const r = runSync<{ ok: boolean; addrs?: Array<{ address: string; family: number }>; error?: string }>(RESOLVE, { name: host }, Math.max(1, timeoutMs));
        if (!r) throw builtinErr('http.send', `lookup ${host}: timed out`);
        if (!r.ok || !r.addrs?.length) throw builtinErr('http.send', `lookup ${host}: ${r.error ?? 'no address'}`);
        return r.addrs;
      })();
  for (const a of addrs) {
    const why = guard.checkAddress(host, a.address, port);
    if (why) throw builtinErr('http.send', `refused: ${why}`);
  }
  return { ip: addrs[0]!.address, family: addrs[0]!.family };
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 10;

/** HTTP: http.send (off unless the engine allows hosts; tests use a loopback server). */
export const register: Record<string, Builtin> = {
  'http.send': {
    arity: 1,
    sideEffect: true,
    fn: (a, ctx) => {
      const req = a[0]!;
      if (!isObject(req)) throw typeErr('http.send', 1, 'object', req);
      const bad = objEntries(req).map(([k]) => k).filter((k) => typeof k !== 'string' || !KEYS.has(k));
      if (bad.length) throw new BuiltinError('eval_type_error', `http.send: invalid request parameters(s): {${bad.map((k) => JSON.stringify(k)).join(', ')}}`);
      const missing = ['method', 'url'].filter((k) => objGet(req, k) === undefined);
      if (missing.length) throw new BuiltinError('eval_type_error', `http.send: missing required request parameters(s): {${missing.map((k) => JSON.stringify(k)).join(', ')}}`);
      const urlText = objGet(req, 'url');
      const method = objGet(req, 'method');
      if (typeof urlText !== 'string' || typeof method !== 'string') throw new BuiltinError('eval_type_error', 'http.send: url and method must be strings');
      let url: URL;
      try {
        url = new URL(urlText);
      } catch {
        throw builtinErr('http.send', `invalid url ${JSON.stringify(urlText)}`);
      }
      const guard = ctx.upstreams;
      const allowed = (u: URL): boolean => (ctx.httpAllow.length ? hostAllowed(u, ctx.httpAllow) : !!guard);
      if (!allowed(url)) throw builtinErr('http.send', `host ${url.host} is not allowed: http.send is off unless the engine lists the host in httpAllow or has an upstream allow-list`);
      const headers: Record<string, string> = {};
      const h = objGet(req, 'headers');
      if (isObject(h)) for (const [k, v] of objEntries(h)) headers[String(k)] = typeof v === 'string' ? v : jsonText(v);
      const raw = objGet(req, 'raw_body');
      const body = objGet(req, 'body');
      let payload = typeof raw === 'string' ? raw : body !== undefined ? jsonText(body) : undefined;
      if (payload !== undefined && typeof raw !== 'string') headers['content-type'] ??= 'application/json';
      const timeout = objGet(req, 'timeout');
      const asked = typeof timeout === 'number' ? timeout / 1e6 : typeof timeout === 'string' && /^\d+(ms|s)$/.test(timeout) ? parseInt(timeout, 10) * (timeout.endsWith('ms') ? 1 : 1000) : 5000;
      const follow = objGet(req, 'enable_redirect') === true;
      let verb = method.toUpperCase();
      let ans: Answer;
      for (let hop = 0; ; hop++) {
        if (url.protocol !== 'http:' && url.protocol !== 'https:') throw builtinErr('http.send', `unsupported protocol scheme ${JSON.stringify(url.protocol.replace(/:$/, ''))}`);
        // the request never outlives the evaluation's deadline
        ctx.check();
        const timeoutMs = Math.max(1, Math.min(asked, ctx.remainingMs()));
        const target = guard ? checkedAddress(guard, url, timeoutMs) : undefined;
        ans = fetchSync({ url: url.toString(), method: verb, headers, body: payload, ip: target?.ip, family: target?.family, timeoutMs: Math.max(1, Math.min(asked, ctx.remainingMs())), maxBytes: ctx.limits.maxStringLength });
        ctx.check();
        const location = ans.headers?.location?.[0];
        if (!follow || !ans.ok || !REDIRECTS.has(ans.status!) || !location) break;
        if (hop >= MAX_REDIRECTS) throw builtinErr('http.send', `stopped after ${MAX_REDIRECTS} redirects`);
        try {
          url = new URL(location, url);
        } catch {
          throw builtinErr('http.send', `invalid redirect location ${JSON.stringify(location)}`);
        }
        if (!allowed(url)) throw builtinErr('http.send', `redirect to host ${url.host} is not allowed`);
        if (ans.status === 303 || ((ans.status === 301 || ans.status === 302) && verb === 'POST')) {
          verb = 'GET';
          payload = undefined;
          delete headers['content-type'];
        }
      }
      const raiseError = objGet(req, 'raise_error') !== false;
      if (!ans.ok) {
        if (raiseError) throw builtinErr('http.send', ans.error ?? 'request failed');
        return fromJSON({ status_code: 0, error: { code: 'eval_http_send_network_error', message: ans.error } });
      }
      const out = new ObjectBuilder();
      out.set('status', `${ans.status} ${ans.statusText ?? ''}`.trim());
      out.set('status_code', ans.status!);
      out.set('raw_body', ans.text ?? '');
      out.set('headers', fromJSON(ans.headers ?? {}));
      let parsed: Value | undefined;
      const ct = ans.headers?.['content-type']?.[0] ?? '';
      if (ct.includes('json') || objGet(req, 'force_json_decode') === true) {
        try {
          parsed = fromJSON(JSON.parse(ans.text ?? ''));
        } catch {
          parsed = undefined;
        }
      }
      out.set('body', parsed ?? null);
      return out.build();
    },
  },
};
void toJSON;

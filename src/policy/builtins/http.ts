import { ObjectBuilder, fromJSON, isObject, objEntries, objGet, toJSON, type Value } from '../value.js';
import { jsonText } from './encoding.js';
import { BuiltinError, builtinErr, typeErr, type Builtin } from './types.js';
import { runSync } from './sync-worker.js';

const KEYS = new Set([
  'method', 'url', 'body', 'raw_body', 'headers', 'enable_redirect', 'force_json_decode', 'force_yaml_decode', 'tls_use_system_certs',
  'tls_ca_cert', 'tls_ca_cert_file', 'tls_ca_cert_env_variable', 'tls_client_cert', 'tls_client_cert_file', 'tls_client_cert_env_variable',
  'tls_client_key', 'tls_client_key_file', 'tls_client_key_env_variable', 'tls_insecure_skip_verify', 'tls_server_name', 'timeout', 'cache',
  'force_cache', 'force_cache_duration_seconds', 'raise_error', 'caching_mode', 'max_retry_attempts', 'cache_ignored_headers',
]);

// Runs in a worker (see runSync): performs one request and hands the answer back.
const FETCH = `
const req = input;
const ac = new AbortController();
const t = setTimeout(() => ac.abort(), req.timeoutMs);
const r = await fetch(req.url, { method: req.method, headers: req.headers, body: req.body, redirect: req.redirect ? 'follow' : 'manual', signal: ac.signal });
const text = await r.text();
clearTimeout(t);
const headers = {};
r.headers.forEach((v, k) => { (headers[k] ??= []).push(v); });
done({ ok: true, status: r.status, statusText: r.statusText, headers, text });
`;

interface Answer {
  ok: boolean;
  status?: number;
  statusText?: string;
  headers?: Record<string, string[]>;
  text?: string;
  error?: string;
}

/** fetchSync performs an HTTP request synchronously (built-ins are synchronous) in a worker thread. */
function fetchSync(req: { url: string; method: string; headers: Record<string, string>; body?: string; redirect: boolean; timeoutMs: number }): Answer {
  return runSync<Answer>(FETCH, req, req.timeoutMs + 2000) ?? { ok: false, error: 'request timed out' };
}

function hostAllowed(url: URL, allow: string[]): boolean {
  return allow.some((a) => a === '*' || a === url.host || a === url.hostname);
}

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
      if (!hostAllowed(url, ctx.httpAllow)) throw builtinErr('http.send', `host ${url.host} is not allowed: http.send is off unless the engine lists the host in httpAllow`);
      const headers: Record<string, string> = {};
      const h = objGet(req, 'headers');
      if (isObject(h)) for (const [k, v] of objEntries(h)) headers[String(k)] = typeof v === 'string' ? v : jsonText(v);
      const raw = objGet(req, 'raw_body');
      const body = objGet(req, 'body');
      const payload = typeof raw === 'string' ? raw : body !== undefined ? jsonText(body) : undefined;
      if (payload !== undefined && typeof raw !== 'string') headers['content-type'] ??= 'application/json';
      const timeout = objGet(req, 'timeout');
      const timeoutMs = typeof timeout === 'number' ? timeout / 1e6 : typeof timeout === 'string' && /^\d+(ms|s)$/.test(timeout) ? parseInt(timeout, 10) * (timeout.endsWith('ms') ? 1 : 1000) : 5000;
      const ans = fetchSync({ url: url.toString(), method: method.toUpperCase(), headers, body: payload, redirect: objGet(req, 'enable_redirect') === true, timeoutMs });
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

/**
 * WAGI (WebAssembly Gateway Interface) is CGI for WASI commands: the request becomes environment
 * variables, arguments and stdin; the guest prints headers, a blank line and the body on stdout.
 * Hand-written because it sits on every function request and is a few dozen lines.
 */
import type { GatewayRequest } from '../gateway/index.js';

/** The request as the gateway hands it to a function. */
export type WagiRequest = Pick<GatewayRequest, 'method' | 'path' | 'rawQuery' | 'headers' | 'body' | 'remoteAddress' | 'requestId' | 'traceparent'>;

export interface WagiContext {
  /** The function's name, used as argv[0] and SCRIPT_NAME's basis. */
  name: string;
  serverName: string;
  serverPort: string;
  /** Extra environment from the Function spec; request variables win on a clash. */
  env?: Record<string, string>;
  args?: string[];
}

export interface WagiResponse {
  status: number;
  headers: Array<[string, string]>;
  body: Uint8Array;
}

/** WagiOutputError: the guest's stdout is not a WAGI response; the gateway answers 502. */
export class WagiOutputError extends Error {
  readonly code = 'bad_gateway';
}

// Headers a guest never sees: credentials stay out of untrusted code unless a filter copies them on purpose.
const HIDDEN = new Set(['authorization', 'proxy-authorization', 'connection', 'cookie']);

/**
 * HTTP_* names per header name. Process-wide and safe to share: the mapping is a pure function of the
 * name, and the cache is bounded (clients choose header names, so it must not grow without limit).
 */
const HTTP_NAMES = new Map<string, string>();
const HTTP_NAMES_MAX = 2048;

function httpName(name: string): string {
  let v = HTTP_NAMES.get(name);
  if (v === undefined) {
    v = `HTTP_${name.toUpperCase().replace(/-/g, '_')}`;
    if (HTTP_NAMES.size < HTTP_NAMES_MAX) HTTP_NAMES.set(name, v);
  }
  return v;
}

/** wagiEnv builds the CGI/1.1 environment plus WAGI's extras for one request. */
export function wagiEnv(req: WagiRequest, ctx: WagiContext): Record<string, string> {
  const headers = req.headers;
  const host = headerValue(headers, 'host') ?? `${ctx.serverName}:${ctx.serverPort}`;
  const fullUrl = req.rawQuery ? `http://${host}${req.path}?${req.rawQuery}` : `http://${host}${req.path}`;
  const contentType = headerValue(headers, 'content-type') ?? '';
  let env: Record<string, string>;
  if (ctx.env && hasKeys(ctx.env)) {
    // The function's own variables come first (the guest sees them in this order); request ones win.
    env = { ...ctx.env };
    env.GATEWAY_INTERFACE = 'CGI/1.1';
    env.SERVER_SOFTWARE = 'skiff';
    env.SERVER_PROTOCOL = 'HTTP/1.1';
    env.SERVER_NAME = ctx.serverName;
    env.SERVER_PORT = ctx.serverPort;
    env.REQUEST_METHOD = req.method;
    env.SCRIPT_NAME = '';
    env.PATH_INFO = req.path;
    env.X_RAW_PATH_INFO = req.path;
    env.PATH_TRANSLATED = req.path;
    env.QUERY_STRING = req.rawQuery;
    env.REMOTE_ADDR = req.remoteAddress;
    env.REMOTE_HOST = req.remoteAddress;
    env.CONTENT_LENGTH = String(req.body.length);
    env.CONTENT_TYPE = contentType;
    env.X_FULL_URL = fullUrl;
    env.X_REQUEST_ID = req.requestId;
  } else {
    // The same variables in the same order, as one literal: one allocation with a fixed shape.
    env = {
      GATEWAY_INTERFACE: 'CGI/1.1',
      SERVER_SOFTWARE: 'skiff',
      SERVER_PROTOCOL: 'HTTP/1.1',
      SERVER_NAME: ctx.serverName,
      SERVER_PORT: ctx.serverPort,
      REQUEST_METHOD: req.method,
      SCRIPT_NAME: '',
      PATH_INFO: req.path,
      X_RAW_PATH_INFO: req.path,
      PATH_TRANSLATED: req.path,
      QUERY_STRING: req.rawQuery,
      REMOTE_ADDR: req.remoteAddress,
      REMOTE_HOST: req.remoteAddress,
      CONTENT_LENGTH: String(req.body.length),
      CONTENT_TYPE: contentType,
      X_FULL_URL: fullUrl,
      X_REQUEST_ID: req.requestId,
    };
  }
  for (const name in headers) {
    if (HIDDEN.has(name) || name === 'content-type' || name === 'content-length') continue;
    const value = headers[name]!;
    env[httpName(name)] = typeof value === 'string' ? value : value.join(', ');
  }
  return env;
}

/** wagiArgs: argv[0] is the function name, then spec args, then the query's parameters (CGI style). */
export function wagiArgs(req: WagiRequest, ctx: WagiContext): string[] {
  const args = [ctx.name, ...(ctx.args ?? [])];
  if (req.rawQuery) {
    for (const part of req.rawQuery.split('&')) {
      if (part === '') continue;
      try {
        args.push(decodeURIComponent(part.replace(/\+/g, ' ')));
      } catch {
        args.push(part);
      }
    }
  }
  return args;
}

/**
 * parseWagiOutput splits stdout into headers and body. `Status: NNN` sets the status; a `Location`
 * without `Status` is a 302; a response needs Content-Type or Location. Anything else is a
 * WagiOutputError naming what is wrong.
 */
export function parseWagiOutput(out: Uint8Array): WagiResponse {
  const buf = Buffer.from(out.buffer, out.byteOffset, out.byteLength);
  let sep = -1;
  let sepLen = 0;
  for (let i = 0; i < buf.length; i++) {
    if (buf[i] === 0x0a) {
      if (buf[i + 1] === 0x0a) {
        sep = i;
        sepLen = 2;
        break;
      }
      if (buf[i + 1] === 0x0d && buf[i + 2] === 0x0a) {
        sep = i;
        sepLen = 3;
        break;
      }
    }
  }
  if (sep < 0) {
    if (buf.length === 0) throw new WagiOutputError('the function wrote nothing to stdout; a WAGI response starts with headers such as "Content-Type: text/plain", then a blank line, then the body');
    throw new WagiOutputError('the function output has no blank line after its headers; a WAGI response is headers, a blank line, then the body');
  }
  const head = buf.toString('latin1', 0, sep);
  // A view, not a copy: the output buffer is ours (it came from the runtime) and dies with the response.
  const body = new Uint8Array(out.buffer, out.byteOffset + sep + sepLen, out.byteLength - sep - sepLen);
  let parsed = HEADS.get(head);
  if (!parsed) {
    parsed = parseHead(head);
    if (head.length <= HEAD_CACHE_MAX_CHARS) {
      if (HEADS.size >= HEADS_MAX) HEADS.clear();
      HEADS.set(head, parsed);
    }
  }
  // Each response gets its own list: the gateway may add to it.
  return { status: parsed.status, headers: parsed.headers.slice(), body };
}

/**
 * Parsed header blocks by their text. A function usually prints the same headers on every request, so
 * each distinct block is checked and split once. Process-wide and safe to share: the result is a pure
 * function of the text and is never mutated; the cache is bounded (guests choose the text).
 */
const HEADS = new Map<string, { status: number; headers: ReadonlyArray<[string, string]> }>();
const HEADS_MAX = 256;
const HEAD_CACHE_MAX_CHARS = 1024;

function parseHead(text: string): { status: number; headers: Array<[string, string]> } {
  const head = text.replace(/\r/g, '');
  const headers: Array<[string, string]> = [];
  let status: number | undefined;
  let hasType = false;
  let hasLocation = false;
  for (const line of head.split('\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new WagiOutputError(`the function output has a malformed header line "${truncate(line)}" (expected "Name: value")`);
    const name = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) throw new WagiOutputError(`the function output has an invalid header name "${truncate(name)}"`);
    if (/[\0\r\n]/.test(value)) throw new WagiOutputError(`the function output has a control character in header ${name}`);
    const lower = name.toLowerCase();
    if (lower === 'status') {
      const m = /^(\d{3})\b/.exec(value);
      if (!m || Number(m[1]) < 100 || Number(m[1]) > 599) throw new WagiOutputError(`the function output has an invalid Status header "${truncate(value)}"`);
      status = Number(m[1]);
      continue;
    }
    if (lower === 'content-type') hasType = true;
    if (lower === 'location') hasLocation = true;
    // Framing is the gateway's job; a guest must not be able to smuggle its own.
    if (lower === 'content-length' || lower === 'transfer-encoding' || lower === 'connection') continue;
    headers.push([name, value]);
  }
  if (!hasType && !hasLocation) throw new WagiOutputError('the function output has neither a Content-Type nor a Location header');
  return { status: status ?? (hasLocation ? 302 : 200), headers };
}

function hasKeys(o: object): boolean {
  for (const _ in o) return true;
  return false;
}

function headerValue(h: Record<string, string | string[]>, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

function truncate(s: string): string {
  return s.length > 60 ? `${s.slice(0, 60)}…` : s;
}

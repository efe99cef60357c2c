import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

import type { StatusObject } from '../api/errors.js';
import { SkiffError } from '../util/errors.js';
import { VERSION } from '../version.js';

export interface ClientOptions {
  server?: string;
  /** The bearer token (`--token`); found as {@link findToken} says when absent. */
  token?: string;
  /** The data directory of a command that has `--data-dir`; SKIFF_DATA_DIR otherwise. */
  dataDir?: string;
}

/** FoundToken is the token the CLI will send and where it came from, with every place it looked. */
export interface FoundToken {
  token?: string;
  /** Where the token came from (`--token`, `$SKIFF_TOKEN`, a file path). */
  source?: string;
  /** Every place looked at, in order, as a person would read it. */
  looked: string[];
}

/**
 * findToken finds the API token: `--token`, then `$SKIFF_TOKEN`, then `DATA_DIR/token` for the
 * command's `--data-dir` or `$SKIFF_DATA_DIR`, then `./.skiff/token` (where `npm start` and
 * `skiff up` keep it by default). An empty value or a missing file moves on to the next place.
 */
export function findToken(opts: { token?: string; dataDir?: string } = {}, env: NodeJS.ProcessEnv = process.env): FoundToken {
  const looked: string[] = [];
  if (opts.token) return { token: opts.token, source: '--token', looked: ['--token'] };
  looked.push('--token');
  if (env.SKIFF_TOKEN) return { token: env.SKIFF_TOKEN, source: '$SKIFF_TOKEN', looked: [...looked, '$SKIFF_TOKEN'] };
  looked.push('$SKIFF_TOKEN');
  const files = [opts.dataDir, env.SKIFF_DATA_DIR, '.skiff'].filter((d): d is string => !!d).map((d) => resolve(d, 'token'));
  for (const file of [...new Set(files)]) {
    looked.push(file);
    const token = readToken(file);
    if (token) return { token, source: file, looked };
  }
  return { looked };
}

/** ApiRequestError: the server answered with an error Status. */
export class ApiRequestError extends SkiffError {
  constructor(
    readonly httpStatus: number,
    readonly status: StatusObject | undefined,
    message: string,
    readonly warnings: string[] = [],
  ) {
    super(`api_${httpStatus}`, message);
  }
  get reason(): string | undefined {
    return this.status?.reason;
  }
}

/** ServerUnreachableError: nothing answered at the server URL (the CLI exits 2). */
export class ServerUnreachableError extends SkiffError {
  constructor(server: string, why: string) {
    super('server_unreachable', `cannot reach the Skiff API at ${server} (${why}); is \`skiff up\` running? Point the CLI elsewhere with --server URL or SKIFF_SERVER`);
  }
}

export interface ApiResponse<T> {
  status: number;
  body: T;
  warnings: string[];
}

/**
 * ApiClient speaks to a Skiff API server. It finds the server from --server, then SKIFF_SERVER, then
 * http://127.0.0.1:7070, and the token as {@link findToken} says.
 */
export class ApiClient {
  readonly server: string;
  private readonly found: FoundToken;

  constructor(opts: ClientOptions = {}) {
    this.server = (opts.server ?? process.env.SKIFF_SERVER ?? 'http://127.0.0.1:7070').replace(/\/+$/, '');
    this.found = findToken(opts);
  }

  async request<T = unknown>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiResponse<T>> {
    const res = await this.raw(method, path, body, headers);
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = text;
    }
    const warnings = parseWarnings(res.headers.get('warning'));
    if (!res.ok) {
      const st = parsed && typeof parsed === 'object' && (parsed as StatusObject).kind === 'Status' ? (parsed as StatusObject) : undefined;
      if (res.status === 401) throw this.unauthorized(st);
      throw new ApiRequestError(res.status, st, st?.message ?? `the server answered HTTP ${res.status}: ${String(text).slice(0, 200)}`, warnings);
    }
    return { status: res.status, body: parsed as T, warnings };
  }

  /** stream sends a request whose answer is read as it arrives (watch, logs --follow); an error answer throws as request() does. */
  async stream(method: string, path: string, headers: Record<string, string> = {}): Promise<Response> {
    const res = await this.raw(method, path, undefined, headers);
    if (res.ok) return res;
    const text = await res.text();
    let st: StatusObject | undefined;
    try {
      const parsed = JSON.parse(text) as StatusObject;
      if (parsed?.kind === 'Status') st = parsed;
    } catch {
      // not a Status
    }
    if (res.status === 401) throw this.unauthorized(st);
    throw new ApiRequestError(res.status, st, st?.message ?? `the server answered HTTP ${res.status}: ${text.slice(0, 200)}`);
  }

  /** unauthorized turns a 401 into a message that says which token the CLI sent, or where it looked for one. */
  private unauthorized(st: StatusObject | undefined): ApiRequestError {
    const { source, looked } = this.found;
    const why = source
      ? `the server at ${this.server} refused the token from ${source} (it may be the token of another server's data directory)`
      : `the CLI found no token for ${this.server} (looked at ${looked.join(', ')})`;
    return new ApiRequestError(401, st, `${why}. Pass --token TOKEN, set SKIFF_TOKEN, or set SKIFF_DATA_DIR to the server's data directory (its token file is DATA_DIR/token)`);
  }

  /** raw sends a request and returns the fetch Response (for streams: watch, logs --follow). */
  async raw(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Response> {
    // The server names the field manager of a write after the User-Agent's first word, as kube does.
    const h: Record<string, string> = { accept: 'application/json', 'user-agent': `skiff/${VERSION}`, ...headers };
    if (body !== undefined) h['content-type'] ??= 'application/json';
    if (this.found.token) h.authorization = `Bearer ${this.found.token}`;
    try {
      // Bytes (a module upload) go as they are; anything else is an object sent as JSON.
      return await fetch(this.server + path, { method, headers: h, body: body === undefined ? undefined : body instanceof Uint8Array ? body : JSON.stringify(body) });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new ServerUnreachableError(this.server, cause?.code === 'ECONNREFUSED' ? 'connection refused' : (cause?.message ?? (err as Error).message));
    }
  }
}

function readToken(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

function parseWarnings(h: string | null): string[] {
  if (!h) return [];
  const out: string[] = [];
  const re = /299\s+-\s+("(?:[^"\\]|\\.)*")/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(h))) {
    try {
      out.push(JSON.parse(m[1]!) as string);
    } catch {
      out.push(m[1]!);
    }
  }
  return out;
}

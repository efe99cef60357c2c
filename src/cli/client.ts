import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SkiffError } from '../util/errors.js';
import type { StatusObject } from '../api/errors.js';

export interface ClientOptions {
  server?: string;
  dataDir?: string;
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
 * http://127.0.0.1:7070, and a write token from SKIFF_TOKEN or DATA_DIR/token when one exists.
 */
export class ApiClient {
  readonly server: string;
  private readonly token?: string;

  constructor(opts: ClientOptions = {}) {
    this.server = (opts.server ?? process.env.SKIFF_SERVER ?? 'http://127.0.0.1:7070').replace(/\/+$/, '');
    this.token = process.env.SKIFF_TOKEN ?? readToken(opts.dataDir ?? process.env.SKIFF_DATA_DIR ?? '.skiff');
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
      throw new ApiRequestError(res.status, st, st?.message ?? `the server answered HTTP ${res.status}: ${String(text).slice(0, 200)}`, warnings);
    }
    return { status: res.status, body: parsed as T, warnings };
  }

  /** raw sends a request and returns the fetch Response (for streams: watch, logs --follow). */
  async raw(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Response> {
    const h: Record<string, string> = { accept: 'application/json', ...headers };
    if (body !== undefined) h['content-type'] ??= 'application/json';
    if (this.token) h.authorization = `Bearer ${this.token}`;
    try {
      // Bytes (a module upload) go as they are; anything else is an object sent as JSON.
      return await fetch(this.server + path, { method, headers: h, body: body === undefined ? undefined : body instanceof Uint8Array ? body : JSON.stringify(body) });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new ServerUnreachableError(this.server, cause?.code === 'ECONNREFUSED' ? 'connection refused' : (cause?.message ?? (err as Error).message));
    }
  }
}

function readToken(dataDir: string): string | undefined {
  try {
    return readFileSync(join(dataDir, 'token'), 'utf8').trim() || undefined;
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

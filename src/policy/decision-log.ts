import { randomUUID } from 'node:crypto';
import { appendFileSync, createReadStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline';

import { REDACTED, redactSecrets, scrub } from './secret-redaction.js';
import { stringifyJSON, toJSON, type Value } from './value.js';

/** DecisionLogOptions configures where decisions go and what is hidden. */
export interface DecisionLogOptions {
  /** NDJSON file; rotated files get `.1`, `.2`, ... suffixes */
  path: string;
  /** rotate when the file would grow past this many bytes (default 10 MiB) */
  maxBytes?: number;
  /** rotated files kept besides the live one (default 5) */
  maxFiles?: number;
  /** input fields replaced by "**REDACTED**", as dotted or slash paths: `password`, `/user/token` */
  mask?: string[];
  /** revision of the policy bundle, recorded with each decision */
  revision?: string;
}

/** Decision is one line of the log. */
export interface Decision {
  decision_id: string;
  timestamp: string;
  query: string;
  input?: unknown;
  result?: unknown;
  error?: string;
  revision?: string;
  duration_us: number;
  /** input paths that were masked */
  erased?: string[];
  /** who decided (`engine: policies` for the platform's Policy engine), so replay knows which decisions it can re-run */
  labels?: Record<string, string>;
}

/** maskInput returns a copy of input with the configured paths redacted (and lists those found). */
export function maskInput(input: unknown, paths: string[]): { input: unknown; erased: string[] } {
  if (!paths.length || input === null || typeof input !== 'object') return { input, erased: [] };
  const copy = structuredClone(input) as Record<string, unknown>;
  const erased: string[] = [];
  for (const p of paths) {
    const segs = p.replace(/^\/?(input[./])?/, '').split(/[./]/).filter(Boolean);
    let cur: unknown = copy;
    for (let i = 0; i < segs.length - 1 && cur && typeof cur === 'object'; i++) cur = (cur as Record<string, unknown>)[segs[i]!];
    const last = segs[segs.length - 1];
    if (last !== undefined && cur && typeof cur === 'object' && Object.prototype.hasOwnProperty.call(cur, last)) {
      (cur as Record<string, unknown>)[last] = REDACTED;
      erased.push('/input/' + segs.join('/'));
    }
  }
  return { input: copy, erased };
}

/**
 * DecisionLogger appends one NDJSON line per policy decision, with masking and size-based rotation.
 * Writes are synchronous so that a decision is on disk before the caller acts on it.
 *
 * @example
 * const log = new DecisionLogger({ path: '.skiff/decisions.ndjson', mask: ['/password'] });
 * log.record({ query: 'data.authz.allow', input, result: true, durationUs: 12 });
 */
export class DecisionLogger {
  private readonly maxBytes: number;
  private readonly maxFiles: number;
  /** shared by every labelled view of one log, so rotation sees every write */
  private readonly file: { size: number };
  constructor(
    private readonly opts: DecisionLogOptions,
    shared?: { file: { size: number }; labels?: Record<string, string> },
  ) {
    this.maxBytes = opts.maxBytes ?? 10 * 1024 * 1024;
    this.maxFiles = opts.maxFiles ?? 5;
    if (shared) {
      this.file = shared.file;
      this.labels = shared.labels;
      return;
    }
    mkdirSync(dirname(opts.path), { recursive: true });
    this.file = { size: existsSync(opts.path) ? statSync(opts.path).size : 0 };
  }

  /** labels added to every decision this view records */
  readonly labels: Record<string, string> | undefined;

  /** path is the live log file. */
  get path(): string {
    return this.opts.path;
  }

  /** withLabels is a view of the same log that adds `labels` to each decision it records. */
  withLabels(labels: Record<string, string>): DecisionLogger {
    return new DecisionLogger(this.opts, { file: this.file, labels: { ...this.labels, ...labels } });
  }

  /**
   * record writes one decision and returns it (with its id). Secret values in an admission review
   * are redacted here, whoever decided, before the configured mask applies (see secret-redaction.ts).
   */
  record(d: { query: string; input?: unknown; result?: Value | unknown; error?: string; durationUs: number; revision?: string }): Decision {
    const secrets = d.input === undefined ? { input: undefined, erased: [], values: [] } : redactSecrets(toJSON(d.input as Value));
    const masked = secrets.input === undefined ? { input: undefined, erased: [] } : maskInput(secrets.input, this.opts.mask ?? []);
    const erased = [...secrets.erased, ...masked.erased.filter((p) => !secrets.erased.includes(p))];
    const error = d.error && secrets.values.length ? (scrub(d.error, secrets.values) as string) : d.error;
    const entry: Decision = {
      decision_id: randomUUID(),
      timestamp: new Date().toISOString(),
      query: d.query,
      ...(masked.input !== undefined ? { input: masked.input } : {}),
      ...(d.result !== undefined ? { result: scrub(toJSON(d.result as Value), secrets.values) } : {}),
      ...(error ? { error } : {}),
      ...(d.revision ?? this.opts.revision ? { revision: d.revision ?? this.opts.revision } : {}),
      duration_us: Math.round(d.durationUs * 100) / 100,
      ...(erased.length ? { erased } : {}),
      ...(this.labels ? { labels: this.labels } : {}),
    };
    const line = stringifyJSON(entry) + '\n';
    const bytes = Buffer.byteLength(line);
    if (this.file.size > 0 && this.file.size + bytes > this.maxBytes) this.rotate();
    appendFileSync(this.opts.path, line);
    this.file.size += bytes;
    return entry;
  }

  private rotate(): void {
    const p = this.opts.path;
    if (existsSync(`${p}.${this.maxFiles}`)) rmSync(`${p}.${this.maxFiles}`);
    for (let i = this.maxFiles - 1; i >= 1; i--) if (existsSync(`${p}.${i}`)) renameSync(`${p}.${i}`, `${p}.${i + 1}`);
    if (this.maxFiles > 0) renameSync(p, `${p}.1`);
    else rmSync(p);
    this.file.size = 0;
  }
}

/** DecisionFilter selects decisions when listing them. */
export interface DecisionFilter {
  id?: string;
  query?: string;
  since?: Date;
  /** only decisions whose result is (JSON-equal to) this */
  result?: string;
  errorsOnly?: boolean;
  limit?: number;
}

/** logFiles lists a log's files, oldest first (rotated ones, then the live one). */
function logFiles(path: string, maxFiles: number): string[] {
  const files: string[] = [];
  for (let i = maxFiles; i >= 1; i--) if (existsSync(`${path}.${i}`)) files.push(`${path}.${i}`);
  if (existsSync(path)) files.push(path);
  return files;
}

/**
 * streamDecisions reads a log line by line, oldest first, at or after `since`: unlike readDecisions
 * it never holds the whole log, and lets other work run between chunks (the server replays
 * decisions on the thread that serves requests). Lines that do not parse are skipped.
 */
export async function* streamDecisions(path: string, since?: Date, maxFiles = 20): AsyncGenerator<Decision> {
  const from = since?.toISOString();
  for (const f of logFiles(path, maxFiles)) {
    const lines = createInterface({ input: createReadStream(f, { encoding: 'utf8' }), crlfDelay: Infinity });
    for await (const line of lines) {
      if (!line.trim()) continue;
      let d: Decision;
      try {
        d = JSON.parse(line) as Decision;
      } catch {
        continue;
      }
      // ISO timestamps of one clock compare as strings
      if (from && typeof d.timestamp === 'string' && d.timestamp < from) continue;
      yield d;
    }
  }
}

/** readDecisions lists logged decisions (oldest first, rotated files included) that match the filter. */
export function readDecisions(path: string, filter: DecisionFilter = {}, maxFiles = 20): Decision[] {
  const files = logFiles(path, maxFiles);
  const out: Decision[] = [];
  for (const f of files) {
    for (const line of readFileSync(f, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      let d: Decision;
      try {
        d = JSON.parse(line) as Decision;
      } catch {
        continue;
      }
      if (filter.id && d.decision_id !== filter.id) continue;
      if (filter.query && !d.query.includes(filter.query)) continue;
      if (filter.since && new Date(d.timestamp) < filter.since) continue;
      if (filter.errorsOnly && !d.error) continue;
      if (filter.result !== undefined && JSON.stringify(d.result) !== filter.result) continue;
      out.push(d);
    }
  }
  return filter.limit !== undefined ? out.slice(-filter.limit) : out;
}

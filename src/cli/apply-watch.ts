import { type FSWatcher,statSync, watch } from 'node:fs';
import { basename, dirname, extname, join, relative, resolve } from 'node:path';

import { CheckFailedError, SkiffError } from '../util/errors.js';

import { ApiRequestError } from './client.js';

/** What one apply round reports back to the watch loop. */
export interface ApplyRound {
  /** Local files the round read or tried to read besides the manifests (module files). */
  files: string[];
  failed: boolean;
  /** The error that stopped the round before it applied anything, if one did. */
  error?: unknown;
}

export interface ApplyWatchOptions {
  /** The paths given with -f: files or directories. */
  inputs: string[];
  /** Runs one round; `emit` prints its result lines. Round 0 is the first apply. */
  apply: (round: number, emit: (text: string) => void) => Promise<ApplyRound>;
  /** Quiet time after the last change before applying (editors and build tools write in bursts). */
  debounceMs?: number;
  /** Result and error lines printed per round at most; the rest are counted. */
  maxLines?: number;
  out?: NodeJS.WritableStream;
  err?: NodeJS.WritableStream;
}

const MANIFEST_EXTS = new Set(['.yaml', '.yml', '.json']);

/**
 * applyAndWatch applies once, then watches the manifests and the module files they name and applies
 * again, debounced, whenever one changes, until SIGINT or SIGTERM. A round that fails (a manifest
 * saved mid-edit, a module not built yet) is reported and the watch goes on. Output per round is
 * bounded, so a loop of failing rebuilds cannot flood a terminal.
 */
export async function applyAndWatch(opts: ApplyWatchOptions): Promise<void> {
  const out = opts.out ?? process.stdout;
  const err = opts.err ?? process.stderr;
  const debounceMs = opts.debounceMs ?? 250;
  const maxLines = opts.maxLines ?? 40;
  const cwd = process.cwd();
  const changed = new Set<string>();
  let round = 0;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;

  const files = new WatchedFiles((file) => {
    changed.add(file);
    if (timer) clearTimeout(timer);
    timer = setTimeout(kick, debounceMs);
  });

  const runRound = async (): Promise<void> => {
    const n = round++;
    let printed = 0;
    let dropped = 0;
    const line = (stream: NodeJS.WritableStream, text: string) => {
      for (const l of text.split('\n')) {
        if (!l) continue;
        if (printed < maxLines) {
          stream.write(l + '\n');
          printed++;
        } else dropped++;
      }
    };
    if (n > 0) {
      const names = [...changed].map((f) => (relative(cwd, f).startsWith('..') ? f : relative(cwd, f)));
      changed.clear();
      line(err, `[${clock()}] ${names.slice(0, 3).join(', ')}${names.length > 3 ? ` and ${names.length - 3} more` : ''} changed: applying again`);
      printed = 0;
    }
    let result: ApplyRound;
    try {
      result = await opts.apply(n, (text) => line(out, text));
    } catch (e) {
      result = { files: [], failed: true, error: e };
    }
    if (result.error !== undefined) line(err, describeError(result.error));
    if (dropped) err.write(`... ${dropped} more line${dropped > 1 ? 's' : ''} not shown\n`);
    if (n > 0 && printed === 0 && !result.failed) err.write(`[${clock()}] nothing changed\n`);
    if (stopped) return;
    files.set([...opts.inputs, ...result.files]);
    if (n === 0) err.write(`watching ${files.count()} file${files.count() === 1 ? '' : 's'} for changes (Ctrl-C to stop)\n`);
  };

  // One round at a time; changes that arrive during a round start another one after it.
  function kick(): void {
    timer = undefined;
    if (stopped) return;
    if (running) {
      // A round never rejects (it reports its own errors), so nothing is lost by not awaiting this.
      void running.then(() => {
        if (!timer && changed.size) timer = setTimeout(kick, debounceMs);
      });
      return;
    }
    running = runRound().finally(() => (running = undefined));
  }

  // Listen for the signals first, so that an interrupt during the first round stops cleanly too.
  const stoppedBySignal = new Promise<void>((resolveStop) => {
    const stop = () => {
      stopped = true;
      process.removeListener('SIGINT', stop);
      process.removeListener('SIGTERM', stop);
      if (timer) clearTimeout(timer);
      files.close();
      resolveStop();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  running = runRound().finally(() => (running = undefined));
  await stoppedBySignal;
  // A round in progress may finish (its requests are short), but an unresponsive server must not hold the exit.
  await Promise.race([running, new Promise((r) => setTimeout(r, 2000).unref())]);
}

/** WatchedFiles watches a set of files (through their directories, to see files replaced by rename) and whole manifest directories. */
class WatchedFiles {
  private readonly dirs = new Map<string, { w: FSWatcher; names: Set<string>; all: boolean }>();
  private readonly warned = new Set<string>();

  constructor(private readonly onChange: (file: string) => void) {}

  set(paths: string[]): void {
    const want = new Map<string, { names: Set<string>; all: boolean }>();
    for (const p of paths.map((x) => resolve(x))) {
      let isDir = false;
      try {
        isDir = statSync(p).isDirectory();
      } catch {
        // Not there yet: watch its folder for it to appear.
      }
      const dir = isDir ? p : dirname(p);
      const e = want.get(dir) ?? { names: new Set<string>(), all: false };
      if (isDir) e.all = true;
      else e.names.add(basename(p));
      want.set(dir, e);
    }
    for (const [d, e] of this.dirs) {
      if (want.has(d)) continue;
      e.w.close();
      this.dirs.delete(d);
    }
    for (const [d, spec] of want) {
      const cur = this.dirs.get(d);
      if (cur) {
        cur.names = spec.names;
        cur.all = spec.all;
        continue;
      }
      try {
        const entry = { ...spec, w: undefined as unknown as FSWatcher };
        entry.w = watch(d, (_ev, name) => {
          const n = name?.toString();
          if (!n) return;
          if (entry.names.has(n) || (entry.all && MANIFEST_EXTS.has(extname(n)))) this.onChange(join(d, n));
        });
        entry.w.on('error', () => {
          entry.w.close();
          this.dirs.delete(d);
        });
        this.dirs.set(d, entry);
      } catch {
        if (!this.warned.has(d)) process.stderr.write(`cannot watch ${d} (it does not exist); files in it are not watched\n`);
        this.warned.add(d);
      }
    }
  }

  count(): number {
    let n = 0;
    for (const e of this.dirs.values()) n += e.names.size + (e.all ? 1 : 0);
    return n;
  }

  close(): void {
    for (const e of this.dirs.values()) e.w.close();
    this.dirs.clear();
  }
}

function describeError(err: unknown): string {
  if (err instanceof ApiRequestError) return `Error from server (${err.reason ?? err.httpStatus}): ${err.message}`;
  if (err instanceof CheckFailedError) return err.message;
  if (err instanceof SkiffError) return `skiff: ${err.message}`;
  return `skiff: internal error: ${err instanceof Error ? err.message : String(err)}`;
}

function clock(): string {
  return new Date().toTimeString().slice(0, 8);
}

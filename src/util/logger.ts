import { writeSync } from 'node:fs';

import pino, { type Logger } from 'pino';

/** Info and debug lines wait at most this long before they are written. */
const FLUSH_AFTER_MS = 200;
/** Buffered lines are written once they add up to this many characters. */
const FLUSH_AT_CHARS = 4096;
/** pino's numeric level for warn: lines at this level and above are written at once. */
const WARN_LEVEL = 40;
/** Exit code after a crash: the CLI's "internal error". */
const CRASH_EXIT_CODE = 2;

/**
 * LogSink is the logger's destination: lines at warn and above are written at once, together with
 * everything buffered before them (so order is kept); lower lines are batched and written within
 * {@link FLUSH_AFTER_MS} or once {@link FLUSH_AT_CHARS} have gathered, so busy request logging costs
 * one write per batch. Writes are synchronous, so nothing acknowledged by a flush is still in flight
 * when the process exits.
 */
class LogSink {
  /** Set by pino before every write (it does so for streams that ask for metadata, below). */
  lastLevel = 0;
  private pending = '';
  private timer: NodeJS.Timeout | undefined;
  private readonly onTimer = () => {
    this.timer = undefined;
    this.flushSync();
  };

  constructor(private readonly fd: number) {
    Object.defineProperty(this, Symbol.for('pino.metadata'), { value: true });
  }

  write(line: string): boolean {
    this.pending += line;
    if (this.lastLevel >= WARN_LEVEL || this.pending.length >= FLUSH_AT_CHARS) this.flushSync();
    else if (!this.timer) {
      this.timer = setTimeout(this.onTimer, FLUSH_AFTER_MS);
      // A pending flush must not keep the process alive; the exit hook writes what is left.
      this.timer.unref();
    }
    return true;
  }

  /** flush is pino's hook (`logger.flush()`). */
  flush(cb?: (err?: Error) => void): void {
    this.flushSync();
    cb?.();
  }

  flushSync(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.pending === '') return;
    const buf = Buffer.from(this.pending);
    this.pending = '';
    writeAll(this.fd, buf);
  }
}

/**
 * writeAll writes the whole buffer. A non-blocking descriptor that is full (EAGAIN) is waited on, as a
 * blocking one would be; a reader that went away (EPIPE) or any other failure drops the lines, since
 * there is nowhere left to report it.
 */
function writeAll(fd: number, buf: Buffer): void {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  let off = 0;
  while (off < buf.length) {
    try {
      off += writeSync(fd, buf, off, buf.length - off);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EAGAIN' && code !== 'EBUSY') return;
      Atomics.wait(pause, 0, 0, 1);
    }
  }
}

/** ProcessLog is the process logger and the means to flush it. */
export interface ProcessLog {
  logger: Logger;
  /** flush writes every buffered line now. */
  flush: () => void;
}

/**
 * createLogger makes the process logger: JSON lines on stderr (stdout carries command output such as
 * the readiness line). Warnings and errors are written at once; info lines within a fraction of a second.
 */
export function createLogger(level = process.env.SKIFF_LOG_LEVEL ?? 'info', fd = 2): ProcessLog {
  const sink = new LogSink(fd);
  const logger = pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, sink);
  return { logger, flush: () => sink.flushSync() };
}

/**
 * bindToProcess makes the log survive the process ending: buffered lines are written on exit, and an
 * uncaught exception or unhandled rejection is logged at fatal, flushed, and ends the process with
 * exit code 2 (a crashed server must not go on in an unknown state). Returns a function that undoes it.
 */
export function bindToProcess(log: ProcessLog, exit: (code: number) => void = (code) => process.exit(code)): () => void {
  const onExit = () => log.flush();
  const crash = (what: string) => (err: unknown) => {
    try {
      log.logger.fatal({ err }, `${what}; exiting`);
    } finally {
      log.flush();
      exit(CRASH_EXIT_CODE);
    }
  };
  const onException = crash('uncaught exception');
  const onRejection = crash('unhandled promise rejection');
  process.on('exit', onExit);
  process.on('uncaughtException', onException);
  process.on('unhandledRejection', onRejection);
  return () => {
    process.off('exit', onExit);
    process.off('uncaughtException', onException);
    process.off('unhandledRejection', onRejection);
  };
}

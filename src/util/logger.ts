import pino, { type Logger } from 'pino';

/**
 * createLogger makes the process logger: JSON lines on stderr (stdout carries command output such as
 * the readiness line), buffered so logging stays off the request path's critical cost.
 */
export function createLogger(level = process.env.SKIFF_LOG_LEVEL ?? 'info'): { logger: Logger; flush: () => void } {
  const dest = pino.destination({ dest: 2, sync: false, minLength: 4096 });
  const logger = pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, dest);
  return { logger, flush: () => dest.flushSync() };
}

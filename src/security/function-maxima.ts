import { UsageError } from '../util/errors.js';
import { parseBytes, parseDurationMs } from '../util/quantity.js';

/**
 * FunctionMaxima are the operator's ceilings on what one Function may ask for (`skiff up
 * --max-function-memory`, `--max-function-timeout`, `--max-function-concurrency`,
 * `--max-function-queue`, `--max-function-output`). Admission refuses a Function whose limits exceed
 * them; the defaults are sized so that a laptop survives a few hostile Functions at once.
 */
export interface FunctionMaxima {
  memoryBytes: number;
  timeoutMs: number;
  concurrency: number;
  queue: number;
  outputBytes: number;
}

export const DEFAULT_FUNCTION_MAXIMA: Readonly<FunctionMaxima> = Object.freeze({
  memoryBytes: 1024 * 1024 * 1024,
  timeoutMs: 5 * 60_000,
  concurrency: 256,
  queue: 4096,
  outputBytes: 64 * 1024 * 1024,
});

/** parseFunctionMaxima reads the flags' string values over the defaults; a malformed value is a UsageError naming its flag. */
export function parseFunctionMaxima(flags: { memory?: string; timeout?: string; concurrency?: string; queue?: string; output?: string }): FunctionMaxima {
  const out = { ...DEFAULT_FUNCTION_MAXIMA };
  if (flags.memory !== undefined) out.memoryBytes = positive('--max-function-memory', parseBytes(flags.memory), flags.memory, 'a byte quantity such as 512Mi');
  if (flags.timeout !== undefined) out.timeoutMs = positive('--max-function-timeout', parseDurationMs(flags.timeout), flags.timeout, 'a duration such as 30s');
  if (flags.output !== undefined) out.outputBytes = positive('--max-function-output', parseBytes(flags.output), flags.output, 'a byte quantity such as 16Mi');
  if (flags.concurrency !== undefined) out.concurrency = positive('--max-function-concurrency', intOf(flags.concurrency), flags.concurrency, 'a positive integer');
  if (flags.queue !== undefined) out.queue = positive('--max-function-queue', intOf(flags.queue), flags.queue, 'a non-negative integer', true);
  return out;
}

function intOf(s: string): number | undefined {
  return /^\d+$/.test(s.trim()) ? Number(s) : undefined;
}

function positive(flag: string, v: number | undefined, raw: string, what: string, zeroOk = false): number {
  if (v === undefined || !Number.isFinite(v) || v < 0 || (!zeroOk && v === 0)) throw new UsageError(`${flag} must be ${what}, not "${raw}"`);
  return v;
}

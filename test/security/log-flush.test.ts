import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { describe, expect, it } from 'vitest';

import { REPO } from '../helpers/skiff-process.js';

const LOGGER = pathToFileURL(join(REPO, 'dist', 'util', 'logger.js')).href;

interface Child {
  /** Resolves once stderr holds a line matching `re` (with the time since start), or rejects after `ms`. */
  line(re: RegExp, ms?: number): Promise<{ line: string; atMs: number }>;
  exited: Promise<number | null>;
  running(): boolean;
  stderr(): string;
  kill(): void;
}

/** script runs an ES module body with the built logger imported as `createLogger` and `bindToProcess`. */
function script(body: string): Child {
  const src = `import { createLogger, bindToProcess } from ${JSON.stringify(LOGGER)};\n${body}`;
  const t0 = Date.now();
  const proc = spawn(process.execPath, ['--input-type=module', '-e', src], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  const waiters = new Set<() => void>();
  proc.stderr!.on('data', (d) => {
    err += d;
    for (const w of waiters) w();
  });
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  return {
    exited,
    running: () => proc.exitCode === null && proc.signalCode === null,
    stderr: () => err,
    kill: () => proc.kill('SIGKILL'),
    line(re, ms = 15_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const line = err.split('\n').find((l) => re.test(l));
          if (!line) return false;
          waiters.delete(check);
          clearTimeout(timer);
          resolve({ line, atMs: Date.now() - t0 });
          return true;
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no line matching ${re} within ${ms} ms; stderr so far:\n${err}`));
        }, ms);
        waiters.add(check);
        check();
      });
    },
  };
}

describe('log flushing', { timeout: 60_000 }, () => {
  it('writes a warning at once, after the info lines logged before it, while the process keeps running', async () => {
    const c = script(`
      const log = createLogger('info');
      bindToProcess(log);
      log.logger.info('info before the warning');
      log.logger.warn({ note: 'x' }, 'the warning');
      // Busy for 20 s: no timer can run, so only a write made by warn() itself reaches stderr.
      const end = Date.now() + 20000;
      while (Date.now() < end);
    `);
    try {
      await c.line(/the warning/);
      expect(c.running()).toBe(true);
      const lines = c.stderr().trim().split('\n').map((l) => JSON.parse(l) as { level: number; msg: string });
      expect(lines.map((l) => [l.level, l.msg])).toEqual([
        [30, 'info before the warning'],
        [40, 'the warning'],
      ]);
    } finally {
      c.kill();
    }
  });

  it('writes info lines within a bounded time though nothing else is logged', async () => {
    const c = script(`
      const log = createLogger('info');
      bindToProcess(log);
      setTimeout(() => log.logger.info('quiet info line'), 50);
      setTimeout(() => {}, 20000);
    `);
    try {
      // The child stays up for 20 s: seeing the line while it runs means the timer wrote it, not the exit.
      await c.line(/quiet info line/);
      expect(c.running()).toBe(true);
    } finally {
      c.kill();
    }
  });

  it('flushes what is buffered on a normal exit', async () => {
    const c = script(`
      const log = createLogger('info');
      bindToProcess(log);
      for (let i = 0; i < 5; i++) log.logger.info({ i }, 'line before exit');
    `);
    expect(await c.exited).toBe(0);
    expect(c.stderr().match(/line before exit/g)).toHaveLength(5);
  });

  it.each([
    ['an uncaught exception', "setTimeout(() => { throw new Error('boom in a timer'); }, 20);", /uncaught exception/, /boom in a timer/],
    ['an unhandled rejection', "setTimeout(() => { Promise.reject(new Error('rejected for good')); }, 20);", /unhandled promise rejection/, /rejected for good/],
  ])('on %s: logs at fatal, flushes the pending lines and exits 2', async (_what, crash, msg, detail) => {
    const c = script(`
      const log = createLogger('info');
      bindToProcess(log);
      for (let i = 0; i < 3; i++) log.logger.info({ i }, 'pending before the crash');
      ${crash}
      setTimeout(() => {}, 20000);
    `);
    // The script would otherwise stay up for 20 s: exiting before that is the crash handler's doing.
    const code = await Promise.race([c.exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 15_000))]);
    if (code === 'hung') c.kill();
    expect(code).toBe(2);
    const lines = c.stderr().trim().split('\n');
    expect(lines.filter((l) => l.includes('pending before the crash'))).toHaveLength(3);
    const fatal = lines.map((l) => JSON.parse(l) as { level: number; msg: string; err?: { message?: string } }).find((l) => l.level === 60);
    expect(fatal?.msg).toMatch(msg);
    expect(fatal?.err?.message).toMatch(detail);
  });
});

import type { Command } from 'commander';

import type { Summary } from '../../dashboard/index.js';
import { UsageError } from '../../util/errors.js';
import { ServerUnreachableError } from '../client.js';
import { addClientOptions, clientFrom, table } from '../common.js';

interface TopAnswer {
  intervalMs: number;
  windowMs: number;
  series: Summary[];
}

/** ANSI: switch to the alternate screen and hide the cursor, as `top` does, and back. */
const ENTER = '\x1b[?1049h\x1b[?25l';
const LEAVE = '\x1b[?25h\x1b[?1049l';
const HOME_CLEAR = '\x1b[H\x1b[2J';

/** `skiff top`: requests/s, errors and p99 per Function and Route (and a Function's replicas), from the dashboard's sample ring. */
export function register(program: Command): void {
  addClientOptions(
    program
      .command('top')
      .description('show requests/s, errors, p99 latency and replicas per Function and Route, refreshing in place (like top)')
      .option('--once', 'print one frame and exit (for scripts)')
      .option('--interval <seconds>', 'seconds between refreshes', '1')
      .option('--kind <kind>', 'only routes or only functions (route|function)'),
    false,
  ).action(async (opts: { server?: string; token?: string; once?: boolean; interval: string; kind?: string }) => {
    const interval = Number(opts.interval);
    if (!Number.isFinite(interval) || interval < 0.1) throw new UsageError(`--interval must be a number of seconds of at least 0.1, not "${opts.interval}"`);
    if (opts.kind !== undefined && opts.kind !== 'route' && opts.kind !== 'function') throw new UsageError(`--kind must be route or function, not "${opts.kind}"`);
    const client = clientFrom(opts);
    const read = async () => {
      const { body } = await client.request<TopAnswer>('GET', '/ui/api/top');
      return { ...body, series: body.series.filter((s) => !opts.kind || s.kind === opts.kind) };
    };
    if (opts.once) {
      process.stdout.write(frame(client.server, await read()));
      return;
    }
    const tty = process.stdout.isTTY === true;
    if (tty) process.stdout.write(ENTER);
    let stop!: () => void;
    const stopped = new Promise<void>((r) => (stop = r));
    const onSignal = () => stop();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      for (;;) {
        let text: string;
        try {
          text = frame(client.server, await read());
        } catch (err) {
          // A server that goes away (restart, shutdown) is shown and retried rather than ending the view.
          if (!(err instanceof ServerUnreachableError)) throw err;
          text = `skiff top   ${client.server}   ${clock()}\n\nlost the server: ${err.message}\nretrying every ${interval}s; Ctrl-C quits\n`;
        }
        process.stdout.write(tty ? HOME_CLEAR + text : text + '\n');
        let timer: NodeJS.Timeout | undefined;
        const next = new Promise<'tick'>((r) => (timer = setTimeout(() => r('tick'), interval * 1000)));
        const what = await Promise.race([next, stopped.then(() => 'stop' as const)]);
        clearTimeout(timer);
        if (what === 'stop') break;
      }
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      if (tty) process.stdout.write(LEAVE);
    }
  });
}

/** frame renders one screen: a header line and the series, busiest first (the server sorts them). */
export function frame(server: string, top: TopAnswer): string {
  const head = `skiff top   ${server}   ${clock()}   rates over the last ${Math.round(top.windowMs / 1000)}s\n\n`;
  if (!top.series.length) return head + 'no Routes or Functions have served traffic yet\n';
  const rows = top.series.map((s) => [s.kind, s.name, s.rps.toFixed(1), String(s.errors), `${(s.errorRate * 100).toFixed(1)}%`, s.p99Ms === null ? '-' : formatMs(s.p99Ms)]);
  // Replicas only when the server reports them (an autoscaler is wired in), so older servers keep their columns.
  if (!top.series.some((s) => s.desired !== undefined)) return head + table(['KIND', 'NAME', 'RPS', 'ERRORS', 'ERR%', 'P99'], rows);
  top.series.forEach((s, i) => {
    const scaled = s.desired !== undefined;
    rows[i]!.push(scaled ? `${s.ready ?? 0}/${s.desired}` : '-', !scaled ? '-' : s.panic && s.reason !== 'panic' ? `${s.reason ?? ''} (panic)` : (s.reason ?? ''));
  });
  return head + table(['KIND', 'NAME', 'RPS', 'ERRORS', 'ERR%', 'P99', 'REPLICAS', 'REASON'], rows);
}

function formatMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)}s` : ms >= 1 ? `${Math.round(ms)}ms` : `${Math.round(ms * 1000)}µs`;
}

function clock(): string {
  return new Date().toISOString().slice(11, 19);
}

import type { Command } from 'commander';

import { UsageError } from '../../util/errors.js';
import { addClientOptions, clientFrom, KindResolver, objectPath } from '../common.js';

/** `skiff logs FUNCTION`: the function's stderr lines with timestamps and request ids. */
export function register(program: Command): void {
  addClientOptions(
    program
      .command('logs')
      .description("print a function's log: its stderr lines and the platform's notes (traps, bad output), with request ids")
      .argument('<function>')
      .option('-f, --follow', 'keep printing new lines')
      .option('--tail <lines>', 'how many recent lines', '200')
      .option('-o, --output <format>', 'text, or json: one object a line with the stream, request id, and the trace and span ids that join it to its trace', 'text'),
  ).action(async (name: string, opts: { server?: string; token?: string; namespace?: string; follow?: boolean; tail: string; output: string }) => {
    if (opts.output !== 'text' && opts.output !== 'json') throw new UsageError(`-o ${opts.output}: expected text or json`);
    const client = clientFrom(opts);
    const def = await new KindResolver(client).resolve('functions');
    // Make a missing function an error (404), not an empty log.
    await client.request('GET', objectPath(def, opts.namespace, name));
    const q = new URLSearchParams({ tailLines: opts.tail, ...(opts.follow ? { follow: 'true' } : {}), ...(opts.output === 'json' ? { format: 'json' } : {}) });
    const res = await client.stream('GET', `${objectPath(def, opts.namespace, name)}/log?${q}`);
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) process.stdout.write(chunk);
  });
}

import { readFile } from 'node:fs/promises';

import type { Command } from 'commander';

import { inspectModule, RuntimeError } from '../../runtime/index.js';
import { CheckFailedError, UsageError } from '../../util/errors.js';

const PAGE = 65536;

/** `skiff inspect MODULE.wasm`: imports, exports, memory limits and the capabilities the module can use. */
export function register(program: Command): void {
  program
    .command('inspect')
    .description('show a module\'s imports, exports, memory limits and the capability set it can possibly use')
    .argument('<module>', 'a .wasm file')
    .option('-o, --output <format>', 'output format: text or json', 'text')
    .action(async (modulePath: string, opts: { output: string }) => {
      if (opts.output !== 'text' && opts.output !== 'json') throw new UsageError(`-o ${opts.output}: expected text or json`);
      let bytes: Uint8Array;
      try {
        bytes = await readFile(modulePath);
      } catch (err) {
        throw new UsageError(`cannot read ${modulePath}: ${(err as Error).message}`);
      }
      let info;
      try {
        info = await inspectModule(bytes);
      } catch (err) {
        if (err instanceof RuntimeError) throw new CheckFailedError(`skiff inspect: ${modulePath}: ${err.message}`);
        throw err;
      }
      const memories = info.memories.map((m) => ({ minPages: m.min, maxPages: m.max, minBytes: m.min * PAGE, maxBytes: m.max === null ? null : m.max * PAGE, shared: m.shared }));
      if (opts.output === 'json') {
        const out = {
          module: modulePath, digest: info.digest, size: info.size, command: info.isCommand,
          imports: info.imports, exports: info.exports, memories, capabilities: info.capabilities, unknownImports: info.unknownImports,
        };
        process.stdout.write(JSON.stringify(out, null, 2) + '\n');
        return;
      }
      const lines = [
        `module:        ${modulePath}`,
        `digest:        ${info.digest}`,
        `size:          ${info.size} bytes`,
        `kind:          ${info.isCommand ? 'command (exports _start)' : 'not a command (no _start export)'}`,
        ...(memories.length
          ? memories.map((m) => `memory:        min ${m.minPages} pages (${m.minBytes} bytes), max ${m.maxPages === null ? 'none' : `${m.maxPages} pages (${m.maxBytes} bytes)`}${m.shared ? ', shared' : ''}`)
          : ['memory:        none defined']),
        `capabilities:  ${info.capabilities.length ? info.capabilities.join(', ') : 'none (pure computation)'}`,
        `imports (${info.imports.length}):`,
        ...info.imports.map((i) => `  ${i.module}.${i.name}  ${i.kind}`),
        `exports (${info.exports.length}):`,
        ...info.exports.map((e) => `  ${e.name}  ${e.kind}`),
      ];
      if (info.unknownImports.length) lines.push(`unknown imports (Skiff cannot run this module): ${info.unknownImports.join(', ')}`);
      process.stdout.write(lines.join('\n') + '\n');
    });
}

import { pathToFileURL } from 'node:url';

import { Command, CommanderError } from 'commander';

import { CheckFailedError,SkiffError, UsageError } from '../util/errors.js';

import { ApiRequestError } from './client.js';
import { registerAll } from './commands/index.js';

/**
 * main parses argv and runs one command. It resolves to the process exit code:
 * 0 success, 1 the request was refused or a check failed, 2 usage or internal error.
 */
export async function main(argv: string[]): Promise<number> {
  const code = await run(argv);
  // Verifiers answer exactly 0 or 1, as cosign's do: scripts test `if skiff verify ...`, and a usage
  // mistake must not read as anything but "not verified".
  return code === 2 && BINARY_EXIT_COMMANDS.has(argv[2] ?? '') ? 1 : code;
}

/** Commands whose exit status is exactly 0 (verified) or 1 (anything else). */
const BINARY_EXIT_COMMANDS = new Set(['verify', 'verify-blob', 'verify-attestation']);

async function run(argv: string[]): Promise<number> {
  const program = new Command('skiff')
    .description('A small, fast, WebAssembly-native cloud platform governed by policy as code')
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  registerAll(program);
  for (const cmd of program.commands) cmd.exitOverride();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    return reportError(err);
  }
}

function reportError(err: unknown): number {
  if (err instanceof CommanderError) {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
    return 2;
  }
  if (err instanceof UsageError) {
    process.stderr.write(`skiff: ${err.message}\n`);
    return 2;
  }
  if (err instanceof ApiRequestError) {
    process.stderr.write(`Error from server (${err.reason ?? err.httpStatus}): ${err.message}\n`);
    return 1;
  }
  if (err instanceof CheckFailedError) {
    process.stderr.write(`${err.message}\n`);
    return 1;
  }
  if (err instanceof SkiffError) {
    process.stderr.write(`skiff: ${err.message}\n`);
    return 2;
  }
  process.stderr.write(`skiff: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return 2;
}

/**
 * runAsProcess runs the CLI as the whole process: the exit code becomes the process's, and an error
 * that escaped `main` is printed rather than left as an unhandled rejection. Every entry point uses it.
 */
export function runAsProcess(argv: string[]): Promise<void> {
  return main(argv).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`skiff: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 2;
    },
  );
}

// Run directly (`tsx src/cli/main.ts ...` in development) rather than imported by bin/skiff.js.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) void runAsProcess(process.argv);

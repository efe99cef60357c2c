import type { Command } from 'commander';

// One file per command; each exports `register(program)`. Keep this list sorted.
const registrars: Array<(program: Command) => void> = [];

/** registerAll attaches every CLI command to the program. */
export function registerAll(program: Command): void {
  for (const register of registrars) register(program);
}

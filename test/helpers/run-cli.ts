import { vi } from 'vitest';

import { main } from '../../src/cli/main.js';

/** runCli calls the CLI in-process (no build needed) and captures what it writes and its exit code. */
export async function runCli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((out += String(s)), true));
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => ((err += String(s)), true));
  const before = process.exitCode;
  process.exitCode = undefined;
  try {
    const code = await main(['node', 'skiff', ...args]);
    return { code, out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
    process.exitCode = before;
  }
}

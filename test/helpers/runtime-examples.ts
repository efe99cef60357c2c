import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { run } from './run.js';
import { type RunningSkiff, startSkiff } from './skiff-process.js';

const REPO = join(import.meta.dirname, '..', '..');

/**
 * startWithExampleImage builds the container/VM example image (scripts/build-runtime-examples.mjs)
 * into a new temporary directory and starts a server with the Wasm demo that may read it
 * (`--allow-host-dir`). The caller stops the server and removes `dir`.
 */
export async function startWithExampleImage(prefix: string): Promise<{ skiff: RunningSkiff; dir: string; image: string }> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const built = await run(process.execPath, [join(REPO, 'scripts', 'build-runtime-examples.mjs'), '--out', dir], { timeout: 60_000 });
  if (built.status !== 0) throw new Error(`building the example image failed: ${built.stderr}`);
  const skiff = await startSkiff({ demo: true, args: ['--allow-host-dir', dir], timeoutMs: 30_000 });
  return { skiff, dir, image: join(dir, 'image') };
}

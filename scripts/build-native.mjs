#!/usr/bin/env node
// Compiles each native/*.c into a static binary under dist/native/ (part of `npm run build`).
// These are the small programs that run inside a container or VM replica, where nothing of the
// host (not even its libc) is present, hence static. A host without a C compiler skips them: the
// container and VM runtime classes then report HandlerUnavailable and say what to install.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'native');
const out = join(root, 'dist', 'native');
const sources = existsSync(src) ? readdirSync(src).filter((f) => f.endsWith('.c')) : [];
if (sources.length === 0) process.exit(0);
const cc = process.env.CC || 'cc';
if (spawnSync(cc, ['--version'], { stdio: 'ignore' }).status !== 0) {
  process.stdout.write(`native helpers not built: no C compiler (${cc}); container and vm runtime classes stay unavailable\n`);
  process.exit(0);
}
mkdirSync(out, { recursive: true });
let built = 0;
for (const f of sources) {
  const input = join(src, f);
  const output = join(out, f.replace(/\.c$/, ''));
  try {
    if (statSync(output).mtimeMs >= statSync(input).mtimeMs) continue;
  } catch {
    // not built yet
  }
  const r = spawnSync(cc, ['-static', '-Os', '-Wall', '-Wextra', '-Werror', '-o', output, input], { stdio: 'inherit' });
  if (r.status !== 0) {
    process.stderr.write(`building ${f} failed\n`);
    process.exit(1);
  }
  built++;
}
process.stdout.write(`built ${built} native helper(s)\n`);

#!/usr/bin/env node
// `npm run bench -- NAME [--json FILE]`: runs bench/NAME.ts with tsx. Without NAME, lists the benchmarks.
import { spawnSync } from 'node:child_process';
import { readdirSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const [name, ...rest] = process.argv.slice(2);
const available = readdirSync(join(root, 'bench')).filter((f) => f.endsWith('.ts')).map((f) => f.slice(0, -3));
if (!name || !available.includes(name)) {
  process.stderr.write(`usage: npm run bench -- NAME [--json FILE]\nbenchmarks: ${available.join(', ')}\n`);
  process.exit(name ? 2 : 0);
}
const tsx = join(root, 'node_modules', '.bin', 'tsx');
const r = spawnSync(existsSync(tsx) ? tsx : 'tsx', [join(root, 'bench', `${name}.ts`), ...rest], { stdio: 'inherit', cwd: root });
process.exit(r.status ?? 2);

#!/usr/bin/env node
// Bundles the dashboard (web/) into dist/web: hashed assets under assets/, and index.html naming them.
// The server serves hashed files as immutable, so a new build never meets a stale cached bundle.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'web');
rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'assets'), { recursive: true });

const result = await build({
  entryPoints: [join(root, 'web', 'src', 'main.tsx')],
  bundle: true,
  format: 'esm',
  target: ['chrome110', 'firefox115', 'safari16'],
  minify: true,
  sourcemap: 'linked',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  outdir: join(out, 'assets'),
  // The charting library and the YAML printer are split off and loaded by the views that need them.
  splitting: true,
  entryNames: '[name]-[hash]',
  chunkNames: 'chunk-[hash]',
  assetNames: '[name]-[hash]',
  metafile: true,
  legalComments: 'linked',
  logLevel: 'warning',
});

const outputs = Object.entries(result.metafile.outputs);
const entry = outputs.find(([, o]) => o.entryPoint);
const js = entry && basename(entry[0]);
const css = entry?.[1].cssBundle && basename(entry[1].cssBundle);
if (!js) throw new Error('esbuild produced no JavaScript bundle');
const html = readFileSync(join(root, 'web', 'index.html'), 'utf8')
  .replace('<!-- styles -->', css ? `<link rel="stylesheet" href="/ui/assets/${css}" />` : '')
  .replace('<!-- scripts -->', `<script type="module" src="/ui/assets/${js}"></script>`);
writeFileSync(join(out, 'index.html'), html);
const sizes = Object.entries(result.metafile.outputs).filter(([f]) => !f.endsWith('.map')).map(([f, o]) => `${basename(f)} ${(o.bytes / 1024).toFixed(1)} KiB`);
process.stdout.write(`web: ${sizes.join(', ')}\n`);

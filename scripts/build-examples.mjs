#!/usr/bin/env node
// Assembles every examples/*/*.wat into a .wasm beside it (part of `npm run build`).
import { readdirSync, readFileSync, writeFileSync, statSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import wabtInit from 'wabt';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', 'examples');
const wabt = await wabtInit();
let built = 0;
for (const dir of readdirSync(root)) {
  const full = join(root, dir);
  if (!statSync(full).isDirectory()) continue;
  for (const f of readdirSync(full)) {
    if (!f.endsWith('.wat')) continue;
    const src = join(full, f);
    const mod = wabt.parseWat(src, readFileSync(src, 'utf8'));
    mod.resolveNames();
    mod.validate();
    const { buffer } = mod.toBinary({ log: false });
    writeFileSync(src.replace(/\.wat$/, '.wasm'), buffer);
    mod.destroy();
    built++;
  }
}
process.stdout.write(`built ${built} example module(s)\n`);

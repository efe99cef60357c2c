#!/usr/bin/env node
// Entry point: runs the compiled CLI. `npm run build` produces dist/.
import { main } from '../dist/cli/main.js';

main(process.argv).then(
  (code) => { if (typeof code === 'number') process.exitCode = code; },
  (err) => { process.stderr.write(`skiff: ${err?.message ?? err}\n`); process.exitCode = 2; },
);

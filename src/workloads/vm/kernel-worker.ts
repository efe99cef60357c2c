// Unpacks a kernel off the main thread: decompressing tens of MiB in JavaScript would stall Skiff's event loop.
import { readFileSync, writeFileSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

import { extractVmlinux } from './kernel.js';

const { kernel, out } = workerData as { kernel: string; out: string };
const elf = extractVmlinux(readFileSync(kernel));
if (elf) writeFileSync(out, elf, { mode: 0o644 });
parentPort!.postMessage({ ok: Boolean(elf) });

/**
 * The Wasm class measured inside the bench's own process (no gateway): one new sandbox instance and
 * idle sandboxes per GiB, as the sandbox bench measures them; and fresh module bytes for cold starts.
 */
import { createHash } from 'node:crypto';

import { type RunSpec, SandboxHost } from '../../src/runtime/sandbox.js';
import { HostSwitch, WasiHost } from '../../src/runtime/wasi/host.js';
import { Wasm, type WasmModule } from '../../src/runtime/wasm-api.js';

import { type Figures, percentile } from './report.js';
import { perGiB } from './runtime-figures.js';

/** withCustomSection appends a custom section to a module: the same code under a digest nobody has seen. */
export function withCustomSection(wasm: Buffer, payload: string): Buffer {
  const name = Buffer.from('skiff-bench');
  const body = Buffer.concat([uleb(name.length), name, Buffer.from(payload)]);
  return Buffer.concat([wasm, Buffer.from([0]), uleb(body.length), body]);
}

function uleb(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return Buffer.from(out);
}

/** sha256 is a module's digest as Skiff names it. */
export const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/**
 * wasmInProcess measures `wasm_new_instance_us` (p50, p99: a new instance per run, no warm reuse) and
 * `wasm_instances_per_gib` (2000 idle sandboxes, each its own WASI host state and instance, the imports
 * shared, as a worker holds them); `gc` is V8's, exposed by the caller. Returns the figures and what
 * was measured.
 */
export function wasmInProcess(mod: WasmModule, gc: () => void): { figures: Figures; note: string } {
  const figures: Figures = {};
  const spec: RunSpec = { args: ['/hello'], env: { REQUEST_METHOD: 'GET' }, dirs: [], clock: 'real', random: 'real', maxOutputBytes: 1 << 20, memoryBytes: 16 << 20 };
  const host = new SandboxHost();
  const us: number[] = [];
  for (let i = 0; i < 2200; i++) {
    if (i % 1000 === 999) gc();
    const r = host.run('bench', mod, false, spec);
    if (!r.ok) throw new Error(r.message);
    if (i >= 200) us.push(r.instantiateUs);
  }
  us.sort((a, b) => a - b);
  figures.wasm_new_instance_us = percentile(us, 50);
  figures.wasm_new_instance_p99_us = percentile(us, 99);
  const sw = new HostSwitch();
  const keep: unknown[] = [];
  gc();
  gc();
  const before = process.memoryUsage();
  for (let i = 0; i < 2000; i++) keep.push([new WasiHost({ args: ['x'], env: {} }), new Wasm.Instance(mod, sw.imports())]);
  gc();
  gc();
  const after = process.memoryUsage();
  // RSS can shrink while the heap grows (the GC returns pages): the larger growth counts.
  const per = Math.max(1024, (after.rss - before.rss) / keep.length, (after.heapUsed - before.heapUsed) / keep.length);
  figures.wasm_instances_per_gib = perGiB(per);
  keep.length = 0;
  gc();
  return { figures, note: `wasm_instances_per_gib: 2000 idle sandboxes of examples/hello in one process (own WASI host + instance each), growth of RSS or JS heap, whichever is larger (${(per / 1024).toFixed(0)} KiB each)` };
}

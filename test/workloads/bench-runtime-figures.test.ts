import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { NewcArchive } from '../../bench/lib/cpio.js';
import { ProcessLedger } from '../../bench/lib/procs.js';
import { defaultFiguresPath, perGiB, putTimings, summarize, writeReport } from '../../bench/lib/runtime-figures.js';
import { classFacts, type HandlerAvailability, parseBenchReport, type RuntimeClassName } from '../../src/workloads/index.js';

const tmp = mkdtempSync(join(tmpdir(), 'skiff-bench-figures-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const available = (handler: string): HandlerAvailability => ({ handler, available: true });
const hosts: Record<RuntimeClassName, HandlerAvailability> = { wasm: available('wasm'), container: available('bwrap'), vm: available('qemu') };

describe('runtime-classes bench figures', () => {
  it('summarises timings as median and p90, and leaves out what was not measured', () => {
    const s = summarize([30, 10, 20, 50, 40, 60, 70, 80, 90, 100]);
    expect(s).toMatchObject({ median: 50, p90: 90, min: 10, max: 100, n: 10 });
    const figures: Record<string, number> = {};
    putTimings(figures, 'container_cold_start', [250, 240, 900]);
    putTimings(figures, 'vm_cold_start', []);
    expect(figures).toEqual({ container_cold_start_ms: 250, container_cold_start_p90_ms: 900 });
    expect(perGiB(2 ** 20)).toBe(1024);
    expect(perGiB(0)).toBe(0);
  });

  it('writes the report where skiff advise reads it, in the shape it accepts', () => {
    const a = join(tmp, 'a.json');
    const dataDir = join(tmp, 'data');
    const b = defaultFiguresPath('/repo', { SKIFF_DATA_DIR: dataDir });
    expect(b).toBe(join(dataDir, 'bench', 'runtime-classes.json'));
    expect(defaultFiguresPath('/repo', {})).toBe('/repo/.skiff/bench/runtime-classes.json');
    const report = {
      name: 'runtime-classes',
      figures: { wasm_cold_start_ms: 7.1234, container_cold_start_ms: 245.678, container_instances_per_gib: 1435, wasm_instances_per_gib: 150000, container_rps: 124.4 },
      peers: { bwrap: { cold_start_ms: 31.111 }, qemu: { cold_start_ms: 2235.6 } },
    };
    expect(writeReport(report, [a, b, undefined, a])).toEqual([a, b]);
    const doc = JSON.parse(readFileSync(b, 'utf8'));
    expect(Object.keys(doc)).toEqual(['name', 'figures', 'peers']);
    expect(doc.figures.container_cold_start_ms).toBe(245.68);
    expect(readFileSync(a, 'utf8')).toBe(readFileSync(b, 'utf8'));

    const parsed = parseBenchReport(doc);
    if (typeof parsed === 'string') throw new Error(parsed);
    const facts = classFacts(parsed, hosts, b);
    expect(facts.container.coldStartMs).toMatchObject({ value: 245.68, source: 'measured' });
    expect(facts.wasm.instancesPerGiB).toMatchObject({ value: 150000, source: 'measured' });
    expect(facts.container.rps?.value).toBe(124.4);
    // No vm figure measured (handler missing): the bare QEMU boot stands in for its cold start.
    expect(facts.vm.coldStartMs).toMatchObject({ value: 2235.6, source: 'measured' });
    expect(facts.vm.coldStartMs?.basis).toContain('peers.qemu.cold_start_ms');
  });

  it('builds a cpio newc archive the kernel can unpack', () => {
    const bytes = new NewcArchive().dir('bin').file('bin/x', 'abc', 0o755).symlink('bin/y', 'x').bytes();
    const entries: Array<{ name: string; mode: number; data: string }> = [];
    let off = 0;
    for (;;) {
      const h = bytes.subarray(off, off + 110).toString('latin1');
      expect(h.slice(0, 6)).toBe('070701');
      const field = (i: number) => parseInt(h.slice(6 + i * 8, 14 + i * 8), 16);
      const nameSize = field(11);
      const size = field(6);
      const name = bytes.subarray(off + 110, off + 110 + nameSize - 1).toString('latin1');
      off += 110 + nameSize;
      off += (4 - (off % 4)) % 4;
      const data = bytes.subarray(off, off + size).toString('latin1');
      off += size;
      off += (4 - (off % 4)) % 4;
      if (name === 'TRAILER!!!') break;
      entries.push({ name, mode: field(1), data });
    }
    expect(off).toBe(bytes.length);
    expect(entries).toEqual([
      { name: 'bin', mode: 0o040755, data: '' },
      { name: 'bin/x', mode: 0o100755, data: 'abc' },
      { name: 'bin/y', mode: 0o120777, data: 'x' },
    ]);
  });

  it('finds a process the bench started that is still running', async () => {
    const ledger = new ProcessLedger(process.pid, tmp);
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    await new Promise((r) => child.once('spawn', r));
    ledger.sample();
    expect(ledger.leftovers().map((p) => p.pid)).toContain(child.pid);
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    expect(ledger.leftovers().map((p) => p.pid)).not.toContain(child.pid);
  });
});

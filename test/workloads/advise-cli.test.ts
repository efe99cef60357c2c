import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { advise, classFacts, parseBenchReport, probeRuntimeClasses } from '../../src/workloads/index.js';
import { cli } from '../helpers/skiff-process.js';

const dir = mkdtempSync(join(tmpdir(), 'skiff-advise-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const bench = { name: 'runtime-classes', figures: { wasm_cold_start_ms: 0.42, container_cold_start_ms: 180, vm_cold_start_ms: 2300, wasm_instances_per_gib: 3100, container_instances_per_gib: 240, container_rps: 5200 }, peers: { bwrap: { cold_start_ms: 9 }, qemu: { cold_start_ms: 2100 } } };
const figures = join(dir, 'figures.json');
writeFileSync(figures, JSON.stringify(bench));
const write = (name: string, text: string) => {
  writeFileSync(join(dir, name), text);
  return join(dir, name);
};
const webYaml = write('web.yaml', 'apiVersion: skiff.dev/v1\nkind: Function\nmetadata:\n  name: web\n  namespace: apps\n  annotations: {advise.skiff.dev/untrusted: "true"}\nspec:\n  runtimeClassName: wasm\n  image: oci://127.0.0.1:5000/web@sha256:0000000000000000000000000000000000000000000000000000000000000000\n  port: 8080\n  resources: {memory: 128Mi}\n');
// The CLI runs with an empty data dir so that no bench file of the developer's own leaks in.
const emptyDataDir = join(dir, 'empty-data');
mkdirSync(emptyDataDir);
const run = (args: string[], input?: string, env: Record<string, string> = { SKIFF_DATA_DIR: emptyDataDir }) => cli(['advise', ...args], { input, env });

/** What the CLI must print for these needs on this host: the same facts, computed in this process. */
function expected(input: Parameters<typeof advise>[0], report = parseBenchReport(bench), path = figures) {
  if (typeof report === 'string') throw new Error(report);
  return advise(input, classFacts(report, probeRuntimeClasses(), path));
}

/** roundTrip is what JSON output makes of a value (undefined fields dropped). */
const roundTrip = (v: unknown) => JSON.parse(JSON.stringify(v)) as Record<string, unknown>;

describe('skiff advise', () => {
  it('-o json: runtimeClassName and reasons first, then the whole advice, from flags alone', async () => {
    const r = await run(['--untrusted', '--needs-linux-syscalls', '--max-cold-start', '500ms', '--figures', figures, '-o', 'json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(Object.keys(out).slice(0, 2)).toEqual(['runtimeClassName', 'reasons']);
    expect(out).toEqual({ ...roundTrip(expected({ untrusted: true, needsLinuxSyscalls: true, maxColdStartMs: 500 })), figures });
    expect(out.runtimeClassName).toBe('container');
    expect(out.reasons).toContain('Cold start must be within 500 ms: container starts in 180 ms (measured on this host).');
  });

  it('hardware isolation gives vm on any host, with its measured figures quoted', async () => {
    const r = await run(['--hardware-isolation', '--figures', figures, '-o', 'json']);
    const out = JSON.parse(r.stdout) as { runtimeClassName: string; reasons: string[]; leastBad: boolean };
    expect(out.runtimeClassName).toBe('vm');
    expect(out.leastBad).toBe(false);
    expect(out.reasons[0]).toBe('vm is the only class that meets every requirement.');
    expect(out.reasons).toContain('Figures for vm: cold start 2.3 s (measured on this host); density not measured.');
  });

  it('-f reads a Function: its image, its chosen class and its annotations, and says it disagrees', async () => {
    const r = await run(['-f', webYaml, '--figures', figures, '-o', 'json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { function: string; chosen: unknown; runtimeClassName: string; alternatives: Array<{ runtimeClassName: string; rejectedBecause: string[] }> };
    expect(out.function).toBe('apps/web');
    expect(out).toEqual({ ...roundTrip(expected({ untrusted: true, image: true, chosen: 'wasm', memoryBytes: 128 * 2 ** 20 })), function: 'apps/web', figures });
    expect(out.chosen).toEqual({ runtimeClassName: 'wasm', agrees: false });
    expect(out.alternatives.find((a) => a.runtimeClassName === 'wasm')!.rejectedBecause).toEqual(['The workload is a container image, and wasm runs only Wasm modules.']);
  });

  it('-f - reads JSON from stdin, and flags add to what the manifest says', async () => {
    const fn = JSON.stringify({ apiVersion: 'skiff.dev/v1', kind: 'Function', metadata: { name: 'm' }, spec: { module: 'hello.wasm' } });
    const r = await run(['-f', '-', '--hardware-isolation', '--figures', figures, '-o', 'json'], fn);
    const out = JSON.parse(r.stdout) as { function: string; runtimeClassName: string; leastBad: boolean; reasons: string[] };
    expect(out).toMatchObject({ function: 'default/m', runtimeClassName: 'vm', leastBad: true });
    expect(out.reasons.join(' ')).toContain('it would have to be packaged as an image first');
  });

  it('prints a table of the classes with the reasons, and reads the bench file from the data dir', async () => {
    const data = join(dir, 'data');
    mkdirSync(join(data, 'bench'), { recursive: true });
    writeFileSync(join(data, 'bench', 'runtime-classes.json'), JSON.stringify(bench));
    const r = await run(['--needs-linux-syscalls'], undefined, { SKIFF_DATA_DIR: data });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^runtimeClassName (container|vm)\n\nCLASS +HANDLER +AVAILABLE +COLD START +DENSITY +VERDICT\n/);
    expect(r.stdout).toMatch(/\nwasm +sandbox +yes +0\.42 ms \(measured\) +3,100 per GiB \(measured\) +ruled out\n/);
    expect(r.stdout).toContain('\nReasons:\n  - ');
    expect(r.stdout).toContain('  wasm:\n    - It needs Linux syscalls, and a wasm module gets only WASI preview 1');
    expect(r.stdout).not.toContain('no bench figures');
    const viaFlag = await run(['--needs-linux-syscalls', '--data-dir', data, '-o', 'json'], undefined, {});
    expect((JSON.parse(viaFlag.stdout) as { figures: string }).figures).toBe(join(data, 'bench', 'runtime-classes.json'));
  });

  it('without a bench file, uses the published figures and says so', async () => {
    const r = await run([]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('under 1 ms (published)');
    expect(r.stdout).toContain(`no bench figures at ${join(emptyDataDir, 'bench', 'runtime-classes.json')}: published reference figures were used`);
    const json = JSON.parse((await run(['-o', 'json'])).stdout) as { figures: null; classes: { container: { coldStartMs: { source: string } } } };
    expect(json.figures).toBeNull();
    expect(json.classes.container.coldStartMs.source).toBe('published');
  });

  it('bad input exits 2 and names the file or flag', async () => {
    const route = write('route.yaml', 'apiVersion: skiff.dev/v1\nkind: Route\nmetadata: {name: r}\nspec: {}\n');
    const two = write('two.yaml', 'kind: Function\nmetadata: {name: a}\n---\nkind: Function\nmetadata: {name: b}\n');
    const badMem = write('bad-mem.yaml', 'apiVersion: skiff.dev/v1\nkind: Function\nmetadata: {name: b}\nspec: {image: /x, resources: {memory: lots}}\n');
    const notJson = write('not.json', '{"figures": ');
    const cases: Array<[string[], RegExp]> = [
      [['-f', join(dir, 'missing.yaml')], /^skiff: \/.*missing\.yaml: no such file or directory\n$/],
      [['-f', route], /^skiff: -f .*route\.yaml: holds no Function \(found Route\)\n$/],
      [['-f', two], /^skiff: -f .*two\.yaml: holds 2 Functions; give one at a time\n$/],
      [['-f', badMem], /^skiff: -f .*bad-mem\.yaml: Function default\/b: spec\.resources\.memory "lots" is not a byte quantity/],
      [['--max-cold-start', 'fast'], /^skiff: --max-cold-start: "fast" is not a duration \(e\.g\. 50ms, 2s\)\n$/],
      [['--density', '0'], /^skiff: --density: "0" is not a density/],
      [['--memory', 'big'], /^skiff: --memory: "big" is not a byte quantity/],
      [['--figures', join(dir, 'nope.json')], /^skiff: --figures .*nope\.json: cannot read it \(ENOENT\)\n$/],
      [['--figures', notJson], /^skiff: --figures .*not\.json: not JSON/],
      [['--figures', webYaml], /^skiff: --figures .*web\.yaml: not JSON/],
      [['--figures', write('core.json', '{"name":"core","figures":{}}')], /^skiff: --figures .*core\.json: not a runtime-classes bench report: it is the "core" benchmark's report/],
      [['-o', 'yaml'], /^skiff: -o yaml: expected text or json\n$/],
    ];
    // A few at a time: the machine's cores are shared.
    const results: Awaited<ReturnType<typeof run>>[] = [];
    for (let i = 0; i < cases.length; i += 4) results.push(...(await Promise.all(cases.slice(i, i + 4).map(([args]) => run(args)))));
    results.forEach((r, i) => {
      expect(r.stderr, cases[i]![0].join(' ')).toMatch(cases[i]![1]);
      expect(r.code, cases[i]![0].join(' ')).toBe(2);
      expect(r.stdout).toBe('');
    });
  }, 60_000);
});

import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import {
  advise,
  type AdviseInput,
  AdviseInputError,
  availabilityOf,
  type ClassFact,
  type ClassFacts,
  classFacts,
  type Figure,
  formatFigure,
  functionNeeds,
  type HandlerAvailability,
  parseBenchReport,
  parseDensity,
  probeRuntimeClasses,
  PUBLISHED_COLD_START_MS,
  RUNTIME_CLASS_NAMES,
  type RuntimeClassName,
} from '../../src/workloads/index.js';

const GIB = 2 ** 30;
const measured = (value: number): Figure => ({ value, low: value, high: value, source: 'measured', basis: 'measured on this host: test' });

/** Facts as the bench would give them on a host with every handler: each field can be overridden. */
function facts(over: Partial<Record<RuntimeClassName, Partial<ClassFact>>> = {}): ClassFacts {
  const base: ClassFacts = {
    wasm: { handler: 'sandbox', available: true, coldStartMs: measured(0.5), instancesPerGiB: measured(3000) },
    container: { handler: 'bwrap', available: true, coldStartMs: measured(180), instancesPerGiB: measured(240), rps: measured(5200) },
    vm: { handler: 'qemu', available: true, coldStartMs: measured(2300), acceleration: 'kvm', reservedBytesPerReplica: 256 * 2 ** 20 },
  };
  for (const cls of RUNTIME_CLASS_NAMES) base[cls] = { ...base[cls], ...over[cls] };
  return base;
}

const published = (over: Partial<Record<RuntimeClassName, Partial<ClassFact>>> = {}) =>
  facts({
    wasm: { coldStartMs: PUBLISHED_COLD_START_MS.wasm, instancesPerGiB: undefined, ...over.wasm },
    container: { coldStartMs: PUBLISHED_COLD_START_MS.container, instancesPerGiB: undefined, rps: undefined, ...over.container },
    vm: { coldStartMs: PUBLISHED_COLD_START_MS.vm, ...over.vm },
  });

const rejected = (a: ReturnType<typeof advise>, cls: RuntimeClassName) => a.alternatives.find((x) => x.runtimeClassName === cls)!.rejectedBecause.join(' ');
const text = (a: ReturnType<typeof advise>) => a.reasons.join(' ');

describe('advise: the elimination rules', () => {
  it('with nothing asked, recommends the lightest class and says the others fit too', () => {
    const a = advise({}, facts());
    expect(a.runtimeClassName).toBe('wasm');
    expect(a.leastBad).toBe(false);
    expect(a.reasons[0]).toBe('Nothing asked rules a class out, so the lightest class this host can run wins: wasm.');
    expect(text(a)).toContain('Figures for wasm: cold start 0.5 ms (measured on this host); density 3,000 per GiB (measured on this host).');
    expect(rejected(a, 'container')).toMatch(/^It fits too, but wasm is preferred: it is lighter than container \(it starts in 0.5 ms \(measured on this host\), container in 180 ms/);
    expect(a.alternatives.map((x) => x.runtimeClassName)).toEqual(['container', 'vm']);
  });

  it('hardware isolation leaves only vm', () => {
    const a = advise({ hardwareIsolation: true }, facts());
    expect(a.runtimeClassName).toBe('vm');
    expect(a.reasons[0]).toBe('vm is the only class that meets every requirement.');
    expect(text(a)).toContain('a vm boots its own Linux kernel under QEMU');
    expect(rejected(a, 'wasm')).toMatch(/Hardware isolation is required, and a wasm sandbox runs inside Skiff's own process/);
    expect(rejected(a, 'container')).toMatch(/share the host's kernel/);
  });

  it('Linux syscalls leave container and vm, and the lighter container wins on its figures', () => {
    const a = advise({ needsLinuxSyscalls: true }, facts());
    expect(a.runtimeClassName).toBe('container');
    expect(a.reasons[0]).toMatch(/^container, vm meet every requirement; container is preferred because it is lighter than vm \(it starts in 180 ms \(measured on this host\), vm in 2.3 s \(measured on this host\)\)/);
    expect(rejected(a, 'wasm')).toMatch(/WASI preview 1: no fork\/exec/);
    expect(a.warnings.join(' ')).toMatch(/RuntimeDefault seccomp filter/);
  });

  it('untrusted code: wasm or vm; a container only with a warning, when nothing else fits', () => {
    expect(advise({ untrusted: true }, facts()).runtimeClassName).toBe('wasm');
    const linux = advise({ untrusted: true, needsLinuxSyscalls: true }, facts());
    expect(linux.runtimeClassName).toBe('vm');
    expect(linux.reasons[0]).toMatch(/vm is preferred because container comes with a caveat: the code is untrusted, and a container shares the host's kernel with it/);
    expect(rejected(linux, 'container')).toMatch(/^It fits too, but vm is preferred: container comes with a caveat/);
    const fast = advise({ untrusted: true, needsLinuxSyscalls: true, maxColdStartMs: 500 }, facts());
    expect(fast.runtimeClassName).toBe('container');
    expect(fast.leastBad).toBe(false);
    expect(fast.warnings[0]).toMatch(/^The code is untrusted, and a container shares the host's kernel with it: .*prefer wasm or vm/);
    expect(rejected(fast, 'vm')).toBe('Cold start must be within 500 ms, and vm starts in 2.3 s (measured on this host).');
  });

  it('the artifact: an image rules wasm out, a module rules container and vm out, both rule nothing out', () => {
    const image = advise({ image: true }, facts());
    expect(image.runtimeClassName).toBe('container');
    expect(rejected(image, 'wasm')).toBe('The workload is a container image, and wasm runs only Wasm modules.');
    const mod = advise({ module: true }, facts());
    expect(mod.runtimeClassName).toBe('wasm');
    expect(rejected(mod, 'vm')).toMatch(/a vm runs OCI images: it would have to be packaged as an image first/);
    expect(advise({ module: true, image: true }, facts()).alternatives.every((x) => x.rejectedBecause[0]!.startsWith('It fits too'))).toBe(true);
  });

  it('state between requests rules wasm out; a GPU leaves container, with a warning', () => {
    const st = advise({ stateful: true }, facts());
    expect(st.runtimeClassName).toBe('container');
    expect(rejected(st, 'wasm')).toMatch(/instantiated per request \(WAGI\)/);
    expect(st.warnings.join(' ')).toMatch(/writable layer is its own and is discarded on restart/);
    const gpu = advise({ gpu: true }, facts());
    expect(gpu.runtimeClassName).toBe('container');
    expect(gpu.warnings[0]).toMatch(/do not bind devices in yet/);
    expect(rejected(gpu, 'vm')).toMatch(/no PCI bus/);
    expect(rejected(gpu, 'wasm')).toMatch(/no interface to one/);
  });

  it('a cold-start limit is checked against each figure and quotes it', () => {
    const a = advise({ maxColdStartMs: 50 }, facts());
    expect(a.runtimeClassName).toBe('wasm');
    expect(text(a)).toContain('Cold start must be within 50 ms: wasm starts in 0.5 ms (measured on this host).');
    expect(rejected(a, 'container')).toBe('Cold start must be within 50 ms, and container starts in 180 ms (measured on this host).');
    const linux = advise({ needsLinuxSyscalls: true, maxColdStartMs: 3000 }, facts());
    expect(linux.runtimeClassName).toBe('container');
    expect(rejected(linux, 'vm')).toMatch(/^It fits too/);
  });

  it('a density limit is checked against the measured density, and a VM against its guest RAM', () => {
    const a = advise({ density: { replicas: 500, per: 'GiB' } }, facts());
    expect(a.runtimeClassName).toBe('wasm');
    expect(text(a)).toContain('The density must reach 500 replicas per GiB: wasm fits 3,000 per GiB (measured on this host).');
    expect(rejected(a, 'container')).toBe('The density must reach 500 replicas per GiB, and container fits only 240 per GiB (measured on this host).');
    expect(rejected(a, 'vm')).toBe('The density must reach 500 replicas per GiB, and vm fits only 4 per GiB (each replica holds 256 MiB of guest RAM).');
    // 20 per node of 8 GiB is 2.5 per GiB: a 256 MiB VM fits, a 512 MiB one does not.
    const node = { replicas: 20, per: 'node' as const, nodeMemoryBytes: 8 * GIB };
    const vmOk = advise({ hardwareIsolation: true, density: node }, facts());
    expect(vmOk.leastBad).toBe(false);
    expect(text(vmOk)).toContain('The density must reach 20 replicas per node (8 GiB here, so 2.5 per GiB): vm fits 4 per GiB');
    const vmBig = advise({ hardwareIsolation: true, density: node, memoryBytes: 512 * 2 ** 20 }, facts());
    expect(vmBig.leastBad).toBe(true);
    expect(text(vmBig)).toContain('vm fits only 2 per GiB (each replica holds 512 MiB of guest RAM)');
    // A container's memory limit bounds its density below the measured figure.
    const capped = advise({ needsLinuxSyscalls: true, density: { replicas: 100, per: 'GiB' }, memoryBytes: 64 * 2 ** 20 }, facts());
    expect(capped.leastBad).toBe(true);
    expect(text(capped)).toContain('container fits only 16 per GiB (each replica holds 64 MiB, its memory limit)');
  });
});

describe('advise: published and measured figures', () => {
  it('labels published figures as such and quotes their ranges', () => {
    expect(formatFigure(PUBLISHED_COLD_START_MS.wasm)).toBe('under 1 ms (published reference, not measured here)');
    expect(formatFigure(PUBLISHED_COLD_START_MS.container)).toBe('100 ms–1 s (published reference, not measured here)');
    expect(formatFigure(PUBLISHED_COLD_START_MS.vm)).toBe('about 125 ms with KVM (published reference, not measured here)');
    expect(formatFigure(measured(2300))).toBe('2.3 s (measured on this host)');
    const a = advise({}, published());
    expect(text(a)).toContain('cold start under 1 ms (published reference, not measured here); density not measured');
  });

  it('a limit inside a published range is uncertain: the class ranks below one whose figures settle it', () => {
    const a = advise({ needsLinuxSyscalls: true, maxColdStartMs: 500 }, published());
    // container: 100 ms–1 s straddles 500 ms; vm: 125 ms with KVM meets it.
    expect(a.runtimeClassName).toBe('vm');
    expect(rejected(a, 'container')).toMatch(/container's figures do not settle it: cold start must be within 500 ms, and container starts in 100 ms–1 s \(published reference, not measured here\): only part of that is within the limit/);
    expect(advise({ needsLinuxSyscalls: true, maxColdStartMs: 50 }, published()).leastBad).toBe(true);
    expect(advise({ needsLinuxSyscalls: true, maxColdStartMs: 2000 }, published()).runtimeClassName).toBe('container');
  });

  it('the published micro-VM figure assumes KVM: under TCG it is a lower bound only', () => {
    const tcg = published({ vm: { acceleration: 'tcg' } });
    const a = advise({ hardwareIsolation: true, maxColdStartMs: 200 }, tcg);
    expect(a.runtimeClassName).toBe('vm');
    expect(a.warnings.join(' ')).toMatch(/about 125 ms with KVM \(published reference, not measured here\), but this host has no \/dev\/kvm, so a boot here takes longer: only part of that is within the limit/);
    expect(a.warnings.join(' ')).toMatch(/QEMU emulates the CPU \(TCG\)/);
    expect(advise({ hardwareIsolation: true, maxColdStartMs: 200 }, published()).warnings).toEqual([]);
    expect(rejected(advise({ maxColdStartMs: 100 }, tcg), 'vm')).toMatch(/vm starts in about 125 ms with KVM/);
  });

  it('without a density figure, a density limit is uncertain rather than met', () => {
    const a = advise({ density: { replicas: 100, per: 'GiB' } }, published());
    expect(a.runtimeClassName).toBe('wasm');
    expect(a.warnings).toContain('The density must reach 100 replicas per GiB, and there is no density figure for wasm; run npm run bench -- runtime-classes.');
  });
});

describe('advise: handlers that cannot run here', () => {
  const noBwrap = { container: { available: false, unavailableReason: 'install bubblewrap' } };
  const noQemu = { vm: { available: false, unavailableReason: 'install qemu-system-x86' } };

  it('an unavailable handler loses to an available class that fits, and says what to install', () => {
    const a = advise({ needsLinuxSyscalls: true }, facts(noBwrap));
    expect(a.runtimeClassName).toBe('vm');
    expect(a.reasons[0]).toMatch(/vm is preferred because container's handler is not available on this host \(install bubblewrap\)/);
    expect(rejected(a, 'container')).toMatch(/install bubblewrap/);
    expect(text(a)).toContain('Its handler qemu is available on this host.');
  });

  it('when every class that fits is unavailable, it recommends one and says to install its handler', () => {
    const a = advise({ needsLinuxSyscalls: true }, facts({ ...noBwrap, ...noQemu }));
    expect(a.runtimeClassName).toBe('container');
    expect(text(a)).toContain('Its handler bwrap cannot run on this host yet (install bubblewrap), and no class that fits has a handler here: do that before deploying.');
    const hw = advise({ hardwareIsolation: true }, facts(noQemu));
    expect(hw.runtimeClassName).toBe('vm');
    expect(hw.leastBad).toBe(false);
  });

  it('never recommends an unavailable handler while an available class fits (every combination)', () => {
    const needs: Array<keyof AdviseInput> = ['untrusted', 'hardwareIsolation', 'needsLinuxSyscalls', 'image', 'module', 'stateful', 'gpu'];
    let checked = 0;
    for (let mask = 0; mask < 1 << needs.length; mask++) {
      const input: AdviseInput = {};
      needs.forEach((n, i) => {
        if (mask & (1 << i)) (input as Record<string, boolean>)[n] = true;
      });
      for (let avail = 0; avail < 8; avail++) {
        const f = facts(Object.fromEntries(RUNTIME_CLASS_NAMES.map((c, i) => [c, { available: !!(avail & (1 << i)), unavailableReason: avail & (1 << i) ? undefined : `install ${c}` }])));
        const a = advise(input, f);
        const fitting = RUNTIME_CLASS_NAMES.filter((c) => c === a.runtimeClassName ? !a.leastBad : a.alternatives.find((x) => x.runtimeClassName === c)!.rejectedBecause[0]!.startsWith('It fits too'));
        if (fitting.some((c) => f[c].available)) expect(f[a.runtimeClassName].available, JSON.stringify({ input, avail })).toBe(true);
        checked++;
      }
    }
    expect(checked).toBe(1024);
  });
});

describe('advise: conflicting needs', () => {
  it('hardware isolation and a 50 ms cold start: vm, flagged as the least bad, saying what it misses', () => {
    const a = advise({ hardwareIsolation: true, maxColdStartMs: 50 }, facts());
    expect(a.runtimeClassName).toBe('vm');
    expect(a.leastBad).toBe(true);
    expect(a.reasons[0]).toBe('No class meets every requirement, so this is the least bad choice: vm misses one requirement, a performance one, where wasm misses 1 (security) and container misses 2 (security, performance).');
    expect(a.reasons[1]).toBe('It misses this: Cold start must be within 50 ms, and vm starts in 2.3 s (measured on this host).');
  });

  it('a security need outweighs a packaging need: hardware isolation for a Wasm module is a vm to package', () => {
    const a = advise({ hardwareIsolation: true, module: true }, facts());
    expect(a.runtimeClassName).toBe('vm');
    expect(a.leastBad).toBe(true);
    expect(text(a)).toMatch(/it would have to be packaged as an image first/);
  });

  it('a GPU with hardware isolation: vm misses the GPU, container the isolation; vm is least bad', () => {
    const a = advise({ gpu: true, hardwareIsolation: true }, facts());
    expect(a.runtimeClassName).toBe('vm');
    expect(a.leastBad).toBe(true);
    expect(rejected(a, 'container')).toMatch(/Hardware isolation is required/);
  });

  it('a cold start below every figure: each misses once, so the lightest available wins', () => {
    const a = advise({ maxColdStartMs: 0.1 }, facts({ wasm: { available: false, unavailableReason: 'x' } }));
    expect(a.leastBad).toBe(true);
    expect(a.runtimeClassName).toBe('container');
  });
});

describe('advise: the class the manifest chose', () => {
  it('says whether the advice agrees, and why not', () => {
    const yes = advise({ image: true, chosen: 'container' }, facts());
    expect(yes.chosen).toEqual({ runtimeClassName: 'container', agrees: true });
    expect(yes.reasons.at(-1)).toBe("The manifest's runtimeClassName container agrees with this advice.");
    const no = advise({ image: true, chosen: 'wasm' }, facts());
    expect(no.chosen).toEqual({ runtimeClassName: 'wasm', agrees: false });
    expect(no.reasons.at(-1)).toBe("The manifest's runtimeClassName wasm differs from this advice (container): The workload is a container image, and wasm runs only Wasm modules.");
    const fits = advise({ image: true, chosen: 'vm' }, facts());
    expect(fits.reasons.at(-1)).toMatch(/^The manifest's runtimeClassName vm differs from this advice \(container\): it is lighter than vm/);
    expect(advise({ chosen: 'gvisor' }, facts()).reasons.at(-1)).toBe('The manifest\'s runtimeClassName "gvisor" is not a built-in class (wasm, container, vm), so advise cannot weigh it; this advice is wasm.');
  });

  it('refuses needs out of range', () => {
    expect(() => advise({ maxColdStartMs: -1 }, facts())).toThrow(AdviseInputError);
    expect(() => advise({ density: { replicas: 0, per: 'GiB' } }, facts())).toThrow(/positive number of replicas/);
    expect(() => parseDensity('lots', GIB, '--density')).toThrow('--density: "lots" is not a density');
    expect(parseDensity('20/node', 4 * GIB, 'x')).toEqual({ replicas: 20, per: 'node', nodeMemoryBytes: 4 * GIB });
    expect(parseDensity('200/GiB', 4 * GIB, 'x')).toEqual({ replicas: 200, per: 'GiB' });
  });
});

describe('classFacts and the bench report', () => {
  const all: Record<RuntimeClassName, HandlerAvailability> = { wasm: { handler: 'sandbox', available: true }, container: { handler: 'bwrap', available: false, reason: 'install bubblewrap' }, vm: { handler: 'qemu', available: true, acceleration: 'tcg' } };

  it('measured figures win; a bare peer stands in; the rest are published', () => {
    const report = parseBenchReport({ name: 'runtime-classes', figures: { wasm_cold_start_ms: 0.4, wasm_instances_per_gib: 2900, container_rps: 5000, bogus: -1, nan: 'x' }, peers: { bwrap: { cold_start_ms: 9 }, qemu: {} } });
    if (typeof report === 'string') throw new Error(report);
    expect(report.figures).toEqual({ wasm_cold_start_ms: 0.4, wasm_instances_per_gib: 2900, container_rps: 5000 });
    const f = classFacts(report, all, '/d/bench/runtime-classes.json');
    expect(f.wasm.coldStartMs).toEqual({ value: 0.4, low: 0.4, high: 0.4, source: 'measured', basis: 'measured on this host: wasm_cold_start_ms in /d/bench/runtime-classes.json' });
    expect(f.container.coldStartMs!.basis).toBe('measured on this host: peers.bwrap.cold_start_ms (a bare bwrap start, without Skiff) in /d/bench/runtime-classes.json');
    expect(f.container).toMatchObject({ available: false, unavailableReason: 'install bubblewrap', rps: { value: 5000, source: 'measured' } });
    expect(f.vm.coldStartMs).toBe(PUBLISHED_COLD_START_MS.vm);
    expect(f.vm).toMatchObject({ acceleration: 'tcg', reservedBytesPerReplica: 256 * 2 ** 20 });
    expect(classFacts(undefined, all).wasm.coldStartMs!.source).toBe('published');
  });

  it('says what is wrong with a report that is not one', () => {
    expect(parseBenchReport([])).toBe('it is not a JSON object');
    expect(parseBenchReport({ name: 'runtime-classes' })).toMatch(/has no "figures" object/);
    expect(parseBenchReport({ name: 'core', figures: {} })).toBe('it is the "core" benchmark\'s report, not "runtime-classes"');
  });
});

describe('functionNeeds', () => {
  const fn = (spec: Record<string, unknown>, annotations?: Record<string, string>) => ({ apiVersion: 'skiff.dev/v1', kind: 'Function', metadata: { name: 'web', namespace: 'apps', annotations }, spec });

  it('reads the image, module, chosen class, memory and advise annotations', () => {
    expect(functionNeeds(fn({ image: 'oci://r/x@sha256:1', runtimeClassName: 'container', resources: { memory: '128Mi' } }), GIB)).toEqual({ name: 'apps/web', input: { image: true, chosen: 'container', memoryBytes: 128 * 2 ** 20 } });
    const a = functionNeeds(fn({ module: 'x.wasm' }, { 'advise.skiff.dev/untrusted': 'true', 'advise.skiff.dev/gpu': 'false', 'advise.skiff.dev/max-cold-start': '2s', 'advise.skiff.dev/density': '10/node', other: 'x' }), 2 * GIB);
    expect(a.input).toEqual({ module: true, untrusted: true, gpu: false, maxColdStartMs: 2000, density: { replicas: 10, per: 'node', nodeMemoryBytes: 2 * GIB } });
  });

  it('names the field that is wrong', () => {
    expect(() => functionNeeds({ kind: 'Route' }, GIB)).toThrow('not a Function (kind: Route)');
    expect(() => functionNeeds(fn({ resources: { memory: 'lots' } }), GIB)).toThrow('Function apps/web: spec.resources.memory "lots" is not a byte quantity (e.g. 256Mi)');
    expect(() => functionNeeds(fn({ image: 3 }), GIB)).toThrow('Function apps/web: spec.image must be a non-empty string');
    expect(() => functionNeeds(fn({}, { 'advise.skiff.dev/untrusted': 'yes' }), GIB)).toThrow('Function apps/web: annotation advise.skiff.dev/untrusted must be "true" or "false", not "yes"');
    expect(() => functionNeeds(fn({}, { 'advise.skiff.dev/max-cold-start': 'soon' }), GIB)).toThrow('is not a duration (e.g. 50ms, 2s)');
    expect(() => functionNeeds(fn({}, { 'advise.skiff.dev/fast': 'true' }), GIB)).toThrow(/annotation advise.skiff.dev\/fast is not one skiff advise knows/);
  });
});

describe('probeRuntimeClasses', () => {
  const root = mkdtempSync(join(tmpdir(), 'skiff-advise-probe-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const bin = join(root, 'bin');
  const boot = join(root, 'boot');
  mkdirSync(bin);
  mkdirSync(boot);
  const tool = (name: string) => {
    writeFileSync(join(bin, name), '#!/bin/sh\n');
    chmodSync(join(bin, name), 0o755);
  };
  const native = (present: boolean) => (name: string) => (present ? `/built/${name}` : undefined);

  it('says what to install, class by class', () => {
    const none = probeRuntimeClasses({ path: bin, bootDir: join(root, 'missing'), kvmDevice: join(root, 'kvm'), nativeBinary: native(false) });
    expect(none.wasm).toEqual({ handler: 'sandbox', available: true });
    expect(none.container).toEqual({ handler: 'bwrap', available: false, reason: 'install bubblewrap' });
    expect(none.vm.available).toBe(false);
    expect(none.vm.reason).toBe(`install qemu-system-x86; install linux-image-cloud-amd64, as there is no vmlinuz-* under ${join(root, 'missing')}; build dist/native/skiff-vminit with npm run build, which needs a C compiler with static glibc`);
    expect(none.vm.acceleration).toBe('tcg');
    tool('bwrap');
    const noInit = probeRuntimeClasses({ path: bin, bootDir: boot, nativeBinary: native(false) });
    expect(noInit.container.reason).toMatch(/^build dist\/native\/skiff-init/);
  });

  it('finds every handler when its programs are there, and KVM when the device is', () => {
    tool('qemu-system-x86_64');
    writeFileSync(join(boot, 'vmlinuz-6.1.0-test'), '');
    writeFileSync(join(root, 'kvm'), '');
    const all = probeRuntimeClasses({ path: bin, bootDir: boot, kvmDevice: join(root, 'kvm'), nativeBinary: native(true) });
    expect(all.container).toEqual({ handler: 'bwrap', available: true });
    expect(all.vm).toEqual({ handler: 'qemu', available: true, acceleration: 'kvm' });
    // A directory named like the program is not the program.
    mkdirSync(join(root, 'bin2', 'runc'), { recursive: true });
    expect(probeRuntimeClasses({ path: join(root, 'bin2'), nativeBinary: native(true) }).container.available).toBe(false);
  });

  it('takes a handler\'s own answer instead, through availabilityOf', async () => {
    expect(await availabilityOf({ name: 'bwrap', unavailable: async () => 'install bubblewrap' })).toEqual({ handler: 'bwrap', available: false, reason: 'install bubblewrap' });
    expect(await availabilityOf({ name: 'qemu', unavailable: async () => undefined }, 'tcg')).toEqual({ handler: 'qemu', available: true, acceleration: 'tcg' });
  });
});

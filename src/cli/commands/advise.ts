import { readFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { join, resolve } from 'node:path';

import type { Command } from 'commander';

import { readManifests } from '../../manifests/index.js';
import { SkiffError, UsageError } from '../../util/errors.js';
import { parseBytes } from '../../util/quantity.js';
import {
  type Advice,
  advise,
  type AdviseInput,
  type BenchReport,
  classFacts,
  formatFigure,
  formatPerGiB,
  functionNeeds,
  parseBenchReport,
  parseColdStart,
  parseDensity,
  probeRuntimeClasses,
  RUNTIME_CLASS_NAMES,
} from '../../workloads/index.js';
import { table } from '../common.js';

interface AdviseOptions {
  filename?: string;
  output: string;
  untrusted?: boolean;
  hardwareIsolation?: boolean;
  maxColdStart?: string;
  density?: string;
  needsLinuxSyscalls?: boolean;
  stateful?: boolean;
  gpu?: boolean;
  image?: boolean;
  module?: boolean;
  memory?: string;
  figures?: string;
  dataDir?: string;
}

/** `skiff advise`: recommends a runtime class for a Function from its needs and this host's figures. */
export function register(program: Command): void {
  program
    .command('advise')
    .description('recommend a runtime class (wasm, container, vm) for a Function from its needs and the measured figures of each class on this host')
    .option('-f, --filename <file>', 'a Function manifest (YAML or JSON; - for stdin): spec.image, spec.module, spec.runtimeClassName, spec.resources.memory and advise.skiff.dev/* annotations state its needs')
    .option('-o, --output <format>', 'text or json', 'text')
    .option('--untrusted', 'the code is third-party or otherwise untrusted')
    .option('--hardware-isolation', 'it must not share a kernel with the host')
    .option('--max-cold-start <duration>', 'longest acceptable cold start, e.g. 50ms or 2s')
    .option('--density <n>', 'replicas wanted per GiB (200, 200/GiB) or per node (20/node: per this host\'s memory)')
    .option('--needs-linux-syscalls', 'an existing Linux binary, fork/exec, raw sockets or a full POSIX file system')
    .option('--stateful', 'it keeps state in memory between requests')
    .option('--gpu', 'it needs a GPU')
    .option('--image', 'it exists as an OCI container image')
    .option('--module', 'it exists as a Wasm module')
    .option('--memory <quantity>', 'memory of one replica, e.g. 256Mi')
    .option('--figures <file>', 'the runtime bench\'s JSON report (default: DATA_DIR/bench/runtime-classes.json)')
    .option('--data-dir <dir>', 'the data directory (default: $SKIFF_DATA_DIR, else ./.skiff)')
    .action((opts: AdviseOptions) => {
      if (opts.output !== 'text' && opts.output !== 'json') throw new UsageError(`-o ${opts.output}: expected text or json`);
      const { input, subject } = needsFrom(opts);
      const figures = readFigures(opts);
      const advice = advise(input, classFacts(figures.report, probeRuntimeClasses(), figures.path));
      if (opts.output === 'json') {
        const { runtimeClassName, reasons, ...rest } = advice;
        process.stdout.write(JSON.stringify({ runtimeClassName, reasons, ...rest, ...(subject ? { function: subject } : {}), figures: figures.report ? figures.path : null }, null, 2) + '\n');
      } else process.stdout.write(render(advice, subject, figures));
    });
}

/** needsFrom merges what the manifest implies with the flags; a flag wins over the manifest. */
function needsFrom(opts: AdviseOptions): { input: AdviseInput; subject?: string } {
  const node = totalmem();
  let input: AdviseInput = {};
  let subject: string | undefined;
  if (opts.filename !== undefined) ({ input, subject } = readFunction(opts.filename, node));
  try {
    for (const k of ['untrusted', 'hardwareIsolation', 'needsLinuxSyscalls', 'stateful', 'gpu', 'image', 'module'] as const) if (opts[k]) input[k] = true;
    if (opts.maxColdStart !== undefined) input.maxColdStartMs = parseColdStart(opts.maxColdStart, '--max-cold-start');
    if (opts.density !== undefined) input.density = parseDensity(opts.density, node, '--density');
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (opts.memory !== undefined) {
    const bytes = parseBytes(opts.memory);
    if (!bytes) throw new UsageError(`--memory: "${opts.memory}" is not a byte quantity (e.g. 256Mi)`);
    input.memoryBytes = bytes;
  }
  return { input, subject };
}

function readFunction(file: string, nodeMemoryBytes: number): { input: AdviseInput; subject: string } {
  const shown = file === '-' ? '<stdin>' : file;
  let objects;
  try {
    objects = readManifests([file]);
  } catch (err) {
    // The message names the file (and line) already.
    throw new UsageError((err as Error).message);
  }
  const fns = objects.filter((m) => m.object.kind === 'Function');
  if (fns.length !== 1) {
    const kinds = objects.map((m) => String(m.object.kind ?? 'no kind'));
    throw new UsageError(`-f ${shown}: ${fns.length ? `holds ${fns.length} Functions; give one at a time` : `holds no Function (found ${kinds.length ? kinds.join(', ') : 'nothing'})`}`);
  }
  try {
    const needs = functionNeeds(fns[0]!.object, nodeMemoryBytes);
    return { input: needs.input, subject: needs.name };
  } catch (err) {
    if (err instanceof SkiffError) throw new UsageError(`-f ${shown}: ${err.message}`);
    throw err;
  }
}

interface Figures {
  path: string;
  report?: BenchReport;
  /** Why there are no measured figures, for the text output. */
  missing?: string;
}

/** readFigures reads the bench report: a named file must exist; the default one may be absent. */
function readFigures(opts: AdviseOptions): Figures {
  const explicit = opts.figures !== undefined;
  const path = resolve(opts.figures ?? join(opts.dataDir ?? process.env.SKIFF_DATA_DIR ?? '.skiff', 'bench', 'runtime-classes.json'));
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (!explicit && code === 'ENOENT') return { path, missing: `no bench figures at ${path}` };
    throw new UsageError(`${explicit ? '--figures ' : ''}${path}: cannot read it (${code ?? (err as Error).message})`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${explicit ? '--figures ' : ''}${path}: not JSON (${(err as Error).message})`);
  }
  const report = parseBenchReport(doc);
  if (typeof report === 'string') throw new UsageError(`${explicit ? '--figures ' : ''}${path}: not a runtime-classes bench report: ${report}`);
  return { path, report };
}

function render(a: Advice, subject: string | undefined, figures: Figures): string {
  const verdict = (cls: string) => {
    if (cls === a.runtimeClassName) return a.leastBad ? 'LEAST BAD' : 'RECOMMENDED';
    return a.alternatives.find((x) => x.runtimeClassName === cls)!.rejectedBecause[0]!.startsWith('It fits too') ? 'fits' : 'ruled out';
  };
  const rows = RUNTIME_CLASS_NAMES.map((cls) => {
    const f = a.classes[cls];
    return [
      cls,
      f.handler,
      f.available ? 'yes' : 'no',
      f.coldStartMs ? formatFigure(f.coldStartMs, undefined, true) : 'not measured',
      f.instancesPerGiB ? formatFigure(f.instancesPerGiB, formatPerGiB, true) : 'not measured',
      verdict(cls),
    ];
  });
  const list = (items: string[]) => items.map((s) => `  - ${s}\n`).join('');
  let out = `${subject ? `Function ${subject}: ` : ''}runtimeClassName ${a.runtimeClassName}${a.leastBad ? ' (least bad: no class meets every requirement)' : ''}\n\n`;
  out += table(['CLASS', 'HANDLER', 'AVAILABLE', 'COLD START', 'DENSITY', 'VERDICT'], rows);
  for (const cls of RUNTIME_CLASS_NAMES) if (!a.classes[cls].available) out += `${cls} cannot run on this host: ${a.classes[cls].unavailableReason}\n`;
  out += `\nReasons:\n${list(a.reasons)}`;
  if (a.warnings.length) out += `\nWarnings:\n${list(a.warnings)}`;
  out += `\nNot recommended:\n${a.alternatives.map((x) => `  ${x.runtimeClassName}:\n${x.rejectedBecause.map((r) => `    - ${r}\n`).join('')}`).join('')}`;
  if (figures.missing) out += `\n${figures.missing}: published reference figures were used (measure this host with npm run bench -- runtime-classes --json ${figures.path}).\n`;
  return out;
}

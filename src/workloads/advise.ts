import { SkiffError } from '../util/errors.js';

import { type ClassFact, type ClassFacts, type Figure, formatCount, formatFigure, formatMs, formatPerGiB, isRuntimeClassName, RUNTIME_CLASS_NAMES, type RuntimeClassName } from './advise-figures.js';

/**
 * What a workload needs, from a Function manifest and/or the command line. Every field is optional: an
 * absent need rules nothing out.
 */
export interface AdviseInput {
  /** Third-party or otherwise untrusted code. */
  untrusted?: boolean;
  /** Must not share a kernel with the host or other tenants. */
  hardwareIsolation?: boolean;
  /** Longest acceptable cold start (request at zero replicas to first byte), in milliseconds. */
  maxColdStartMs?: number;
  /** Replicas wanted per GiB of memory, or per node (then the node's memory turns it into per GiB). */
  density?: { replicas: number; per: 'GiB' } | { replicas: number; per: 'node'; nodeMemoryBytes: number };
  /** An existing Linux binary, fork/exec, raw sockets, a full POSIX file system. */
  needsLinuxSyscalls?: boolean;
  /** The workload exists as an OCI container image. */
  image?: boolean;
  /** The workload exists as a Wasm module. */
  module?: boolean;
  /** Keeps state in memory between requests. */
  stateful?: boolean;
  /** Needs a GPU. */
  gpu?: boolean;
  /** Memory of one replica (a Function's spec.resources.memory), in bytes. */
  memoryBytes?: number;
  /** The runtimeClassName the manifest already names, to say whether the advice agrees. */
  chosen?: string;
}

/** Advice is the recommendation with the reasoning behind it. */
export interface Advice {
  runtimeClassName: RuntimeClassName;
  /** Sentences for a person, quoting the figures they rest on. */
  reasons: string[];
  /** Caveats of the recommended class (shared kernel with untrusted code, figures that settle nothing, ...). */
  warnings: string[];
  /** True when no class meets every requirement and this is the least bad one. */
  leastBad: boolean;
  /** Present when the input named a class: whether the advice agrees with it. */
  chosen?: { runtimeClassName: string; agrees: boolean };
  /** Every other class and why it was not recommended. */
  alternatives: Array<{ runtimeClassName: RuntimeClassName; rejectedBecause: string[] }>;
  /** The facts the advice used. */
  classes: ClassFacts;
}

/** AdviseInputError: a need out of range (a negative cold-start limit, a density of zero). */
export class AdviseInputError extends SkiffError {
  constructor(message: string) {
    super('advise_invalid_input', message);
  }
}

type Severity = 'security' | 'compatibility' | 'performance';
const SEVERITY_RANK: Record<Severity, number> = { security: 3, compatibility: 2, performance: 1 };

/** Verdict is how one class fares against every stated need. */
interface Verdict {
  cls: RuntimeClassName;
  /** Needs it cannot meet. */
  rejections: Array<{ severity: Severity; message: string }>;
  /** Needs it meets with a caveat; a security caveat ranks it below a class without one. */
  cautions: Array<{ severity: Severity; message: string }>;
  /** Limits its figures cannot settle. */
  uncertain: string[];
  /** How it meets each need, for the reasons. */
  meets: string[];
  /** Facts worth knowing that do not change the ranking. */
  notes: string[];
}

const GIB = 2 ** 30;

/**
 * advise recommends a runtime class. Each stated need rules classes out (hardware isolation leaves only
 * `vm`; Linux syscalls or an image-only workload leave `container` and `vm`; cold-start and density
 * limits are checked against the facts); among the classes that remain, one whose handler runs here
 * beats one whose does not, one without a security caveat (a container with untrusted code) beats one
 * with it, a class whose figures settle the limits beats one whose do not, and otherwise the lightest
 * wins. When no class meets everything, the least bad is the one whose worst miss is the least severe
 * (security, then compatibility, then performance), flagged with `leastBad`.
 *
 * @example
 * const facts = classFacts(undefined, probeRuntimeClasses());
 * advise({ untrusted: true, needsLinuxSyscalls: true }, facts).runtimeClassName; // 'vm'
 */
export function advise(input: AdviseInput, facts: ClassFacts): Advice {
  validate(input);
  const verdicts = RUNTIME_CLASS_NAMES.map((cls) => judge(cls, input, facts[cls]));
  const fits = verdicts.filter((v) => v.rejections.length === 0).sort((a, b) => compare(rankOfFit(a, facts), rankOfFit(b, facts)));
  const leastBad = fits.length === 0;
  const ranked = leastBad ? [...verdicts].sort((a, b) => compare(rankOfMiss(a, facts), rankOfMiss(b, facts))) : fits;
  const best = ranked[0]!;
  const fact = facts[best.cls];

  const reasons: string[] = [headline(best, fits, verdicts, facts, input)];
  if (leastBad) for (const r of best.rejections) reasons.push(`It misses this: ${r.message}`);
  reasons.push(...best.meets, figuresSentence(best.cls, fact));
  reasons.push(fact.available ? `Its handler ${fact.handler} is available on this host.` : `Its handler ${fact.handler} cannot run on this host yet (${fact.unavailableReason}), and ${leastBad ? 'the classes that can run here miss more' : 'no class that fits has a handler here'}: do that before deploying.`);

  let chosen: Advice['chosen'];
  if (input.chosen !== undefined) {
    const agrees = input.chosen === best.cls;
    chosen = { runtimeClassName: input.chosen, agrees };
    reasons.push(chosenSentence(input.chosen, agrees, best, verdicts, facts));
  }
  const warnings = [...best.cautions.map((c) => c.message), ...best.uncertain, ...best.notes];
  const alternatives = verdicts.filter((v) => v.cls !== best.cls).map((v) => ({ runtimeClassName: v.cls, rejectedBecause: v.rejections.length ? v.rejections.map((r) => r.message) : [whyNot(v, best, facts)] }));
  return { runtimeClassName: best.cls, reasons, warnings, leastBad, chosen, alternatives, classes: facts };
}

function validate(input: AdviseInput): void {
  if (input.maxColdStartMs !== undefined && !(Number.isFinite(input.maxColdStartMs) && input.maxColdStartMs >= 0)) throw new AdviseInputError(`the cold-start limit must be a non-negative duration, not ${input.maxColdStartMs}`);
  if (input.density && !(Number.isFinite(input.density.replicas) && input.density.replicas > 0)) throw new AdviseInputError(`the density must be a positive number of replicas, not ${input.density.replicas}`);
  if (input.density?.per === 'node' && !(input.density.nodeMemoryBytes > 0)) throw new AdviseInputError('a density per node needs the node\'s memory size');
  if (input.memoryBytes !== undefined && !(input.memoryBytes > 0)) throw new AdviseInputError(`a replica's memory must be positive, not ${input.memoryBytes}`);
}

function judge(cls: RuntimeClassName, input: AdviseInput, fact: ClassFact): Verdict {
  const v: Verdict = { cls, rejections: [], cautions: [], uncertain: [], meets: [], notes: [] };
  const reject = (severity: Severity, message: string) => v.rejections.push({ severity, message });
  if (input.hardwareIsolation) {
    if (cls === 'wasm') reject('security', 'Hardware isolation is required, and a wasm sandbox runs inside Skiff\'s own process on the host kernel.');
    if (cls === 'container') reject('security', 'Hardware isolation is required, and a container\'s processes share the host\'s kernel (namespaces and seccomp are not a separate kernel).');
    if (cls === 'vm') v.meets.push('Hardware isolation is required: a vm boots its own Linux kernel under QEMU, so the workload shares no kernel with the host.');
  }
  if (cls === 'vm' && fact.acceleration === 'tcg' && (input.hardwareIsolation || input.untrusted)) v.notes.push('This host has no /dev/kvm: QEMU emulates the CPU (TCG), so the VM boundary is QEMU\'s emulator rather than hardware virtualisation, and boots are far slower than with KVM.');
  if (input.needsLinuxSyscalls) {
    if (cls === 'wasm') reject('compatibility', 'It needs Linux syscalls, and a wasm module gets only WASI preview 1: no fork/exec, no raw sockets, no full POSIX file system, and an existing Linux binary is not a Wasm module.');
    if (cls === 'container') {
      v.meets.push('It needs Linux syscalls: a container runs Linux binaries directly on the host kernel.');
      v.notes.push('A container here has no capabilities and a RuntimeDefault seccomp filter: mount, ptrace, bpf and raw sockets are refused; a vm allows them inside its own kernel.');
    }
    if (cls === 'vm') v.meets.push('It needs Linux syscalls: a vm runs a whole Linux kernel of its own, so every syscall is there.');
  }
  if (input.untrusted) {
    if (cls === 'wasm') v.meets.push('The code is untrusted: a wasm module reaches only what its spec grants, with no ambient file system, network or clock.');
    if (cls === 'container') v.cautions.push({ severity: 'security', message: 'The code is untrusted, and a container shares the host\'s kernel with it: one kernel exploit crosses namespaces and seccomp; prefer wasm or vm for third-party code.' });
    if (cls === 'vm') v.meets.push('The code is untrusted: a vm keeps it behind a kernel of its own.');
  }
  artifact(cls, input, v);
  if (input.stateful) {
    if (cls === 'wasm') reject('compatibility', 'It keeps state between requests, and a wasm Function is instantiated per request (WAGI): nothing in memory survives from one request to the next.');
    else {
      v.meets.push(`It keeps state between requests: a ${cls} replica is a long-running process that keeps its memory between requests.`);
      v.notes.push(`State lives only as long as a ${cls} replica: its writable layer is its own and is discarded on restart or scale-down; keep durable state outside.`);
    }
  }
  if (input.gpu) {
    if (cls === 'wasm') reject('compatibility', 'It needs a GPU, and WASI preview 1 has no interface to one.');
    if (cls === 'vm') reject('compatibility', 'It needs a GPU, and the microvm machine has no PCI bus to pass one through.');
    if (cls === 'container') v.cautions.push({ severity: 'compatibility', message: 'It needs a GPU: a container can reach one through its device nodes, but Skiff\'s container handlers do not bind devices in yet.' });
  }
  if (input.maxColdStartMs !== undefined) coldStart(cls, input.maxColdStartMs, fact, v);
  if (input.density) density(cls, input, fact, v);
  return v;
}

function artifact(cls: RuntimeClassName, input: AdviseInput, v: Verdict): void {
  if (input.image && !input.module) {
    if (cls === 'wasm') v.rejections.push({ severity: 'compatibility', message: 'The workload is a container image, and wasm runs only Wasm modules.' });
    else v.meets.push(`The workload is a container image, which a ${cls} runs as it is.`);
  }
  if (input.module && !input.image) {
    if (cls === 'wasm') v.meets.push('The workload is a Wasm module, which wasm runs as it is.');
    else v.rejections.push({ severity: 'compatibility', message: `The workload is a Wasm module, and a ${cls} runs OCI images: it would have to be packaged as an image first.` });
  }
}

function coldStart(cls: RuntimeClassName, limit: number, fact: ClassFact, v: Verdict): void {
  const f = fact.coldStartMs;
  const lim = formatMs(limit);
  if (!f) {
    v.uncertain.push(`No cold-start figure for ${cls}: whether it starts within ${lim} is unknown; run npm run bench -- runtime-classes.`);
    return;
  }
  // The published micro-VM figure assumes KVM; under TCG it is only a lower bound.
  const noKvm = cls === 'vm' && f.source === 'published' && fact.acceleration === 'tcg';
  const high = noKvm ? Infinity : f.high;
  const text = `${cls} starts in ${formatFigure(f)}${noKvm ? ', but this host has no /dev/kvm, so a boot here takes longer' : ''}`;
  if (high <= limit) v.meets.push(`Cold start must be within ${lim}: ${text}.`);
  else if (f.low > limit) v.rejections.push({ severity: 'performance', message: `Cold start must be within ${lim}, and ${text}.` });
  else v.uncertain.push(`Cold start must be within ${lim}, and ${text}: only part of that is within the limit; measure it here with npm run bench -- runtime-classes.`);
}

/** densityOf is the replicas per GiB a class reaches: the measured figure, bounded by the memory each replica holds. */
function densityOf(cls: RuntimeClassName, input: AdviseInput, fact: ClassFact): { perGiB: number; text: string } | undefined {
  const reserved = cls === 'wasm' ? undefined : cls === 'vm' ? (input.memoryBytes ?? fact.reservedBytesPerReplica) : input.memoryBytes;
  const bound = reserved ? GIB / reserved : undefined;
  const f = fact.instancesPerGiB;
  const boundText = (n: number) => `${formatCount(n)} per GiB (each replica holds ${formatCount(reserved! / 2 ** 20)} MiB${cls === 'vm' ? ' of guest RAM' : ', its memory limit'})`;
  if (f && (bound === undefined || f.value <= bound)) return { perGiB: f.value, text: formatFigure(f, formatPerGiB) };
  if (bound !== undefined) return { perGiB: bound, text: boundText(bound) };
  return undefined;
}

function density(cls: RuntimeClassName, input: AdviseInput, fact: ClassFact, v: Verdict): void {
  const d = input.density!;
  const needPerGiB = d.per === 'GiB' ? d.replicas : d.replicas / (d.nodeMemoryBytes / GIB);
  const need = d.per === 'GiB' ? `${formatCount(d.replicas)} replicas per GiB` : `${formatCount(d.replicas)} replicas per node (${Number((d.nodeMemoryBytes / GIB).toFixed(1))} GiB here, so ${Number(needPerGiB.toPrecision(3))} per GiB)`;
  const got = densityOf(cls, input, fact);
  if (!got) v.uncertain.push(`The density must reach ${need}, and there is no density figure for ${cls}; run npm run bench -- runtime-classes.`);
  else if (got.perGiB >= needPerGiB) v.meets.push(`The density must reach ${need}: ${cls} fits ${got.text}.`);
  else v.rejections.push({ severity: 'performance', message: `The density must reach ${need}, and ${cls} fits only ${got.text}.` });
}

/** The sort key of a class that fits: available, no security caveat, no other caveat, limits settled, lightest. */
function rankOfFit(v: Verdict, facts: ClassFacts): number[] {
  const cautions = (s: Severity) => v.cautions.filter((c) => c.severity === s).length;
  return [facts[v.cls].available ? 0 : 1, cautions('security'), cautions('compatibility'), v.uncertain.length, RUNTIME_CLASS_NAMES.indexOf(v.cls)];
}

/** The sort key when nothing fits: the least severe worst miss, the fewest misses, then as for a fit. */
function rankOfMiss(v: Verdict, facts: ClassFacts): number[] {
  return [Math.max(0, ...v.rejections.map((r) => SEVERITY_RANK[r.severity])), v.rejections.length, ...rankOfFit(v, facts)];
}

function compare(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

function headline(best: Verdict, fits: Verdict[], all: Verdict[], facts: ClassFacts, input: AdviseInput): string {
  if (!fits.length) {
    const worst = Math.max(...best.rejections.map((r) => SEVERITY_RANK[r.severity]));
    const kind = Object.entries(SEVERITY_RANK).find(([, n]) => n === worst)![0];
    const misses = best.rejections.length === 1 ? `one requirement, a ${kind} one` : `${best.rejections.length} requirements, the worst of them a ${kind} one`;
    return `No class meets every requirement, so this is the least bad choice: ${best.cls} misses ${misses}, where ${all.filter((v) => v !== best).map((v) => `${v.cls} misses ${v.rejections.length} (${[...new Set(v.rejections.map((r) => r.severity))].join(', ')})`).join(' and ')}.`;
  }
  const asked = Object.entries(input).some(([k, val]) => k !== 'chosen' && val !== undefined && val !== false);
  if (fits.length === all.length && !asked) return `Nothing asked rules a class out, so the lightest class this host can run wins: ${best.cls}.`;
  if (fits.length === 1) return `${best.cls} is the only class that meets every requirement.`;
  return `${fits.map((v) => v.cls).join(', ')} meet every requirement; ${best.cls} is preferred because ${preferredBecause(best, fits[1]!, facts)}.`;
}

/** preferredBecause names the first sort key on which `best` beats `other`, as a clause. */
function preferredBecause(best: Verdict, other: Verdict, facts: ClassFacts): string {
  const o = facts[other.cls];
  const a = rankOfFit(best, facts);
  const b = rankOfFit(other, facts);
  if (a[0] !== b[0]) return `${other.cls}'s handler is not available on this host (${o.unavailableReason})`;
  if (a[1] !== b[1] || a[2] !== b[2]) {
    const severity: Severity = a[1] !== b[1] ? 'security' : 'compatibility';
    return `${other.cls} comes with a caveat: ${clause(other.cautions.find((c) => c.severity === severity)!.message)}`;
  }
  if (a[3] !== b[3]) return `${other.cls}'s figures do not settle it: ${clause(other.uncertain[0]!)}`;
  const bs = facts[best.cls].coldStartMs;
  const os = o.coldStartMs;
  const starts = bs && os ? ` (it starts in ${formatFigure(bs)}, ${other.cls} in ${formatFigure(os)})` : '';
  return `it is lighter than ${other.cls}${starts}`;
}

/** clause turns a sentence into a clause that follows a colon. */
function clause(sentence: string): string {
  return sentence.charAt(0).toLowerCase() + sentence.slice(1).replace(/\.$/, '');
}

function whyNot(v: Verdict, best: Verdict, facts: ClassFacts): string {
  return `It fits too, but ${best.cls} is preferred: ${preferredBecause(best, v, facts)}.`;
}

function figuresSentence(cls: RuntimeClassName, f: ClassFact): string {
  const parts = [`cold start ${f.coldStartMs ? formatFigure(f.coldStartMs) : 'not measured'}`];
  parts.push(`density ${f.instancesPerGiB ? formatFigure(f.instancesPerGiB, formatPerGiB) : 'not measured'}`);
  if (f.rps) parts.push(`throughput ${formatFigure(f.rps, (n) => `${formatCount(n)} requests/s`)}`);
  return `Figures for ${cls}: ${parts.join('; ')}.`;
}

function chosenSentence(chosen: string, agrees: boolean, best: Verdict, all: Verdict[], facts: ClassFacts): string {
  if (agrees) return `The manifest's runtimeClassName ${chosen} agrees with this advice.`;
  if (!isRuntimeClassName(chosen)) return `The manifest's runtimeClassName "${chosen}" is not a built-in class (${RUNTIME_CLASS_NAMES.join(', ')}), so advise cannot weigh it; this advice is ${best.cls}.`;
  const v = all.find((x) => x.cls === chosen)!;
  const why = v.rejections.length ? v.rejections.map((r) => r.message).join(' ') : `${preferredBecause(best, v, facts)}.`;
  return `The manifest's runtimeClassName ${chosen} differs from this advice (${best.cls}): ${why}`;
}

export type { ClassFact, ClassFacts, Figure, RuntimeClassName };

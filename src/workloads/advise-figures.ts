/**
 * The figures `advise` reasons with: per runtime class, its cold start, density and throughput, each
 * labelled with where it comes from (measured by the runtime bench on this host, or a published
 * reference figure when nothing was measured here), and whether the class's handler can run here.
 * Pure: the CLI reads the bench file and probes the host, then hands the results to `classFacts`.
 */

/** The runtime classes Skiff has, lightest first (the order `advise` prefers when several fit). */
export const RUNTIME_CLASS_NAMES = ['wasm', 'container', 'vm'] as const;

/** RuntimeClassName is one of Skiff's built-in runtime classes. */
export type RuntimeClassName = (typeof RUNTIME_CLASS_NAMES)[number];

/** isRuntimeClassName says whether a string names one of Skiff's runtime classes. */
export function isRuntimeClassName(s: unknown): s is RuntimeClassName {
  return typeof s === 'string' && (RUNTIME_CLASS_NAMES as readonly string[]).includes(s);
}

/**
 * Figure is one number with its provenance. A measured figure is one value (`low` = `high` = `value`);
 * a published one may be a range (`low`..`high`) or an upper bound (`low` 0).
 */
export interface Figure {
  value: number;
  low: number;
  high: number;
  source: 'measured' | 'published';
  /** Where it comes from, for a person: the bench file and figure name, or the reference quoted. */
  basis: string;
  /** The condition the figure holds under (`with KVM`), when it has one. */
  condition?: string;
}

/** ClassFact is what `advise` knows about one class on this host. */
export interface ClassFact {
  /** The handler that would run it here (`sandbox`, `bwrap`, `runc`, `qemu`). */
  handler: string;
  available: boolean;
  /** Why the handler cannot run here, as what to do (`install bubblewrap`); set when not available. */
  unavailableReason?: string;
  coldStartMs?: Figure;
  instancesPerGiB?: Figure;
  rps?: Figure;
  /** For `vm`: whether QEMU has hardware virtualisation here (`kvm`) or emulates the CPU (`tcg`). */
  acceleration?: 'kvm' | 'tcg';
  /** Memory a replica holds whatever it uses (a VM's guest RAM), in bytes; bounds the density. */
  reservedBytesPerReplica?: number;
}

/** ClassFacts holds the facts of every class. */
export type ClassFacts = Record<RuntimeClassName, ClassFact>;

/** HandlerAvailability is what a host probe (or a handler's own `unavailable()`) says about one class. */
export interface HandlerAvailability {
  handler: string;
  available: boolean;
  reason?: string;
  acceleration?: 'kvm' | 'tcg';
}

const published = (low: number, high: number, value: number, basis: string, condition?: string): Figure => ({ value, low, high, source: 'published', basis, condition });

/**
 * PUBLISHED_COLD_START_MS are the reference figures people quote, used for a class the bench has not
 * measured here: WebAssembly sandboxes under 1 ms, containers 100 ms to 1 s, Firecracker-style
 * micro-VMs about 125 ms with KVM.
 */
export const PUBLISHED_COLD_START_MS: Readonly<Record<RuntimeClassName, Figure>> = {
  wasm: published(0, 1, 1, 'published reference for WebAssembly sandboxes'),
  container: published(100, 1000, 100, 'published reference for containers'),
  vm: published(125, 125, 125, 'published reference for Firecracker-style micro-VMs', 'with KVM'),
};

/** The guest RAM a VM replica gets when its Function sets no memory (the vm handler's default). */
export const DEFAULT_VM_MEMORY_BYTES = 256 * 2 ** 20;

/** BenchReport is the JSON `npm run bench -- runtime-classes --json FILE` writes. */
export interface BenchReport {
  name?: string;
  figures: Record<string, number>;
  peers?: Record<string, Record<string, number>>;
}

/**
 * parseBenchReport checks the shape of a bench JSON document and returns it, or a sentence saying what
 * is wrong with it. Figures that are not finite, non-negative numbers are dropped.
 */
export function parseBenchReport(doc: unknown): BenchReport | string {
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) return 'it is not a JSON object';
  const d = doc as Record<string, unknown>;
  if (!d.figures || typeof d.figures !== 'object' || Array.isArray(d.figures)) return 'it has no "figures" object (expected {"name", "figures": {...}, "peers": {...}})';
  if (d.name !== undefined && d.name !== 'runtime-classes') return `it is the "${String(d.name)}" benchmark's report, not "runtime-classes"`;
  const numbers = (o: unknown): Record<string, number> =>
    Object.fromEntries(Object.entries(o && typeof o === 'object' ? o : {}).filter((e): e is [string, number] => typeof e[1] === 'number' && Number.isFinite(e[1]) && e[1] >= 0));
  const peers = d.peers && typeof d.peers === 'object' ? Object.fromEntries(Object.entries(d.peers).map(([k, v]) => [k, numbers(v)])) : undefined;
  return { name: typeof d.name === 'string' ? d.name : undefined, figures: numbers(d.figures), peers };
}

/** Where each class's figures sit in the bench report: the Skiff figure, then a bare peer's as fallback. */
const BENCH_NAMES: Record<RuntimeClassName, { coldStart: string; density: string; rps: string; peers: string[] }> = {
  wasm: { coldStart: 'wasm_cold_start_ms', density: 'wasm_instances_per_gib', rps: 'wasm_rps', peers: [] },
  container: { coldStart: 'container_cold_start_ms', density: 'container_instances_per_gib', rps: 'container_rps', peers: ['bwrap', 'runc'] },
  vm: { coldStart: 'vm_cold_start_ms', density: 'vm_instances_per_gib', rps: 'vm_rps', peers: ['qemu'] },
};

/**
 * classFacts combines the bench report (or none), the host's handler availability and the published
 * reference figures into the facts `advise` uses. A measured figure always wins over a published one;
 * a bare peer's cold start (bwrap, runc, qemu without Skiff around them) stands in for a class the
 * bench measured only as a peer. `from` names the bench file in each measured figure's basis.
 */
export function classFacts(report: BenchReport | undefined, availability: Record<RuntimeClassName, HandlerAvailability>, from = 'the runtime-classes bench'): ClassFacts {
  const measured = (value: number, what: string): Figure => ({ value, low: value, high: value, source: 'measured', basis: `measured on this host: ${what} in ${from}` });
  const out = {} as ClassFacts;
  for (const cls of RUNTIME_CLASS_NAMES) {
    const names = BENCH_NAMES[cls];
    const fig = report?.figures ?? {};
    const a = availability[cls];
    const fact: ClassFact = { handler: a.handler, available: a.available };
    if (!a.available) fact.unavailableReason = a.reason ?? 'its handler cannot run on this host';
    if (a.acceleration) fact.acceleration = a.acceleration;
    const peer = names.peers.find((p) => report?.peers?.[p]?.cold_start_ms !== undefined);
    if (fig[names.coldStart] !== undefined) fact.coldStartMs = measured(fig[names.coldStart]!, names.coldStart);
    else if (peer) fact.coldStartMs = measured(report!.peers![peer]!.cold_start_ms!, `peers.${peer}.cold_start_ms (a bare ${peer} start, without Skiff)`);
    else fact.coldStartMs = PUBLISHED_COLD_START_MS[cls];
    if (fig[names.density] !== undefined) fact.instancesPerGiB = measured(fig[names.density]!, names.density);
    if (fig[names.rps] !== undefined) fact.rps = measured(fig[names.rps]!, names.rps);
    if (cls === 'vm') fact.reservedBytesPerReplica = DEFAULT_VM_MEMORY_BYTES;
    out[cls] = fact;
  }
  return out;
}

/** formatMs renders milliseconds for a sentence: `0.42 ms`, `180 ms`, `2.3 s`. */
export function formatMs(ms: number): string {
  if (ms >= 1000) return `${trim(ms / 1000)} s`;
  if (ms < 10) return `${trim(ms)} ms`;
  return `${Math.round(ms)} ms`;
}

function trim(n: number): string {
  return n >= 100 ? String(Math.round(n)) : String(Number(n.toPrecision(2)));
}

/** formatPerGiB renders a density: `3,100 per GiB`. */
export function formatPerGiB(n: number): string {
  return `${formatCount(n)} per GiB`;
}

/** formatCount renders a count with thousands separators (`3,100`). */
export function formatCount(n: number): string {
  if (n < 10 && !Number.isInteger(n)) return String(Number(n.toPrecision(2)));
  return Math.round(n).toLocaleString('en-US');
}

/**
 * formatFigure renders a figure with its provenance: `0.8 ms (measured on this host)`,
 * `100 ms–1 s (published reference, not measured here)`; `brief` shortens the provenance for a table.
 */
export function formatFigure(f: Figure, unit: (n: number) => string = formatMs, brief = false): string {
  let v: string;
  if (f.source === 'measured' || f.low === f.high) v = f.source === 'published' ? `about ${unit(f.value)}` : unit(f.value);
  else if (f.low === 0) v = `under ${unit(f.high)}`;
  else v = `${unit(f.low)}–${unit(f.high)}`;
  const cond = f.condition ? ` ${f.condition}` : '';
  if (brief) return `${v}${cond} (${f.source})`;
  return `${v}${cond} (${f.source === 'measured' ? 'measured on this host' : 'published reference, not measured here'})`;
}

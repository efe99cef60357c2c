/**
 * Placement math: which nodes may run a Function's replicas and how many each gets. Pure functions
 * over plain values (no store, no clock of its own), so every rule is unit-tested on its own; the
 * Scheduler feeds them what the informers hold.
 *
 * The shapes are Kubernetes': nodeSelector, affinity.nodeAffinity (required and preferred terms),
 * tolerations against taints (NoSchedule, PreferNoSchedule, NoExecute with tolerationSeconds).
 */

export type TaintEffect = 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';

export interface Taint {
  key: string;
  value?: string;
  effect: TaintEffect;
  timeAdded?: string;
}

export interface Toleration {
  key?: string;
  operator?: 'Exists' | 'Equal';
  value?: string;
  effect?: TaintEffect | '';
  tolerationSeconds?: number;
}

export interface NodeSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist' | 'Gt' | 'Lt';
  values?: string[];
}

export interface NodeSelectorTerm {
  matchExpressions?: NodeSelectorRequirement[];
  matchFields?: NodeSelectorRequirement[];
}

export interface NodeAffinity {
  requiredDuringSchedulingIgnoredDuringExecution?: { nodeSelectorTerms: NodeSelectorTerm[] };
  preferredDuringSchedulingIgnoredDuringExecution?: Array<{ weight: number; preference: NodeSelectorTerm }>;
}

/** What placement needs to know of a Function. */
export interface PlacementRules {
  runtimeClass: string;
  nodeSelector?: Record<string, string>;
  affinity?: { nodeAffinity?: NodeAffinity };
  tolerations?: Toleration[];
  /** Per replica; undefined cpu asks for none. */
  requests: { cpuMillis: number; memoryBytes: number };
}

/** What placement needs to know of a node. */
export interface NodeView {
  name: string;
  labels: Record<string, string>;
  ready: boolean;
  unschedulable: boolean;
  /** Cordoned for a drain: its replicas move elsewhere, new ones first. */
  draining: boolean;
  taints: Taint[];
  runtimeClasses: string[];
  allocatable: { cpuMillis: number; memoryBytes: number };
  /** What the other Functions' replicas placed here request, and how many replicas they are. */
  used: { cpuMillis: number; memoryBytes: number; replicas: number };
}

export interface PlacementEntry {
  nodeName: string;
  replicas: number;
}

export interface PlacementInput {
  rules: PlacementRules;
  desired: number;
  nodes: NodeView[];
  /** The current placement (status.placement). */
  current: PlacementEntry[];
  /** Ready replicas per node as the nodes report them (EndpointSlices): a drain waits for the new ones. */
  readyByNode?: Record<string, number>;
  /** Milliseconds since the epoch, for NoExecute taints' tolerationSeconds. */
  now: number;
}

export interface PlacementResult {
  placement: PlacementEntry[];
  /** Replicas that found no node. */
  unschedulable: number;
  /** kube-scheduler style: "0/3 nodes are available: 1 node(s) ..." when replicas are unschedulable. */
  message?: string;
  /** Replicas taken off nodes, and why (NoExecute taint, drain). */
  evicted: Array<{ nodeName: string; replicas: number; reason: string }>;
  /** When a tolerated NoExecute taint runs out next: come back then. */
  nextEvictionAt?: number;
  /** Replicas still on a draining node, waiting for their replacements to be ready. */
  leaving: number;
}

/** Kubernetes adds these tolerations (300 s) to every Pod that names none for the two node-failure taints. */
export const UNREACHABLE_TAINT = 'node.kubernetes.io/unreachable';
export const NOT_READY_TAINT = 'node.kubernetes.io/not-ready';
export const DEFAULT_TOLERATION_SECONDS = 300;

/** tolerates is Kubernetes' ToleratesTaint. */
export function tolerates(t: Toleration, taint: Taint): boolean {
  if (t.effect && t.effect !== taint.effect) return false;
  const op = t.operator ?? 'Equal';
  if (!t.key) return op === 'Exists';
  if (t.key !== taint.key) return false;
  return op === 'Exists' || (t.value ?? '') === (taint.value ?? '');
}

function tolerationFor(tolerations: Toleration[] | undefined, taint: Taint): Toleration | undefined {
  return (tolerations ?? []).find((t) => tolerates(t, taint));
}

/** matchesRequirement is one node selector requirement against a value map (labels, or fields). */
export function matchesRequirement(r: NodeSelectorRequirement, values: Record<string, string>): boolean {
  const has = Object.prototype.hasOwnProperty.call(values, r.key);
  const v = values[r.key];
  switch (r.operator) {
    case 'In':
      return has && (r.values ?? []).includes(v!);
    case 'NotIn':
      return !has || !(r.values ?? []).includes(v!);
    case 'Exists':
      return has;
    case 'DoesNotExist':
      return !has;
    case 'Gt':
    case 'Lt': {
      if (!has || !/^-?\d+$/.test(v!) || (r.values ?? []).length !== 1 || !/^-?\d+$/.test(r.values![0]!)) return false;
      const a = BigInt(v!);
      const b = BigInt(r.values![0]!);
      return r.operator === 'Gt' ? a > b : a < b;
    }
    default:
      return false;
  }
}

/** matchesTerm: every expression and field requirement holds; an empty term matches nothing, as in Kubernetes. */
export function matchesTerm(term: NodeSelectorTerm, node: Pick<NodeView, 'name' | 'labels'>): boolean {
  const exprs = term.matchExpressions ?? [];
  const fields = term.matchFields ?? [];
  if (exprs.length === 0 && fields.length === 0) return false;
  return exprs.every((r) => matchesRequirement(r, node.labels)) && fields.every((r) => matchesRequirement(r, { 'metadata.name': node.name }));
}

/** matchesNode: nodeSelector and the required node affinity (terms ORed). */
export function matchesNode(rules: Pick<PlacementRules, 'nodeSelector' | 'affinity'>, node: Pick<NodeView, 'name' | 'labels'>): boolean {
  for (const [k, v] of Object.entries(rules.nodeSelector ?? {})) if (node.labels[k] !== v) return false;
  const req = rules.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  if (req && !req.nodeSelectorTerms.some((t) => matchesTerm(t, node))) return false;
  return true;
}

/** preferenceScore sums the weights of the preferred terms the node matches. */
export function preferenceScore(rules: Pick<PlacementRules, 'affinity'>, node: Pick<NodeView, 'name' | 'labels'>): number {
  let s = 0;
  for (const p of rules.affinity?.nodeAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? []) if (matchesTerm(p.preference, node)) s += p.weight;
  return s;
}

const taintText = (t: Taint) => `{${t.key}: ${t.value ?? ''}}`;

/**
 * unfit lists why a node cannot take one more replica (empty: it can), in kube-scheduler's words.
 * `extra` is what this Function already has placed on it.
 */
export function unfit(rules: PlacementRules, node: NodeView, extra: number): string[] {
  const why: string[] = [];
  if (!node.ready) why.push('node(s) were not ready');
  if (node.unschedulable) why.push('node(s) were unschedulable');
  // A NoExecute taint tolerated only for a while would evict the replica again: it keeps new ones off too.
  const untolerated = node.taints.find((t) => {
    if (t.effect !== 'NoSchedule' && t.effect !== 'NoExecute') return false;
    const tol = tolerationFor(rules.tolerations, t);
    return !tol || (t.effect === 'NoExecute' && tol.tolerationSeconds !== undefined);
  });
  if (untolerated) why.push(`node(s) had untolerated taint ${taintText(untolerated)}`);
  if (!node.runtimeClasses.includes(rules.runtimeClass)) why.push(`node(s) did not have runtime class ${rules.runtimeClass}`);
  if (!matchesNode(rules, node)) why.push("node(s) didn't match Function's node affinity/selector");
  const r = rules.requests;
  if (r.cpuMillis > 0 && node.used.cpuMillis + (extra + 1) * r.cpuMillis > node.allocatable.cpuMillis) why.push('Insufficient cpu');
  if (r.memoryBytes > 0 && node.used.memoryBytes + (extra + 1) * r.memoryBytes > node.allocatable.memoryBytes) why.push('Insufficient memory');
  return why;
}

/** failureMessage is kube-scheduler's FailedScheduling text: reasons counted over nodes, sorted. */
export function failureMessage(rules: PlacementRules, nodes: NodeView[], counts: Map<string, number>): string {
  const tally = new Map<string, number>();
  let available = 0;
  for (const n of nodes) {
    const why = unfit(rules, n, counts.get(n.name) ?? 0);
    if (why.length === 0) available++;
    for (const w of why) tally.set(w, (tally.get(w) ?? 0) + 1);
  }
  const parts = [...tally].map(([w, c]) => `${c} ${w}`).sort();
  if (nodes.length === 0) return '0/0 nodes are available: no nodes registered.';
  return `${available}/${nodes.length} nodes are available: ${parts.join(', ')}.`;
}

interface Eviction {
  /** Take the replicas off now. */
  now: boolean;
  reason?: string;
  /** A tolerated NoExecute taint runs out then. */
  at?: number;
}

/** eviction decides whether a node's NoExecute taints (or a drain) take this Function's replicas off it. */
export function eviction(rules: PlacementRules, node: NodeView, now: number): Eviction {
  let at: number | undefined;
  for (const taint of node.taints) {
    if (taint.effect !== 'NoExecute') continue;
    let t = tolerationFor(rules.tolerations, taint);
    // Kubernetes' DefaultTolerationSeconds admission: the node-failure taints are tolerated 300 s unless the Pod says otherwise.
    if (!t && (taint.key === UNREACHABLE_TAINT || taint.key === NOT_READY_TAINT)) t = { key: taint.key, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: DEFAULT_TOLERATION_SECONDS };
    if (!t) return { now: true, reason: `untolerated taint ${taintText(taint)}` };
    if (t.tolerationSeconds === undefined) continue;
    const since = taint.timeAdded ? Date.parse(taint.timeAdded) : NaN;
    const deadline = (Number.isFinite(since) ? since : now) + Math.max(0, t.tolerationSeconds) * 1000;
    if (now >= deadline) return { now: true, reason: `taint ${taintText(taint)} tolerated for ${t.tolerationSeconds}s` };
    at = at === undefined ? deadline : Math.min(at, deadline);
  }
  return { now: false, at };
}

/**
 * place decides how many replicas each node runs. Replicas stay where they are unless their node is
 * gone or evicts them (NoExecute beyond the toleration); a draining node keeps its replicas until as
 * many replicas are ready elsewhere (new ones first). New replicas go to feasible nodes, fewest
 * replicas of this Function first (spread), then fewest untolerated PreferNoSchedule taints, the
 * highest preferred-affinity weight and the least loaded node. Scaling down takes from the nodes
 * with the most replicas of this Function.
 */
export function place(input: PlacementInput): PlacementResult {
  const { rules, nodes, now } = input;
  const desired = Math.max(0, Math.floor(input.desired));
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const counts = new Map<string, number>();
  const evicted: PlacementResult['evicted'] = [];
  let nextEvictionAt: number | undefined;
  const leavingNodes = new Map<string, number>();
  for (const e of input.current) {
    if (e.replicas <= 0) continue;
    const node = byName.get(e.nodeName);
    if (!node) {
      evicted.push({ nodeName: e.nodeName, replicas: e.replicas, reason: 'node is gone' });
      continue;
    }
    const ev = eviction(rules, node, now);
    if (ev.now) {
      evicted.push({ nodeName: e.nodeName, replicas: e.replicas, reason: ev.reason! });
      continue;
    }
    if (ev.at !== undefined) nextEvictionAt = nextEvictionAt === undefined ? ev.at : Math.min(nextEvictionAt, ev.at);
    if (node.draining) leavingNodes.set(node.name, e.replicas);
    else counts.set(node.name, (counts.get(node.name) ?? 0) + e.replicas);
  }
  const total = () => [...counts.values()].reduce((a, b) => a + b, 0);

  // Scale down first: from the nodes with the most replicas, the least preferred among them.
  const order = (a: NodeView, b: NodeView) => {
    const ca = counts.get(a.name) ?? 0;
    const cb = counts.get(b.name) ?? 0;
    if (ca !== cb) return ca - cb;
    const pa = preferNoScheduleCount(rules, a);
    const pb = preferNoScheduleCount(rules, b);
    if (pa !== pb) return pa - pb;
    const wa = preferenceScore(rules, a);
    const wb = preferenceScore(rules, b);
    if (wa !== wb) return wb - wa;
    const la = a.used.replicas + ca;
    const lb = b.used.replicas + cb;
    if (la !== lb) return la - lb;
    return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  };
  while (total() > desired) {
    const holding = nodes.filter((n) => (counts.get(n.name) ?? 0) > 0).sort(order);
    const from = holding[holding.length - 1]!;
    counts.set(from.name, counts.get(from.name)! - 1);
  }

  let unschedulable = 0;
  let message: string | undefined;
  while (total() < desired) {
    const feasible = nodes.filter((n) => unfit(rules, n, counts.get(n.name) ?? 0).length === 0).sort(order);
    const to = feasible[0];
    if (!to) {
      unschedulable = desired - total();
      message = failureMessage(rules, nodes, counts);
      break;
    }
    counts.set(to.name, (counts.get(to.name) ?? 0) + 1);
  }

  // A draining node's replicas go once as many replicas are ready elsewhere, or at once when nothing
  // will ever replace them (scaled to zero).
  let leaving = 0;
  if (leavingNodes.size > 0) {
    const readyElsewhere = [...counts].reduce((sum, [name, c]) => sum + Math.min(c, input.readyByNode?.[name] ?? 0), 0);
    let keep = Math.max(0, desired - readyElsewhere);
    for (const [name, n] of [...leavingNodes].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      const k = Math.min(n, keep);
      keep -= k;
      if (k > 0) counts.set(name, k);
      if (n - k > 0) evicted.push({ nodeName: name, replicas: n - k, reason: 'node is draining' });
      leaving += k;
    }
  }

  const placement = [...counts]
    .filter(([, c]) => c > 0)
    .map(([nodeName, replicas]) => ({ nodeName, replicas }))
    .sort((a, b) => (a.nodeName < b.nodeName ? -1 : a.nodeName > b.nodeName ? 1 : 0));
  return { placement, unschedulable, ...(message ? { message } : {}), evicted, ...(nextEvictionAt !== undefined ? { nextEvictionAt } : {}), leaving };
}

function preferNoScheduleCount(rules: PlacementRules, node: NodeView): number {
  return node.taints.filter((t) => t.effect === 'PreferNoSchedule' && !tolerationFor(rules.tolerations, t)).length;
}

/** eligibleForWasm: a Wasm Function is loaded on a node its nodeSelector and required affinity match. */
export function eligibleForWasm(rules: Pick<PlacementRules, 'nodeSelector' | 'affinity'>, node: Pick<NodeView, 'name' | 'labels'>): boolean {
  return matchesNode(rules, node);
}

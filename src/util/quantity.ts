const BINARY: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 };
const DECIMAL: Record<string, number> = { k: 1e3, M: 1e6, G: 1e9, T: 1e12 };

/** parseBytes reads a Kubernetes-style quantity ("64Mi", "1G", "4096") into bytes, or undefined if malformed. */
export function parseBytes(q: string | number): number | undefined {
  if (typeof q === 'number') return Number.isFinite(q) && q >= 0 ? Math.floor(q) : undefined;
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(q.trim());
  if (!m) return undefined;
  const mult = m[2] ? (BINARY[m[2]] ?? DECIMAL[m[2]]!) : 1;
  return Math.floor(Number(m[1]) * mult);
}

/** parseDurationMs reads "250ms", "5s", "2m", "1h", "1m30s" or a bare number of milliseconds. */
export function parseDurationMs(d: string | number): number | undefined {
  if (typeof d === 'number') return Number.isFinite(d) && d >= 0 ? d : undefined;
  const s = d.trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s);
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  let m: RegExpExecArray | null;
  let consumed = 0;
  while ((m = re.exec(s))) {
    total += Number(m[1]) * unit[m[2]!]!;
    consumed = re.lastIndex;
  }
  return consumed === s.length && s.length > 0 ? total : undefined;
}

/** formatAge renders an age the way kubectl does: 45s, 3m, 5h, 2d. */
export function formatAge(since: string | undefined, now = Date.now()): string {
  if (!since) return '<unknown>';
  const s = Math.max(0, Math.floor((now - Date.parse(since)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 120 * 60) return `${Math.floor(s / 60)}m`;
  if (s < 48 * 3600) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

const QUANTITY = /^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(?:([KMGTPE]i)|([numkMGTPE])|[eE]([+-]?\d+))?$/;
const BINARY_SUFFIX: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };
const DECIMAL_SUFFIX: Record<string, number> = { n: 1e-9, u: 1e-6, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };

/**
 * parseQuantity reads a Kubernetes resource quantity (`100m`, `1.5`, `2Gi`, `5e3`, or a JSON number)
 * into a number, or undefined when it is not one. Doubles are precise enough for what Skiff compares
 * quantities for (metric targets), so the arbitrary-precision form Kubernetes keeps is not needed.
 */
export function parseQuantity(q: string | number): number | undefined {
  if (typeof q === 'number') return Number.isFinite(q) ? q : undefined;
  const m = QUANTITY.exec(q);
  if (!m) return undefined;
  const base = Number(m[1]);
  const mult = m[2] ? BINARY_SUFFIX[m[2]]! : m[3] ? DECIMAL_SUFFIX[m[3]]! : m[4] !== undefined ? 10 ** Number(m[4]) : 1;
  const v = base * mult;
  return Number.isFinite(v) ? v : undefined;
}

/** One media range of an Accept header: type, parameters (keys lower-cased, quotes removed), weight. */
export interface MediaRange {
  type: string;
  params: Map<string, string>;
  q: number;
  order: number;
}

/**
 * acceptedRanges reads an Accept header into the ranges a client will take (`q` above 0), most wanted
 * first: by weight, then in the order given, as kube-apiserver ranks them. Each endpoint then picks the
 * first range it can serve.
 */
export function acceptedRanges(header: string): MediaRange[] {
  const out: MediaRange[] = [];
  header.split(',').forEach((part, order) => {
    const [type, ...rawParams] = part.split(';').map((s) => s.trim());
    if (!type) return;
    const params = new Map<string, string>();
    let q = 1;
    for (const p of rawParams) {
      const eq = p.indexOf('=');
      if (eq < 0) continue;
      const key = p.slice(0, eq).trim().toLowerCase();
      const value = p.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1');
      if (key === 'q') q = Number.isFinite(Number(value)) ? Number(value) : 0;
      else params.set(key, value);
    }
    if (q > 0) out.push({ type: type.toLowerCase(), params, q, order });
  });
  return out.sort((a, b) => b.q - a.q || a.order - b.order);
}

/** isJsonRange: the range admits plain JSON (`application/json`, `application/*`, `*\/*`). */
export function isJsonRange(r: MediaRange): boolean {
  return r.type === 'application/json' || r.type === 'application/*' || r.type === '*/*';
}

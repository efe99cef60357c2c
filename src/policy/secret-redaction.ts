/**
 * Secret values never reach the decision log: an admission review of a core/v1 Secret carries its
 * `data` and `stringData` (and kubectl's last-applied annotation repeats them), and every constraint
 * evaluation of that review would otherwise write them to disk in plain sight.
 */

/** What a redacted field is replaced by (the decision log's mask uses the same word). */
export const REDACTED = '**REDACTED**';

/** The annotation kubectl apply keeps: a Secret's whole manifest, values included. */
const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';
/** Where the Secret sits in an input: `review` (Gatekeeper), `request` (an AdmissionReview, as OPA policies read it). */
const REVIEW_KEYS = ['review', 'request'] as const;
const OBJECT_KEYS = ['object', 'oldObject'] as const;
const VALUE_FIELDS = ['data', 'stringData'] as const;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

/** isSecret tells whether `obj` (or, for a review without one, the review's kind) is a core/v1 Secret. */
function isSecret(review: Obj, obj: Obj): boolean {
  if (obj.kind === 'Secret' && obj.apiVersion === 'v1') return true;
  const gvk = review.kind;
  return isObj(gvk) && gvk.kind === 'Secret' && (gvk.group ?? '') === '' && obj.apiVersion === undefined;
}

/** valuesOf collects the strings of a Secret's data (as written and base64-decoded) and stringData. */
function valuesOf(obj: Obj, into: Set<string>): void {
  for (const field of VALUE_FIELDS) {
    const m = obj[field];
    if (!isObj(m)) continue;
    for (const v of Object.values(m)) {
      if (typeof v !== 'string' || !v) continue;
      into.add(v);
      if (field === 'data') {
        const decoded = Buffer.from(v, 'base64').toString('utf8');
        if (decoded && !decoded.includes('\uFFFD')) into.add(decoded);
      }
    }
  }
}

/**
 * redactSecrets returns `input` with every Secret in an admission review stripped of its values:
 * `data`, `stringData` and the last-applied annotation of `object` and `oldObject` become
 * "**REDACTED**" (listed in `erased` as the mask lists its paths), and `values` holds the values
 * removed so the caller can scrub them from anything else it writes (a violation message that quotes
 * one). The input is returned untouched, not copied, when it holds no Secret.
 */
export function redactSecrets(input: unknown): { input: unknown; erased: string[]; values: string[] } {
  const none = { input, erased: [], values: [] };
  if (!isObj(input)) return none;
  let copy: Obj | undefined;
  const erased: string[] = [];
  const values = new Set<string>();
  for (const rk of REVIEW_KEYS) {
    const review = input[rk];
    if (!isObj(review)) continue;
    for (const ok of OBJECT_KEYS) {
      const obj = review[ok];
      if (!isObj(obj) || !isSecret(review, obj)) continue;
      copy ??= structuredClone(input);
      const target = (copy[rk] as Obj)[ok] as Obj;
      valuesOf(target, values);
      for (const field of VALUE_FIELDS) {
        if (!(field in target)) continue;
        target[field] = REDACTED;
        erased.push(`/input/${rk}/${ok}/${field}`);
      }
      const annotations = isObj(target.metadata) ? target.metadata.annotations : undefined;
      if (isObj(annotations) && typeof annotations[LAST_APPLIED] === 'string') {
        try {
          const applied: unknown = JSON.parse(annotations[LAST_APPLIED]);
          if (isObj(applied)) valuesOf(applied, values);
        } catch {
          // not JSON: redacted all the same
        }
        annotations[LAST_APPLIED] = REDACTED;
        erased.push(`/input/${rk}/${ok}/metadata/annotations/${LAST_APPLIED.replace(/~/g, '~0').replace(/\//g, '~1')}`);
      }
    }
  }
  if (!copy) return none;
  // longest first, so a value that contains a shorter one is removed whole
  const sorted = [...values].sort((a, b) => b.length - a.length);
  return { input: scrub(copy, sorted), erased, values: sorted };
}

/** scrub replaces every occurrence of each value inside the strings of `v` (keys included) with "**REDACTED**". */
export function scrub(v: unknown, values: string[]): unknown {
  if (!values.length) return v;
  if (typeof v === 'string') {
    let s = v;
    for (const x of values) if (s.includes(x)) s = s.split(x).join(REDACTED);
    return s;
  }
  if (Array.isArray(v)) return v.map((x) => scrub(x, values));
  if (isObj(v)) {
    const out: Obj = {};
    for (const [k, x] of Object.entries(v)) out[scrub(k, values) as string] = scrub(x, values);
    return out;
  }
  return v;
}

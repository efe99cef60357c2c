import { maskInput, redactSecrets, scrub } from '../policy/index.js';

/** DecisionSource says who decided: the gateway's authz filter over a Policy, or admission over constraints. */
export type DecisionSource = 'authz' | 'admission';

/** DecisionEvent is what a decision point reports; the input is kept as given and masked when read. */
export interface DecisionEvent {
  source: DecisionSource;
  /** The rule (`data.http.authz.allow`) or, for admission, the object reviewed (`Function default/hello`). */
  policy: string;
  allowed: boolean;
  input: unknown;
  /** Why it was refused: the denials of admission, an evaluation error. */
  messages?: string[];
  durationUs?: number;
}

/** RecentDecision is a DecisionEvent as the dashboard shows it: numbered, timed, its input masked. */
export interface RecentDecision {
  id: number;
  time: string;
  source: DecisionSource;
  policy: string;
  allowed: boolean;
  input: unknown;
  messages: string[];
  durationUs?: number;
  /** Input paths that were masked. */
  erased: string[];
}

/**
 * Headers of a gateway request that carry credentials: masked in what the dashboard shows, as the
 * decision log's `--decision-log-mask` would.
 */
const CREDENTIAL_PATHS = ['authorization', 'proxy-authorization', 'cookie', 'x-api-key'].map((h) => `attributes/request/http/headers/${h}`);

interface Stored {
  id: number;
  at: number;
  event: DecisionEvent;
}

/**
 * DecisionRing keeps the last decisions in memory for the dashboard, whether or not a decision log is
 * written. Recording is an array store (it runs on the request path); masking and copying happen when
 * a page reads them.
 */
export class DecisionRing {
  private readonly slots: (Stored | undefined)[];
  private next = 0;
  private seq = 0;
  private readonly listeners = new Set<(d: RecentDecision) => void>();

  constructor(readonly capacity = 200) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`DecisionRing capacity must be a positive integer, not ${capacity}`);
    this.slots = new Array<Stored | undefined>(capacity);
  }

  /** record keeps one decision, replacing the oldest when full, and tells live listeners. */
  readonly record = (event: DecisionEvent): void => {
    const s: Stored = { id: ++this.seq, at: Date.now(), event };
    this.slots[this.next] = s;
    this.next = (this.next + 1) % this.capacity;
    if (this.listeners.size) {
      const shown = present(s);
      for (const fn of this.listeners) fn(shown);
    }
  };

  /** fromAuthorizer records a gateway authorization decision (the policy controller's `onDecision`). */
  readonly fromAuthorizer = (d: { policy: string; input: object; allowed: boolean; durationUs: number; error?: string }): void =>
    this.record({ source: 'authz', policy: d.policy, allowed: d.allowed, input: d.input, durationUs: d.durationUs, ...(d.error ? { messages: [d.error] } : {}) });

  /** fromAdmission records an admission violation (the admission platform's `onReview`); the policy names the object and the constraints. */
  readonly fromAdmission = (r: { review: { kind: { kind: string }; namespace?: string; name?: string; operation?: string }; allowed: boolean; denials: { policy: string; message: string }[]; warnings: string[] }): void => {
    // Admission sees every write, controllers' included: only violations (denials and warnings) are worth showing.
    if (r.allowed && !r.warnings.length) return;
    const obj = `${r.review.kind.kind} ${r.review.namespace ? `${r.review.namespace}/` : ''}${r.review.name ?? ''}`;
    this.record({ source: 'admission', policy: r.denials.length ? `${obj} (${r.denials.map((d) => d.policy).join(', ')})` : obj, allowed: r.allowed, input: { review: r.review }, messages: [...r.denials.map((d) => d.message), ...r.warnings.map((w) => `warning: ${w}`)] });
  };

  /** recent returns the kept decisions, newest first, masked; `after` keeps only those with a larger id. */
  recent(after = 0): RecentDecision[] {
    const out: RecentDecision[] = [];
    for (let k = 1; k <= this.capacity; k++) {
      const s = this.slots[(this.next - k + this.capacity) % this.capacity];
      if (!s || s.id <= after) break;
      out.push(present(s));
    }
    return out;
  }

  /** onDecision registers a live listener; the returned function removes it. */
  onDecision(fn: (d: RecentDecision) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
}

/** present masks a decision's input the way the decision log does: Secret values, then credential headers. */
function present(s: Stored): RecentDecision {
  const e = s.event;
  const secrets = redactSecrets(e.input);
  const masked = e.source === 'authz' ? maskInput(secrets.input, CREDENTIAL_PATHS) : { input: secrets.input, erased: [] };
  const messages = (e.messages ?? []).map((m) => (secrets.values.length ? String(scrub(m, secrets.values)) : m));
  return {
    id: s.id,
    time: new Date(s.at).toISOString(),
    source: e.source,
    policy: e.policy,
    allowed: e.allowed,
    input: masked.input,
    messages,
    ...(e.durationUs !== undefined ? { durationUs: e.durationUs } : {}),
    erased: [...secrets.erased, ...masked.erased],
  };
}

import { useEffect, useState } from 'preact/hooks';

import { type Api, type Obj } from './api';

/** A Function's scaling in one interval: [key, desired, ready, panic (0/1), cold starts, forecast rate]. */
export type ReplicaPoint = [string, number, number, 0 | 1, number, number | null];

/** One fine interval from the server: [key, rps, errorRate, p50Ms, p99Ms] for each series with traffic. */
export interface Tick {
  t: number;
  points: [string, number, number, number | null, number | null][];
  /** Every Function the autoscaler reports, when the server has one wired in. */
  replicas?: ReplicaPoint[];
}

export interface RecentDecision {
  id: number;
  time: string;
  source: 'authz' | 'admission';
  policy: string;
  allowed: boolean;
  input: unknown;
  messages: string[];
  durationUs?: number;
  erased: string[];
}

/**
 * Live holds the page's one stream of server-sent events (samples and decisions) and hands each event
 * to whichever views listen; it reconnects after a pause when the stream ends.
 */
export class Live {
  private readonly ticks = new Set<(t: Tick) => void>();
  private readonly decisions = new Set<(d: RecentDecision) => void>();
  private readonly changes = new Set<(changed: Set<string> | 'all') => void>();
  private readonly abort = new AbortController();
  connected = false;
  /** The latest rate per series key, for the overview. */
  readonly latest = new Map<string, Tick['points'][number]>();
  lastTick = 0;

  constructor(private readonly api: Api) {}

  start(): void {
    void this.loop();
  }

  stop(): void {
    this.abort.abort();
  }

  onTick(fn: (t: Tick) => void): () => void {
    this.ticks.add(fn);
    return () => this.ticks.delete(fn);
  }

  onDecision(fn: (d: RecentDecision) => void): () => void {
    this.decisions.add(fn);
    return () => this.decisions.delete(fn);
  }

  /** onChange is told the collections (`PLURAL.GROUP`) that changed, or 'all' after the stream (re)connects. */
  onChange(fn: (changed: Set<string> | 'all') => void): () => void {
    this.changes.add(fn);
    return () => this.changes.delete(fn);
  }

  private async loop(): Promise<void> {
    // `/ui/?interval=MS` asks the server for ticks at that rate (100 ms to 10 s) instead of each second.
    const interval = new URLSearchParams(location.search).get('interval');
    const path = interval ? `/ui/api/stream?interval=${encodeURIComponent(interval)}` : '/ui/api/stream';
    while (!this.abort.signal.aborted) {
      try {
        await this.api.events(path, this.abort.signal, (event, data) => {
          if (!this.connected) {
            this.connected = true;
            // Whatever changed while the stream was down is read again.
            for (const fn of this.changes) fn('all');
          }
          if (event === 'changes') {
            const changed = new Set((JSON.parse(data) as { changed: string[] }).changed);
            for (const fn of this.changes) fn(changed);
          } else if (event === 'tick') {
            const t = JSON.parse(data) as Tick;
            this.lastTick = t.t;
            this.latest.clear();
            for (const p of t.points) this.latest.set(p[0], p);
            for (const fn of this.ticks) fn(t);
          } else if (event === 'decision') {
            const d = JSON.parse(data) as RecentDecision;
            for (const fn of this.decisions) fn(d);
          }
        });
      } catch {
        // the stream failed; try again below
      }
      this.connected = false;
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
}

/**
 * useLiveList lists a collection and lists it again whenever the page's event stream says the kind
 * changed (`ref` is `PLURAL.GROUP`, or `PLURAL` for core kinds). The API's own watch would hold one
 * connection per list, and a browser has only six per host for all its tabs.
 */
export function useLiveList(api: Api, live: Live, ref: string, path: string | undefined, fieldSelector?: string): { items: Obj[]; error?: string; loaded: boolean } {
  const [state, setState] = useState<{ items: Obj[]; error?: string; loaded: boolean }>({ items: [], loaded: false });
  useEffect(() => {
    if (!path) return;
    let gone = false;
    let busy = false;
    let again = false;
    setState({ items: [], loaded: false });
    const url = fieldSelector ? `${path}?fieldSelector=${encodeURIComponent(fieldSelector)}` : path;
    const load = () => {
      if (busy) return void (again = true);
      busy = true;
      api
        .json<{ items: Obj[] }>(url)
        .then(
          (list) => !gone && setState({ items: list.items.sort((a, b) => a.metadata.name.localeCompare(b.metadata.name)), loaded: true }),
          (err: Error) => !gone && setState((s) => ({ ...s, error: err.message, loaded: true })),
        )
        .finally(() => {
          busy = false;
          // Changes that came in during the read are read once more, not once each.
          if (again && !gone) {
            again = false;
            load();
          }
        });
    };
    load();
    const off = live.onChange((changed) => (changed === 'all' || changed.has(ref)) && load());
    return () => {
      gone = true;
      off();
    };
  }, [api, live, ref, path, fieldSelector]);
  return state;
}

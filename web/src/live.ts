import { useEffect, useState } from 'preact/hooks';

import { type Api, type Obj } from './api';

/** One fine interval from the server: [key, rps, errorRate, p50Ms, p99Ms] for each series with traffic. */
export interface Tick {
  t: number;
  points: [string, number, number, number | null, number | null][];
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

  private async loop(): Promise<void> {
    while (!this.abort.signal.aborted) {
      try {
        await this.api.events('/ui/api/stream', this.abort.signal, (event, data) => {
          this.connected = true;
          if (event === 'tick') {
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

interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: Obj;
}

/**
 * useWatchList lists a collection and keeps it current with the API's watch (`?watch=true`), starting
 * again from a fresh list when the watch ends.
 */
export function useWatchList(api: Api, path: string | undefined, fieldSelector?: string): { items: Obj[]; error?: string; loaded: boolean } {
  const [state, setState] = useState<{ items: Obj[]; error?: string; loaded: boolean }>({ items: [], loaded: false });
  useEffect(() => {
    if (!path) return;
    const abort = new AbortController();
    setState({ items: [], loaded: false });
    const sel = fieldSelector ? `fieldSelector=${encodeURIComponent(fieldSelector)}&` : '';
    void (async () => {
      while (!abort.signal.aborted) {
        try {
          const list = await api.json<{ items: Obj[]; metadata: { resourceVersion: string } }>(`${path}?${sel}`);
          const byUid = new Map<string, Obj>(list.items.map((o) => [o.metadata.uid ?? o.metadata.name, o]));
          const publish = () => setState({ items: [...byUid.values()].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name)), loaded: true });
          publish();
          await api.lines(`${path}?${sel}watch=true&resourceVersion=${list.metadata.resourceVersion}`, abort.signal, (line) => {
            const e = JSON.parse(line) as WatchEvent;
            if (e.type === 'ADDED' || e.type === 'MODIFIED') byUid.set(e.object.metadata.uid ?? e.object.metadata.name, e.object);
            else if (e.type === 'DELETED') byUid.delete(e.object.metadata.uid ?? e.object.metadata.name);
            else return;
            publish();
          });
        } catch (err) {
          if (abort.signal.aborted) return;
          setState((s) => ({ ...s, error: (err as Error).message, loaded: true }));
        }
        await new Promise((r) => setTimeout(r, 1000));
      }
    })();
    return () => abort.abort();
  }, [api, path, fieldSelector]);
  return state;
}

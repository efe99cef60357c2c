/** The token is kept for the browser tab only (sessionStorage), never in the URL or in localStorage. */
const TOKEN_KEY = 'skiff.token';

export function readToken(): string | null {
  // `#token=...` lets `skiff up`'s link or a script log in; it is removed from the address at once.
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]!));
    history.replaceState(null, '', location.pathname + location.search + '#/overview');
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

export function saveToken(token: string): void {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function forgetToken(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** UnauthorizedError: the server refused the token; the page asks for another. */
export class UnauthorizedError extends Error {
  readonly code = 'unauthorized';
}

export type Obj = {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; uid?: string; resourceVersion?: string; creationTimestamp?: string; generation?: number };
  spec?: Record<string, unknown>;
  status?: { conditions?: Condition[] } & Record<string, unknown>;
  [k: string]: unknown;
};

export interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
}

/** Api calls the server with the token; every request of the page goes through it. */
export class Api {
  constructor(
    readonly token: string,
    private readonly onUnauthorized: () => void,
  ) {}

  async fetch(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${this.token}`);
    if (!headers.has('accept')) headers.set('accept', 'application/json');
    const res = await fetch(path, { ...init, headers });
    if (res.status === 401) {
      this.onUnauthorized();
      throw new UnauthorizedError('the server refused the token');
    }
    if (!res.ok) {
      let msg = `${res.status} ${res.statusText}`;
      try {
        const st = (await res.json()) as { message?: string };
        if (st.message) msg = st.message;
      } catch {
        // not a Status
      }
      throw new Error(msg);
    }
    return res;
  }

  async json<T>(path: string): Promise<T> {
    return (await (await this.fetch(path)).json()) as T;
  }

  /** lines reads a streamed answer line by line (watches, logs) until it ends or `signal` aborts. */
  async lines(path: string, signal: AbortSignal, onLine: (line: string) => void): Promise<void> {
    const res = await this.fetch(path, { signal });
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line) onLine(line);
      }
    }
    if (buf) onLine(buf);
  }

  /**
   * events reads server-sent events with fetch, since EventSource cannot send the Authorization header.
   */
  async events(path: string, signal: AbortSignal, onEvent: (event: string, data: string) => void): Promise<void> {
    const res = await this.fetch(path, { signal, headers: { accept: 'text/event-stream' } });
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value;
      let end: number;
      while ((end = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        let event = 'message';
        const data: string[] = [];
        for (const l of block.split('\n')) {
          if (l.startsWith('event: ')) event = l.slice(7);
          else if (l.startsWith('data: ')) data.push(l.slice(6));
        }
        if (data.length) onEvent(event, data.join('\n'));
      }
    }
  }
}

/** A kind the API serves, from discovery. */
export interface KindInfo {
  group: string;
  version: string;
  plural: string;
  kind: string;
  namespaced: boolean;
}

export function collectionPath(k: KindInfo, ns?: string): string {
  const base = k.group ? `/apis/${k.group}/${k.version}` : `/api/${k.version}`;
  return k.namespaced && ns ? `${base}/namespaces/${encodeURIComponent(ns)}/${k.plural}` : `${base}/${k.plural}`;
}

export function objectPath(k: KindInfo, ns: string | undefined, name: string): string {
  return `${collectionPath(k, ns)}/${encodeURIComponent(name)}`;
}

/** discoverKinds lists every listable kind the API serves (core v1 and each group's preferred version). */
export async function discoverKinds(api: Api): Promise<KindInfo[]> {
  type ResourceList = { resources: { name: string; kind: string; namespaced: boolean; verbs?: string[] }[] };
  const groups = await api.json<{ groups: { name: string; preferredVersion: { version: string } }[] }>('/apis');
  const lists: [string, string, Promise<ResourceList>][] = [['', 'v1', api.json<ResourceList>('/api/v1')]];
  for (const g of groups.groups) lists.push([g.name, g.preferredVersion.version, api.json<ResourceList>(`/apis/${g.name}/${g.preferredVersion.version}`)]);
  const out: KindInfo[] = [];
  for (const [group, version, p] of lists) {
    const list = await p.catch(() => ({ resources: [] }) as ResourceList);
    for (const r of list.resources) {
      if (r.name.includes('/') || (r.verbs && !r.verbs.includes('list'))) continue;
      out.push({ group, version, plural: r.name, kind: r.kind, namespaced: r.namespaced });
    }
  }
  return out;
}

export function ready(o: Obj): Condition | undefined {
  return o.status?.conditions?.find((c) => c.type === 'Ready');
}

export function fullName(o: Obj): string {
  return o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name;
}

import { Agent, request } from 'node:http';

/** A Kubernetes-style object as the bench writes it. */
export interface BenchObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [k: string]: unknown };
  spec?: Record<string, unknown>;
  [k: string]: unknown;
}

/** An object read back, with its status. */
export interface ReadObject extends BenchObject {
  status?: Record<string, any>;
}

const PLURALS: Record<string, { group: string; plural: string; namespaced: boolean }> = {
  Function: { group: 'skiff.dev/v1', plural: 'functions', namespaced: true },
  Route: { group: 'skiff.dev/v1', plural: 'routes', namespaced: true },
  RuntimeClass: { group: 'node.k8s.io/v1', plural: 'runtimeclasses', namespaced: false },
  HorizontalPodAutoscaler: { group: 'autoscaling/v2', plural: 'horizontalpodautoscalers', namespaced: true },
  Service: { group: 'skiff.dev/v1', plural: 'services', namespaced: true },
  GitRepository: { group: 'skiff.dev/v1', plural: 'gitrepositories', namespaced: true },
  Sync: { group: 'skiff.dev/v1', plural: 'syncs', namespaced: true },
  Rollout: { group: 'skiff.dev/v1', plural: 'rollouts', namespaced: true },
};

/** SkiffApi is the little of Skiff's resource API a bench needs: server-side apply, get, delete, wait. */
export class SkiffApi {
  /** Objects applied and not deleted yet, as [kind, name]. */
  private readonly applied = new Map<string, [string, string]>();

  constructor(private readonly base: string, private readonly token: string) {}

  private path(kind: string, name: string, namespace = 'default'): string {
    const k = PLURALS[kind];
    if (!k) throw new Error(`the bench does not know kind ${kind}`);
    return `${this.base}/apis/${k.group}/${k.namespaced ? `namespaces/${namespace}/` : ''}${k.plural}/${name}`;
  }

  private async call(method: string, url: string, body?: unknown): Promise<{ status: number; json: any }> {
    const res = await fetch(url, {
      method,
      headers: { authorization: `Bearer ${this.token}`, ...(body ? { 'content-type': 'application/apply-patch+yaml' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : undefined };
  }

  /** apply creates or updates an object by server-side apply (field manager `bench`). */
  async apply(obj: BenchObject): Promise<ReadObject> {
    const r = await this.call('PATCH', `${this.path(obj.kind, obj.metadata.name, obj.metadata.namespace)}?fieldManager=bench&force=true`, obj);
    if (r.status >= 300) throw new Error(`apply ${obj.kind} ${obj.metadata.name}: ${r.status} ${JSON.stringify(r.json)}`);
    this.applied.set(`${obj.kind}/${obj.metadata.name}`, [obj.kind, obj.metadata.name]);
    return r.json as ReadObject;
  }

  async get(kind: string, name: string): Promise<ReadObject | undefined> {
    const r = await this.call('GET', this.path(kind, name));
    if (r.status === 404) return undefined;
    if (r.status >= 300) throw new Error(`get ${kind} ${name}: ${r.status} ${JSON.stringify(r.json)}`);
    return r.json as ReadObject;
  }

  async delete(kind: string, name: string): Promise<void> {
    const r = await this.call('DELETE', this.path(kind, name));
    if (r.status >= 300 && r.status !== 404) throw new Error(`delete ${kind} ${name}: ${r.status} ${JSON.stringify(r.json)}`);
    this.applied.delete(`${kind}/${name}`);
  }

  /** deleteAll deletes every object this client applied and has not deleted, Functions first. */
  async deleteAll(): Promise<void> {
    const objs = [...this.applied.values()].sort((a, b) => Number(b[0] === 'Function') - Number(a[0] === 'Function'));
    for (const [kind, name] of objs) await this.delete(kind, name);
  }

  /**
   * waitFor polls an object until `test` returns a value other than undefined and returns it; after
   * `timeoutMs` it throws with `what` and the object's last status.
   */
  async waitFor<T>(kind: string, name: string, what: string, test: (o: ReadObject | undefined) => T | undefined, timeoutMs = 60_000, everyMs = 50): Promise<T> {
    const until = Date.now() + timeoutMs;
    let last: ReadObject | undefined;
    for (;;) {
      last = await this.get(kind, name);
      const v = test(last);
      if (v !== undefined) return v;
      if (Date.now() > until) throw new Error(`${kind} ${name}: not ${what} after ${timeoutMs / 1000}s; status ${JSON.stringify(last?.status ?? null)}`);
      await new Promise((r) => setTimeout(r, everyMs));
    }
  }
}

/** readyCondition is an object's Ready condition, if it has one. */
export function readyCondition(o: ReadObject | undefined): { status: string; reason?: string; message?: string } | undefined {
  return (o?.status?.conditions as Array<{ type: string; status: string; reason?: string; message?: string }> | undefined)?.find((c) => c.type === 'Ready');
}

/** TimedAnswer is one request's time to the first byte of the answer, with the whole answer. */
export interface TimedAnswer {
  ttfbMs: number;
  status: number;
  body: string;
}

/**
 * timedGet sends one GET on a new connection (no keep-alive pool: a client's first request) and
 * measures the time until the answer's status line and headers arrive: the first byte.
 */
export function timedGet(url: string, timeoutMs = 90_000): Promise<TimedAnswer> {
  if (!/^http:\/\/(127\.|\[::1\]|localhost)/.test(url)) throw new Error(`benchmarks only target loopback, not ${url}`);
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = request(url, { agent: false, timeout: timeoutMs, headers: { connection: 'close' } }, (res) => {
      const ttfbMs = performance.now() - t0;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ ttfbMs, status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * keepAliveStalls keeps `connections` keep-alive connections busy for `durationMs`, one GET after
 * another on each, and counts the connections on which an answer did not complete within `timeoutMs`
 * (such a connection is dropped and sends no more). wrk cannot show this: a request that never ends
 * is neither a latency sample nor, when it outlives the run, a timeout.
 */
export async function keepAliveStalls(url: string, connections = 8, durationMs = 2_000, timeoutMs = 2_000): Promise<number> {
  if (!/^http:\/\/(127\.|\[::1\]|localhost)/.test(url)) throw new Error(`benchmarks only target loopback, not ${url}`);
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const end = performance.now() + durationMs;
  let stalls = 0;
  const one = async () => {
    while (performance.now() < end) {
      const ok = await new Promise<boolean>((resolve) => {
        const req = request(url, { agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(true));
          res.on('error', () => resolve(false));
        });
        req.setTimeout(timeoutMs, () => req.destroy(new Error('stalled')));
        req.on('error', () => resolve(false));
        req.end();
      });
      if (!ok) {
        stalls++;
        return;
      }
    }
  };
  await Promise.all(Array.from({ length: connections }, one));
  agent.destroy();
  return stalls;
}

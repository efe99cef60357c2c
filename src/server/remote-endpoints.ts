import { ENDPOINT_SLICE_FUNCTION_LABEL, ENDPOINT_SLICE_NODE_LABEL } from '../api/kinds/endpoint-slice.js';
import type { ResourceObject } from '../api/kinds/types.js';
import type { Informer } from '../controllers/runtime/index.js';
import type { NodeEndpoint, RemoteFunctions } from '../gateway/index.js';

interface SliceEndpoint {
  addresses?: string[];
  conditions?: { ready?: boolean; terminating?: boolean };
}

interface SliceBody {
  endpoints?: SliceEndpoint[];
  ports?: Array<{ name?: string; port?: number }>;
}

/**
 * RemoteEndpointFeed tells the gateway which other nodes serve each Function: it watches the
 * EndpointSlices every node writes for the Functions it runs and the Nodes, and hands the gateway's
 * RemoteFunctions, per Function, the other nodes with ready replicas (their mesh address and port
 * from the slice, weighted by ready endpoints). This node's own slices are left out: its replicas
 * are local. A node whose Ready condition is False or Unknown is left out too; until its heartbeat
 * expires, outlier detection in the gateway already routes around it.
 */
export class RemoteEndpointFeed {
  private readonly slices: Informer;
  private readonly nodes: Informer;
  /** Functions last handed to the gateway, so that one whose slices are all gone is removed. */
  private readonly published = new Set<string>();

  /**
   * `nodes` and `slices` are the node's own informers on every Node and EndpointSlice (the composition
   * root starts and stops them; this node's slice writer and mesh peer check read the same caches).
   */
  constructor(private readonly opts: { nodes: Informer; slices: Informer; node: string; remote: RemoteFunctions }) {
    this.slices = opts.slices;
    this.nodes = opts.nodes;
    const fnChanged = { onAdd: (o: ResourceObject) => this.refresh(fnKey(o)), onUpdate: (a: ResourceObject, b: ResourceObject) => (this.refresh(fnKey(a)), this.refresh(fnKey(b))), onDelete: (o: ResourceObject) => this.refresh(fnKey(o)) };
    this.slices.addHandlers(fnChanged);
    this.nodes.addHandlers({ onAdd: () => this.refreshAll(), onUpdate: (a, b) => (readyOf(a) !== readyOf(b) ? this.refreshAll() : undefined), onDelete: () => this.refreshAll() });
  }

  /** start publishes what the (started) informers hold now; their handlers keep it current. */
  start(): void {
    this.refreshAll();
  }

  /** peers are the other nodes not known to be down that advertise a mesh listener (address and port from their Node). */
  peers(): Array<{ node: string; host: string; port: number }> {
    const out: Array<{ node: string; host: string; port: number }> = [];
    for (const n of this.nodes.list()) {
      if (n.metadata.name === this.opts.node || !usable(n)) continue;
      const st = n.status as { addresses?: Array<{ type?: string; address?: string }>; daemonEndpoints?: { meshEndpoint?: { Port?: number } } } | undefined;
      const host = st?.addresses?.find((a) => a.type === 'InternalIP')?.address;
      const port = st?.daemonEndpoints?.meshEndpoint?.Port;
      if (host && port) out.push({ node: n.metadata.name, host, port });
    }
    return out;
  }

  private refreshAll(): void {
    const keys = new Set(this.published);
    for (const s of this.slices.list()) {
      const k = fnKey(s);
      if (k) keys.add(k);
    }
    for (const k of keys) this.refresh(k);
  }

  private refresh(key: string | undefined): void {
    if (!key || !this.nodes.hasSynced) return;
    const byNode = new Map<string, NodeEndpoint>();
    for (const s of this.slices.list()) {
      if (fnKey(s) !== key) continue;
      const node = s.metadata.labels?.[ENDPOINT_SLICE_NODE_LABEL];
      if (!node || node === this.opts.node) continue;
      const n = this.nodes.get(node);
      if (n && !usable(n)) continue;
      const body = s as unknown as SliceBody;
      const port = (body.ports ?? []).find((p) => p.name === 'mesh')?.port ?? body.ports?.[0]?.port;
      if (!port) continue;
      for (const e of body.endpoints ?? []) {
        if (e.conditions?.ready === false || e.conditions?.terminating === true) continue;
        const host = e.addresses?.[0];
        if (!host) continue;
        const id = `${node} ${host}:${port}`;
        const cur = byNode.get(id);
        if (cur) cur.ready++;
        else byNode.set(id, { node, host, port, ready: 1 });
      }
    }
    const slash = key.indexOf('/');
    const [ns, name] = [key.slice(0, slash), key.slice(slash + 1)];
    if (byNode.size === 0) {
      this.published.delete(key);
      this.opts.remote.remove(ns, name);
      return;
    }
    this.published.add(key);
    this.opts.remote.set(ns, name, [...byNode.values()]);
  }
}

/** fnKey is the `namespace/name` of the Function a slice lists replicas of. */
function fnKey(slice: ResourceObject): string | undefined {
  const fn = slice.metadata.labels?.[ENDPOINT_SLICE_FUNCTION_LABEL];
  return fn ? `${slice.metadata.namespace ?? 'default'}/${fn}` : undefined;
}

function readyOf(node: ResourceObject): string | undefined {
  const conditions = (node.status as { conditions?: Array<{ type?: string; status?: string }> } | undefined)?.conditions;
  return conditions?.find((c) => c.type === 'Ready')?.status;
}

/** usable: a node not known to be down (a node still registering has no Ready condition yet). */
function usable(node: ResourceObject): boolean {
  const r = readyOf(node);
  return r === undefined || r === 'True';
}

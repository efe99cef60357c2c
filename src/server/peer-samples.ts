import type { ConnectionOptions } from 'node:tls';

import type { Logger } from 'pino';

import type { PeerSampler, PeerSamples, TrafficSample } from '../controllers/autoscaler/index.js';
import { MESH_SAMPLES_PATH } from '../gateway/index.js';

import { meshGet,type MeshPeer } from './mesh-client.js';

/** A peer's answer larger than this is refused: it lists Functions with traffic, a few figures each. */
const MAX_SAMPLES_BYTES = 4 * 1024 * 1024;

export interface MeshPeerSamplerOptions {
  /** The other nodes not known to be down. */
  peers: () => MeshPeer[];
  /** This node's identity as TLS client options; undefined while it has none yet (no peer is asked). */
  tls: () => ConnectionOptions | undefined | Promise<ConnectionOptions | undefined>;
  trustDomain: string;
  logger: Logger;
  /** Per tick, for every peer at once (default 500 ms): a late peer contributes nothing this tick. */
  timeoutMs?: number;
  /** How one peer is asked (tests replace it); default: GET MESH_SAMPLES_PATH over mutual TLS. */
  fetch?: (peer: MeshPeer, tls: ConnectionOptions, timeoutMs: number) => Promise<unknown>;
}

/**
 * MeshPeerSampler gathers the other nodes' autoscaler samples for the leader, from their mesh
 * listeners, all at once with one short deadline. A peer that fails is logged once per outage (and
 * again when it answers), and counted by node.
 */
export class MeshPeerSampler implements PeerSampler {
  private readonly failed = new Map<string, number>();
  private readonly down = new Set<string>();

  constructor(private readonly opts: MeshPeerSamplerOptions) {}

  hasPeers(): boolean {
    return this.opts.peers().length > 0;
  }

  failures(): ReadonlyMap<string, number> {
    return this.failed;
  }

  async collect(): Promise<PeerSamples[]> {
    const peers = this.opts.peers();
    if (peers.length === 0) return [];
    const tls = await this.opts.tls();
    if (!tls) return [];
    const timeoutMs = this.opts.timeoutMs ?? 500;
    const fetch = this.opts.fetch ?? getSamples(this.opts.trustDomain);
    const got = await Promise.all(
      peers.map(async (peer) => {
        try {
          const functions = parseSamples(await withDeadline(fetch(peer, tls, timeoutMs), timeoutMs, peer));
          if (this.down.delete(peer.node)) this.opts.logger.info({ node: peer.node }, 'the node answers for autoscaler samples again');
          return { node: peer.node, functions };
        } catch (err) {
          this.failed.set(peer.node, (this.failed.get(peer.node) ?? 0) + 1);
          if (!this.down.has(peer.node)) {
            this.down.add(peer.node);
            this.opts.logger.warn({ node: peer.node, err: (err as Error).message }, 'a node gave no autoscaler samples; its traffic is left out until it answers');
          }
          return undefined;
        }
      }),
    );
    return got.filter((p): p is PeerSamples => p !== undefined);
  }
}

/** parseSamples checks a peer's answer: `{functions: {"ns/name": {rps, concurrency}}}`. */
export function parseSamples(body: unknown): Record<string, TrafficSample> {
  const functions = (body as { functions?: unknown } | null)?.functions;
  if (typeof functions !== 'object' || functions === null || Array.isArray(functions)) throw new Error('the answer has no functions object');
  const out: Record<string, TrafficSample> = {};
  for (const [key, v] of Object.entries(functions as Record<string, unknown>)) {
    const t = v as { rps?: unknown; concurrency?: unknown } | null;
    const rps = t?.rps;
    const concurrency = t?.concurrency;
    if (typeof rps !== 'number' || typeof concurrency !== 'number' || !(rps >= 0) || !(concurrency >= 0) || !Number.isFinite(rps) || !Number.isFinite(concurrency)) {
      throw new Error(`the sample of ${key} is not two non-negative numbers`);
    }
    out[key] = { rps, concurrency };
  }
  return out;
}

function withDeadline<T>(p: Promise<T>, ms: number, peer: MeshPeer): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`node ${peer.node} did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** getSamples asks one node's mesh listener, presenting this node's certificate and accepting only a node identity. */
function getSamples(trustDomain: string) {
  return async (peer: MeshPeer, tls: ConnectionOptions, timeoutMs: number): Promise<unknown> => {
    const body = await meshGet(peer, tls, MESH_SAMPLES_PATH, { trustDomain, timeoutMs, maxBytes: MAX_SAMPLES_BYTES });
    if (body === undefined) throw new Error(`node ${peer.node} answered 404`);
    try {
      return JSON.parse(body.toString('utf8')) as unknown;
    } catch {
      throw new Error(`node ${peer.node} sent samples that are not JSON`);
    }
  };
}

import type { Logger } from 'pino';

import { parseModuleRef } from '../api/kinds/module-ref.js';
import type { ResourceService } from '../api/resources.js';
import { isDigest, type OciCache, parseReference } from '../oci/index.js';
import type { BlobStore } from '../store/index.js';

/**
 * OciReferences lists digests of the OCI cache that stored objects still name. The Function's are
 * built in; other areas that keep artifacts in the cache (signatures, policy bundles) add theirs with
 * `addOciReferences`, or their entries are removed after the grace period and fetched again when needed.
 */
export type OciReferences = (resources: ResourceService) => Promise<Iterable<string>>;

/**
 * BlobGarbageCollector removes uploaded modules no Function names any more, once they are older than a
 * grace period (an hour by default): every `skiff apply --watch` round uploads a new module, and the
 * old ones must not fill the disk. The grace period covers the gap between an upload and the apply
 * that names it (a lookup or upload of a blob restarts its clock).
 */
export class BlobGarbageCollector {
  private timer?: NodeJS.Timeout;
  private running?: Promise<string[]>;
  private readonly ociReferences: OciReferences[] = [functionOciReferences];
  private readonly sweeps: Array<() => Promise<void>> = [];

  constructor(
    private readonly resources: ResourceService,
    private readonly blobs: BlobStore,
    private readonly logger: Logger,
    private readonly graceMs = 60 * 60 * 1000,
    private readonly oci?: OciCache,
  ) {}

  /** addOciReferences adds a source of digests the OCI cache must keep (see OciReferences). */
  addOciReferences(refs: OciReferences): void {
    this.ociReferences.push(refs);
  }

  /** addSweep adds a clean-up that runs with every sweep (the unpacked container images). */
  addSweep(sweep: () => Promise<void>): void {
    this.sweeps.push(sweep);
  }

  start(everyMs = 5 * 60_000): void {
    this.timer = setInterval(() => void this.sweep().catch((err) => this.logger.warn({ err: (err as Error).message }, 'module store clean-up failed')), everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** sweep removes unreferenced blobs past the grace period now and returns their digests (one sweep at a time). */
  sweep(now = Date.now()): Promise<string[]> {
    this.running ??= this.sweepOnce(now).finally(() => (this.running = undefined));
    return this.running;
  }

  private async sweepOnce(now: number): Promise<string[]> {
    const referenced = await this.referenced();
    const removed = await this.blobs.sweep(referenced, this.graceMs, now);
    if (removed.length) this.logger.info({ removed: removed.length }, 'removed unreferenced uploaded modules');
    if (this.oci) {
      const keep = new Set<string>();
      for (const refs of this.ociReferences) for (const d of await refs(this.resources)) keep.add(d);
      const gone = await this.oci.gc(keep, this.graceMs, now);
      if (gone.length) this.logger.info({ removed: gone.length }, 'removed unreferenced entries of the OCI cache');
    }
    for (const sweep of this.sweeps) await sweep();
    return removed;
  }

  /** referenced is every blob a stored Function names, or a Rollout names as its canary, across namespaces. */
  private async referenced(): Promise<Set<string>> {
    const out = new Set<string>();
    const add = (module: unknown) => {
      const ref = parseModuleRef(String(module ?? ''));
      if (ref.type === 'blob') out.add(ref.hex);
    };
    for (const fn of (await this.resources.list(this.resources.kind('Function'), undefined)).items) add(fn.spec?.module);
    const rollouts = this.resources.kinds.lookup('Rollout');
    if (rollouts) for (const ro of (await this.resources.list(rollouts, undefined)).items) add(ro.spec?.canary?.module);
    return out;
  }
}

/** functionOciReferences: the manifests Functions pin (status.resolvedModule, spec.module by digest) and the modules they run. */
export async function functionOciReferences(resources: ResourceService): Promise<string[]> {
  const out: string[] = [];
  const { items } = await resources.list(resources.kind('Function'), undefined);
  for (const fn of items) {
    const ref = parseModuleRef(String(fn.spec?.module ?? ''));
    if (ref.type !== 'oci') continue;
    if (ref.ref.digest) out.push(ref.ref.digest);
    const resolved = fn.status?.resolvedModule;
    if (typeof resolved === 'string') {
      try {
        const d = parseReference(resolved).digest;
        if (d) out.push(d);
      } catch {
        // A malformed status pins nothing.
      }
    }
    if (typeof fn.status?.digest === 'string' && isDigest(fn.status.digest)) out.push(fn.status.digest);
  }
  return out;
}

/** imageFunctionDigests: the image manifests container and VM Functions run (status.digest), which their unpacked root file systems are keyed by. */
export async function imageFunctionDigests(resources: ResourceService): Promise<Set<string>> {
  const out = new Set<string>();
  const { items } = await resources.list(resources.kind('Function'), undefined);
  for (const fn of items) {
    if (fn.spec?.image === undefined) continue;
    if (typeof fn.status?.digest === 'string' && isDigest(fn.status.digest)) out.add(fn.status.digest);
  }
  return out;
}

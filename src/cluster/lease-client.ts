import { keyOf } from '../api/collection.js';
import { ApiError } from '../api/errors.js';
import type { KindDefinition, ResourceObject } from '../api/kinds/types.js';
import type { ResourceService } from '../api/resources.js';

import type { LeaseClient, LeaseRecord, LeaseSpec } from './leader.js';

const GROUP = 'coordination.k8s.io';

/**
 * ResourceLeaseClient is the LeaderElector's LeaseClient over the resource API's Lease objects
 * (coordination.k8s.io/v1), so the lease is an ordinary object `skiff get leases -A` shows, written
 * through the same validation and optimistic concurrency as any other. The store key it reports is the
 * object's own, and its resourceVersion is that key's modRevision: the fence the elector hands out.
 */
export class ResourceLeaseClient implements LeaseClient {
  constructor(
    private readonly resources: ResourceService,
    private readonly lease: { namespace: string; name: string },
  ) {}

  async get(): Promise<LeaseRecord | undefined> {
    const def = this.def();
    const obj = await this.resources.tryGet(def, this.lease.namespace, this.lease.name);
    return obj && this.record(def, obj);
  }

  async create(spec: LeaseSpec): Promise<LeaseRecord | undefined> {
    const def = this.def();
    try {
      const { object } = await this.resources.create(def, this.lease.namespace, this.object(spec));
      return this.record(def, object);
    } catch (err) {
      if (err instanceof ApiError && err.httpStatus === 409) return undefined;
      throw err;
    }
  }

  async update(spec: LeaseSpec, resourceVersion: string): Promise<LeaseRecord | undefined> {
    const def = this.def();
    try {
      const { object } = await this.resources.update(def, this.lease.namespace, this.lease.name, this.object(spec, resourceVersion));
      return this.record(def, object);
    } catch (err) {
      // Changed since it was read (409) or deleted meanwhile (404): either way this attempt lost.
      if (err instanceof ApiError && (err.httpStatus === 409 || err.httpStatus === 404)) return undefined;
      throw err;
    }
  }

  /** Looked up per call: the Lease kind may be registered after the elector is built. */
  private def(): KindDefinition {
    const def = this.resources.kinds.all().find((d) => d.kind === 'Lease' && d.group === GROUP);
    if (!def) throw new ApiError(404, 'NotFound', `the server does not serve ${GROUP} Leases, which leader election needs`);
    return def;
  }

  private object(spec: LeaseSpec, resourceVersion?: string): ResourceObject {
    const clean = Object.fromEntries(Object.entries(spec).filter(([, v]) => v !== undefined && v !== ''));
    return {
      apiVersion: `${GROUP}/v1`,
      kind: 'Lease',
      metadata: { name: this.lease.name, namespace: this.lease.namespace, ...(resourceVersion ? { resourceVersion } : {}) },
      spec: clean,
    };
  }

  private record(def: KindDefinition, obj: ResourceObject): LeaseRecord {
    const resourceVersion = obj.metadata.resourceVersion ?? '0';
    return { spec: (obj.spec ?? {}) as LeaseSpec, resourceVersion, key: keyOf(def, this.lease.namespace, this.lease.name), modRevision: Number(resourceVersion) };
  }
}

export { WorkloadError } from './errors.js';
export { nativeBinary } from './native.js';
export type { AppliedIsolation, ImageConfig, LimitsMechanism, PreparedImage, Replica, ReplicaEndpoint, ReplicaExit, ReplicaResources, ReplicaSpec, RuntimeHandler } from './types.js';

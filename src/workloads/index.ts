export { WorkloadError } from './errors.js';
export { nativeBinary } from './native.js';
export type { AppliedIsolation, ImageConfig, LimitsMechanism, PreparedImage, Replica, ReplicaEndpoint, ReplicaExit, ReplicaResources, ReplicaSpec, RuntimeHandler } from './types.js';
export { replicaRoot, WorkloadManager, type Activity, type ReplicaState, type ReplicaStatus, type WorkloadDefinition, type WorkloadManagerOptions, type WorkloadStatus } from './manager.js';
export { DEFAULT_READINESS, probe, type ProbeResult, type ProbeSpec } from './probe.js';
export { ImageStore } from './image/index.js';
export { BwrapHandler, RuncHandler, runtimeDefaultSeccomp, type ContainerHandlerOptions } from './container/index.js';

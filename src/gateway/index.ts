/**
 * The mesh gateway: routes with VirtualService semantics, a declared filter chain per route, Function
 * and HTTP upstream destinations. This file is the area's only public entry.
 */
export { Gateway } from './gateway.js';
export { WorkloadTable, NoReplicaError, type WorkloadEndpoint } from './workloads.js';
export { ScaleGates, ScaleGate, ActivationError, ActivationFullError, DEFAULT_ACTIVATION, type GateOwner, type GateSample, type ActivationLimits } from './activator.js';
export type { GatewayRequest, FunctionResponse, FunctionInvoker, GatewayConfig, GatewayOptions, GatewayLimits, ConfigProblem, Authorizer, AuthzDecision } from './types.js';
export { routeFunctionRefs, compileRoute } from './router/compile-route.js';
export { compileService } from './upstream/service-spec.js';
export { gatewayKindValidators } from './kind-validators.js';
export { gatewayGrantsHook, serviceGrantProblems, routeGrantProblems, type GatewayGrants } from './grants.js';
export { FILTERS } from './filters/registry.js';
export type { GatewayMetrics, TrafficSnapshot, HistogramSnapshot } from './observability/metrics.js';
export { BODY_SIZE_BUCKETS, LATENCY_BUCKETS_US } from './observability/metrics.js';
export type { ClusterState } from './upstream/cluster.js';
export { ESCAPED_SLASHES_ACTIONS, DEFAULT_PATH_OPTIONS, normalizePath, BadPathError, PathRedirect, type EscapedSlashesAction, type PathOptions } from './request-path.js';
export { GatewayError, ConfigError, statusForInvokerError } from './errors.js';
export type { Cancellation } from './cancel.js';
export { InternalCA, CertificateRequestError, type IssuedCertificate, type SignedCertificate } from './mtls/ca.js';
export { issueServingCertificate, type ServingCertificate } from './mtls/serving.js';
export { createCsr, type CertificateRequest } from './mtls/csr.js';
export { spiffeId, peerSpiffeId, isNodeId, nodeOf } from './mtls/spiffe.js';
export { RemoteFunctions, MESH_BLOB_PATH, MESH_SAMPLES_PATH, DEFAULT_MESH_POLICY, FORWARDED_FUNCTION, FORWARDED_CLIENT, FORWARDED_PRINCIPAL, type NodeEndpoint, type MeshPolicy } from './cluster/remote-functions.js';
export { WorkloadIdentity, LazyIdentity, IdentityClosedError, type WorkloadIdentityOptions, type CertificateIssuer } from './mtls/identity.js';
export { IdSource } from './observability/trace.js';

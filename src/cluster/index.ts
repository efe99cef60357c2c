export { defaultNodeName, hostFacts, type HostFacts, NodeAgent, type NodeAgentOptions } from './node-agent.js';
export { NODE_STATUS_UNKNOWN, NodeLifecycleController, type NodeLifecycleOptions } from './node-lifecycle.js';
export { LeaderElector, LEADER_LEASE, systemClock, type ElectionClock, type LeaderElectorOptions, type LeaseClient, type LeaseRecord, type LeaseSpec } from './leader.js';
export { FencedStore, type FenceSource } from './fenced-store.js';
export { ResourceLeaseClient } from './lease-client.js';
export { NotLeaderError, LeaseLostError, FenceConditionError, ElectionConfigError } from './errors.js';
export { Scheduler, type SchedulerOptions, DRAIN_ANNOTATION, SCHEDULED_CONDITION, placementOf, desiredReplicas, rulesOf, nodeView } from './scheduler.js';
export { EndpointSliceWriter, type EndpointSliceWriterOptions, type LocalReplica, NODE_AGENT_MANAGER, sliceName, addressTypeOf } from './endpoint-slices.js';
export { eligibleForWasm, matchesNode, place, UNREACHABLE_TAINT, NOT_READY_TAINT, DEFAULT_TOLERATION_SECONDS, type NodeView, type PlacementEntry, type PlacementRules, type Taint, type Toleration } from './placement.js';

export { defaultNodeName, hostFacts, type HostFacts, NodeAgent, type NodeAgentOptions } from './node-agent.js';
export { NODE_STATUS_UNKNOWN, NodeLifecycleController, type NodeLifecycleOptions } from './node-lifecycle.js';
export { LeaderElector, LEADER_LEASE, systemClock, type ElectionClock, type LeaderElectorOptions, type LeaseClient, type LeaseRecord, type LeaseSpec } from './leader.js';
export { FencedStore, type FenceSource } from './fenced-store.js';
export { ResourceLeaseClient } from './lease-client.js';
export { NotLeaderError, LeaseLostError, FenceConditionError, ElectionConfigError } from './errors.js';
export { type LeaderTask, LeaderScope } from './leader-scope.js';
export { type ElectionTimings, Leadership, type LeadershipOptions, type LeadershipStats } from './leadership.js';

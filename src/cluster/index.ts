export { defaultNodeName, hostFacts, type HostFacts, NodeAgent, type NodeAgentOptions } from './node-agent.js';
export { NODE_STATUS_UNKNOWN, NodeLifecycleController, type NodeLifecycleOptions } from './node-lifecycle.js';

export { FunctionAutoscaler, type AutoscalerOptions, type AutoscalerStats, type Gate, type Gates, type MetricReader, type PeerSampler, type PeerSamples, type TrafficSample } from './autoscaler.js';
export { placedWorkloadTarget, wasmTarget, workloadTarget, type ScaleTarget } from './targets.js';
export type { ScaleReason } from './decide.js';

export { WorkloadError } from './errors.js';
export { nativeBinary } from './native.js';
export type { AppliedIsolation, ImageConfig, LimitsMechanism, PreparedImage, Replica, ReplicaEndpoint, ReplicaExit, ReplicaResources, ReplicaSpec, RuntimeHandler } from './types.js';
export { advise, type AdviseInput, AdviseInputError, type Advice } from './advise.js';
export { classFacts, type BenchReport, type ClassFact, type ClassFacts, DEFAULT_VM_MEMORY_BYTES, type Figure, formatFigure, formatMs, formatPerGiB, type HandlerAvailability, isRuntimeClassName, parseBenchReport, PUBLISHED_COLD_START_MS, RUNTIME_CLASS_NAMES, type RuntimeClassName } from './advise-figures.js';
export { ADVISE_ANNOTATION_PREFIX, functionNeeds, type FunctionNeeds, parseColdStart, parseDensity } from './advise-input.js';
export { availabilityOf, type ProbeOptions, probeRuntimeClasses } from './probe-classes.js';

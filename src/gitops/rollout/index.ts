export { RolloutController, type RolloutControllerOptions } from './controller.js';
export { canaryName, ROLLOUT_MANAGER, CANARY_LABEL, RolloutWrites } from './writes.js';
export { type FunctionMetricsReader, type FunctionSample, type Measurement, type Window, measure, windowBetween } from './analysis.js';
export { advance, startState, type StepState, type StepInput, type StepOutcome, type Effect, type Phase } from './steps.js';
export { splitTraffic, previewTraffic } from './traffic.js';
export { RolloutConflictError } from './errors.js';
export { ROLLOUT_NAME_ANNOTATION, ROLLOUT_PROMOTE_ANNOTATION, ROLLOUT_ABORT_ANNOTATION } from '../../api/kinds/index.js';

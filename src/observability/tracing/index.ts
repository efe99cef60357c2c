export { DEFAULT_BATCH_DELAY_MS, type OtlpProtocol, type SamplerConfig, type SamplerName, tracingConfig, type TracingConfig, TracingConfigError } from './config.js';
export { OtlpTracer, type OtlpTracerOptions } from './tracer.js';

export { BwrapHandler } from './bwrap.js';
export type { ContainerHandlerOptions } from './common.js';
export { runtimeDefaultSeccomp, type SeccompProfile, type OciSeccomp, type ConditionalRule, type ArgTest } from './seccomp.js';

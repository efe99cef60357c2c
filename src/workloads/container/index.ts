export { BwrapHandler } from './bwrap.js';
export type { ContainerHandlerOptions } from './common.js';
export { RuncHandler } from './runc.js';
export { type ArgTest, type ConditionalRule, type OciSeccomp, runtimeDefaultSeccomp, type SeccompProfile } from './seccomp.js';

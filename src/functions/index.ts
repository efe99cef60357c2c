export { FunctionInvoker, DEFAULT_LIMITS, type FunctionRuntime, type ServedFunction, type FunctionSpec } from './invoker.js';
export { FunctionGrantError, defaultFunctionGrants, functionGrantsHook, grantProblems, resolveLimits, type FunctionGrants, type ResolvedLimits } from './grants.js';
export { FunctionLogs } from './logs.js';
export { ModuleSource, sha256Digest, type LoadedModule, type ModuleSourceOptions, type LoadContext, type PullSecrets } from './module-source.js';
export { secretPullCredentials } from './pull-secrets.js';
export { pinnedDigest } from './oci-module.js';
export { moduleSourceAdmission, moduleSourceErrors, type ModuleSourceChecks } from './module-admission.js';
export { parseWagiOutput, wagiEnv, wagiArgs, WagiOutputError, type WagiRequest, type WagiResponse } from './wagi.js';
export { FunctionError, ModuleLoadError } from './errors.js';

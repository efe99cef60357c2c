/**
 * Admission control: Gatekeeper-compatible constraints, Pod Security Standards, the AdmissionHook
 * that enforces them in Skiff's API, audit, offline tools and the Kubernetes validating webhook.
 * This file is the area's only public entry.
 */
export * from './errors.js';
export { GatekeeperClient, type ReviewResult, type ReviewContext, type ConstraintFailure } from './gatekeeper/client.js';
export { compileTemplate, newSchemaCompiler, TARGET, type CompiledTemplate } from './gatekeeper/template.js';
export { compileConstraint, CONSTRAINT_GROUP, type CompiledConstraint } from './gatekeeper/constraint.js';
export { Matcher, wildcardMatches, type MatchSpec, type MatchTarget } from './gatekeeper/match.js';
export { Inventory } from './gatekeeper/inventory.js';
export { reviewFromObject, reviewFromRequest, type ReviewOptions } from './gatekeeper/review.js';
export { runSuite, findSuites, formatOutcomes, checkAssertion, type CaseOutcome } from './gatekeeper/verify.js';
export { readObjects, listManifestFiles } from './files.js';
export type { K8sObject, AdmissionRequestJSON, Violation, EnforcementAction, UserInfo } from './gatekeeper/types.js';
export { decide, type Decision, type Finding, type PodSecurityInput } from './decision.js';
export { checkFiles, type CheckReport, type CheckOptions } from './check.js';
export { loadPolicies } from './policies.js';
export { evaluatePod, parseLevel, parseVersion, podViewOf, namespacePolicy, formatViolations, levelLabel, checksAt, validateTable, LATEST, type LevelVersion, type NamespacePolicy } from './pss/evaluate.js';
export { PSS_TABLE, NEWEST_RELEASE } from './pss/table.js';
export { functionAsPod } from './pss/function-pod.js';
export type { PssLevel, PodView, CheckResult, Check as PssCheck } from './pss/types.js';
export { AdmissionPlatform, AdmissionStats, AUDIT_REQUEST_ANNOTATION, type AdmissionPlatformOptions } from './platform.js';
export { auditObjects, DEFAULT_VIOLATIONS_LIMIT, type ConstraintAudit, type AuditViolation } from './audit.js';
export { WebhookServer, type WebhookOptions } from './webhook/server.js';
export { EvalPool, type EvalWorkerConfig, type PoolCounts } from './webhook/eval-pool.js';
export { answerReview, type Answer } from './webhook/answer.js';
export * from './image-policy/index.js';

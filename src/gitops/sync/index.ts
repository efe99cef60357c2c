export { SyncController, RECONCILE_AT_ANNOTATION, configFor, type SyncControllerOptions } from './controller.js';
export { buildPlan, inventoryId, parseInventoryId, groupVersion, kindRank, SYNC_MANAGER, SYNC_NAME_LABEL, SYNC_NAMESPACE_LABEL, ROLLOUT_ANNOTATION, CONSTRAINTS_GROUP, type BlobSink, type PlanInput, type PlannedObject } from './plan.js';
export { buildFolder, KUSTOMIZATION_FILES, DEFAULT_BUILD_LIMITS, type BuildLimits, type ScopeOf } from './kustomize.js';
export { parseManifests, isManifestFile, type SourcedObject } from './manifests.js';
export { artifactPath } from './paths.js';
export { healthOf, changedFields } from './health.js';
export { SyncApplyError, SyncBuildError, SyncLimitError, SyncPathError } from './errors.js';

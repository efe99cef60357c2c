import { apiVersionOf, groupOf, groupVersionString, type KindDefinition, type ResourceObject, versionsOf } from './kinds/types.js';

/**
 * A kind served in several versions (`servedVersions`) has one schema and one stored form, as a
 * CustomResourceDefinition whose versions need no conversion webhook: the versions differ in their
 * apiVersion and in the defaults of their schema only. Objects are stored under the storage version
 * (`version`) and written and read in any served one.
 */

/**
 * toStorageVersion turns an object a client wrote into its stored form: a served version's apiVersion
 * (or a legacy alias) becomes the kind's own, after that version's defaults are applied. An apiVersion
 * that names no version of the kind is left for validation to refuse.
 */
export function toStorageVersion(def: KindDefinition, obj: ResourceObject): void {
  const own = apiVersionOf(def);
  if (def.legacyApiVersions?.includes(obj.apiVersion)) {
    obj.apiVersion = own;
    return;
  }
  const version = versionsOf(def).find((v) => groupVersionString(groupOf(def), v) === obj.apiVersion);
  if (version === undefined) return;
  def.versionDefaults?.(obj, version);
  obj.apiVersion = own;
}

/**
 * presentedApiVersion is the apiVersion objects are answered in for a request to `group/version`: that
 * version when the kind is served in it, else (a legacy alias) the kind's own.
 */
export function presentedApiVersion(def: KindDefinition, group: string, version: string): string {
  return groupOf(def) === group && versionsOf(def).includes(version) ? groupVersionString(group, version) : apiVersionOf(def);
}

/** inApiVersion is an object as a client of `apiVersion` sees it (a copy only when it differs). */
export function inApiVersion<T extends { apiVersion?: unknown }>(obj: T, apiVersion: string): T {
  return obj.apiVersion === apiVersion ? obj : { ...obj, apiVersion };
}

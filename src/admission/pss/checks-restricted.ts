/**
 * The behaviours of the restricted checks, parameterised by the version table (`table.ts`):
 * which volume types are allowed, whether Windows pods are exempt, whether user namespaces relax
 * a check. Reasons and details are PSA's words.
 */
import { asArray, badSeccompSetters, isSet } from './checks-baseline.js';
import { type Behaviour, containerNames, containersOf, inUserNamespace, isWindowsPod, type Json, plural, type PodView,quoteList, sortedUnique } from './types.js';

/**
 * RESTRICTED_VOLUME_NAMES are the volume sources PSA names in its detail, in the order it tests
 * them; a volume with a source that is none of these and not allowed is reported as "unknown".
 */
const RESTRICTED_VOLUME_NAMES = [
  'hostPath', 'gcePersistentDisk', 'awsElasticBlockStore', 'gitRepo', 'nfs', 'iscsi', 'glusterfs', 'rbd', 'flexVolume', 'cinder',
  'cephfs', 'flocker', 'fc', 'azureFile', 'vsphereVolume', 'quobyte', 'azureDisk', 'portworxVolume', 'photonPersistentDisk', 'scaleIO', 'storageos',
];

/**
 * hasNoSource tells whether a volume names no source at all. The API server defaults such a
 * volume to an emptyDir before admission sees the pod, so PSA (and upstream's fixtures, which go
 * through the API server) treat it as an allowed emptyDir rather than an unknown type.
 */
function hasNoSource(v: Json): boolean {
  return Object.entries(v ?? {}).every(([k, x]) => k === 'name' || !isSet(x));
}

/** volumeTypesWithin allows a volume that has any of the listed sources, or no source at all. */
export function volumeTypesWithin(allowed: readonly string[]): Behaviour {
  return (pod) => {
    const names: string[] = [];
    const types: string[] = [];
    for (const v of asArray(pod.spec?.volumes)) {
      if (hasNoSource(v) || allowed.some((k) => isSet(v?.[k]))) continue;
      names.push(String(v?.name ?? ''));
      types.push(RESTRICTED_VOLUME_NAMES.find((k) => isSet(v?.[k])) ?? 'unknown');
    }
    if (!names.length) return undefined;
    const list = sortedUnique(types);
    return {
      reason: 'restricted volume types',
      detail: `${plural(names.length, 'volume', 'volumes')} ${quoteList(names)} ${plural(names.length, 'uses', 'use')} ${plural(list.length, 'restricted volume type', 'restricted volume types')} ${quoteList(list)}`,
    };
  };
}

/** exemptWindows wraps a behaviour so that Windows pods (`spec.os.name: windows`) pass it. */
export function exemptWindows(run: Behaviour): Behaviour {
  return (pod) => (isWindowsPod(pod) ? undefined : run(pod));
}

/** relaxInUserNamespace wraps a behaviour so that `hostUsers: false` pods pass it. */
export function relaxInUserNamespace(run: Behaviour): Behaviour {
  return (pod) => (inUserNamespace(pod) ? undefined : run(pod));
}

/** privilegeEscalationDisabled requires `allowPrivilegeEscalation: false` on every container. */
export function privilegeEscalationDisabled(): Behaviour {
  return (pod) => {
    const bad = containersOf(pod.spec).filter(({ c }) => c.securityContext?.allowPrivilegeEscalation !== false).map((x) => x.name);
    return bad.length ? { reason: 'allowPrivilegeEscalation != false', detail: `${containerNames(bad)} must set securityContext.allowPrivilegeEscalation=false` } : undefined;
  };
}

/** runAsNonRoot requires runAsNonRoot=true on the pod or every container, and false nowhere. */
export function runAsNonRoot(): Behaviour {
  return (pod) => {
    const setters: string[] = [];
    const podValue = pod.spec?.securityContext?.runAsNonRoot;
    if (podValue === false) setters.push('pod');
    const podTrue = podValue === true;
    const explicit: string[] = [];
    const implicit: string[] = [];
    for (const { name, c } of containersOf(pod.spec)) {
      const v = c.securityContext?.runAsNonRoot;
      if (isSet(v)) {
        if (v === false) explicit.push(name);
      } else if (!podTrue) implicit.push(name);
    }
    if (explicit.length) setters.push(containerNames(explicit));
    if (setters.length) return { reason: 'runAsNonRoot != true', detail: `${setters.join(' and ')} must not set securityContext.runAsNonRoot=false` };
    if (implicit.length) return { reason: 'runAsNonRoot != true', detail: `pod or ${containerNames(implicit)} must set securityContext.runAsNonRoot=true` };
    return undefined;
  };
}

/** runAsUserNotRoot forbids runAsUser=0 on the pod or any container. */
export function runAsUserNotRoot(): Behaviour {
  return (pod) => {
    const setters: string[] = [];
    if (pod.spec?.securityContext?.runAsUser === 0) setters.push('pod');
    const bad = containersOf(pod.spec).filter(({ c }) => c.securityContext?.runAsUser === 0).map((x) => x.name);
    if (bad.length) setters.push(containerNames(bad));
    return setters.length ? { reason: 'runAsUser=0', detail: `${setters.join(' and ')} must not set runAsUser=0` } : undefined;
  };
}

/** seccompRequired requires RuntimeDefault or Localhost, set on the pod or on every container. */
export function seccompRequired(): Behaviour {
  return (pod: PodView) => {
    const found = badSeccompSetters(pod);
    if (found?.forbidden) return found.forbidden;
    if (found?.podValid) return undefined;
    const unset = containersOf(pod.spec).filter(({ c }) => !isSet(c.securityContext?.seccompProfile)).map((x) => x.name);
    return unset.length ? { reason: 'seccompProfile', detail: `pod or ${containerNames(unset)} must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"` } : undefined;
  };
}

/** capabilitiesDropAll requires `drop: [ALL]` on every container and allows adding only the listed capabilities. */
export function capabilitiesDropAll(addAllowed: readonly string[]): Behaviour {
  const ok = new Set(addAllowed);
  return (pod) => {
    const noDrop: string[] = [];
    const badAdd: string[] = [];
    const added: string[] = [];
    for (const { name, c } of containersOf(pod.spec)) {
      const caps: Json = c.securityContext?.capabilities;
      if (!isSet(caps)) {
        noDrop.push(name);
        continue;
      }
      if (!asArray(caps.drop).includes('ALL')) noDrop.push(name);
      const extra = asArray(caps.add).map(String).filter((x) => !ok.has(x));
      if (extra.length) {
        badAdd.push(name);
        added.push(...extra);
      }
    }
    const parts: string[] = [];
    if (noDrop.length) parts.push(`${containerNames(noDrop)} must set securityContext.capabilities.drop=["ALL"]`);
    if (badAdd.length) parts.push(`${containerNames(badAdd)} must not include ${quoteList(sortedUnique(added))} in securityContext.capabilities.add`);
    return parts.length ? { reason: 'unrestricted capabilities', detail: parts.join('; ') } : undefined;
  };
}

import { containersOf, plural, quoteList, V, type Check, type CheckResult, type PodView } from './types.js';

const ALLOWED_VOLUMES = ['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret'];

const fail = (id: string, reason: string, detail: string): CheckResult => ({ id, reason, detail });
const isWindows = (pod: PodView) => pod.spec?.os?.name === 'windows';

function volumeTypes(pod: PodView): CheckResult | undefined {
  const names: string[] = [];
  const types = new Set<string>();
  for (const v of pod.spec?.volumes ?? []) {
    const keys = Object.keys(v ?? {}).filter((k) => k !== 'name');
    const bad = keys.filter((k) => !ALLOWED_VOLUMES.includes(k));
    if (bad.length) {
      names.push(String(v.name ?? ''));
      for (const k of bad) types.add(k);
    }
  }
  return names.length ? fail('restrictedVolumes', 'restricted volume types', `${plural(names.length, 'volume', 'volumes')} ${quoteList(names)} ${plural(names.length, 'uses', 'use')} restricted volume ${plural(types.size, 'type', 'types')} ${quoteList([...types].sort())}`) : undefined;
}

function allowPrivilegeEscalation(windowsExempt: boolean) {
  return (pod: PodView): CheckResult | undefined => {
    if (windowsExempt && isWindows(pod)) return undefined;
    const bad = containersOf(pod.spec).filter(({ c }) => c.securityContext?.allowPrivilegeEscalation !== false).map((x) => x.name);
    return bad.length ? fail('allowPrivilegeEscalation', 'allowPrivilegeEscalation != false', `${plural(bad.length, 'container', 'containers')} ${quoteList(bad)} must set securityContext.allowPrivilegeEscalation=false`) : undefined;
  };
}

function runAsNonRoot(pod: PodView): CheckResult | undefined {
  const podValue = pod.spec?.securityContext?.runAsNonRoot;
  const explicitFalse: string[] = [];
  const unset: string[] = [];
  for (const { name, c } of containersOf(pod.spec)) {
    const v = c.securityContext?.runAsNonRoot;
    if (v === false) explicitFalse.push(name);
    else if (v === undefined && podValue !== true) unset.push(name);
  }
  const parts: string[] = [];
  if (podValue === false) parts.push('pod must not set securityContext.runAsNonRoot=false');
  if (explicitFalse.length) parts.push(`${plural(explicitFalse.length, 'container', 'containers')} ${quoteList(explicitFalse)} must not set securityContext.runAsNonRoot=false`);
  if (unset.length && podValue !== false) parts.push(`pod or ${plural(unset.length, 'container', 'containers')} ${quoteList(unset)} must set securityContext.runAsNonRoot=true`);
  return parts.length ? fail('runAsNonRoot', 'runAsNonRoot != true', parts.join('; ')) : undefined;
}

function runAsUser(pod: PodView): CheckResult | undefined {
  const parts: string[] = [];
  if (pod.spec?.securityContext?.runAsUser === 0) parts.push('pod must not set runAsUser=0');
  const bad = containersOf(pod.spec).filter(({ c }) => c.securityContext?.runAsUser === 0).map((x) => x.name);
  if (bad.length) parts.push(`${plural(bad.length, 'container', 'containers')} ${quoteList(bad)} must not set runAsUser=0`);
  return parts.length ? fail('runAsUser', 'runAsUser=0', parts.join('; ')) : undefined;
}

function seccompRestricted(windowsExempt: boolean) {
  const ok = (t: unknown) => t === 'RuntimeDefault' || t === 'Localhost';
  return (pod: PodView): CheckResult | undefined => {
    if (windowsExempt && isWindows(pod)) return undefined;
    const podType = pod.spec?.securityContext?.seccompProfile?.type;
    const parts: string[] = [];
    if (podType !== undefined && !ok(podType)) parts.push(`pod must not set securityContext.seccompProfile.type to ${JSON.stringify(podType)}`);
    const badSet: string[] = [];
    const unset: string[] = [];
    for (const { name, c } of containersOf(pod.spec)) {
      const t = c.securityContext?.seccompProfile?.type;
      if (t !== undefined && !ok(t)) badSet.push(name);
      else if (t === undefined && !ok(podType)) unset.push(name);
    }
    if (badSet.length) parts.push(`${plural(badSet.length, 'container', 'containers')} ${quoteList(badSet)} must not set securityContext.seccompProfile.type to "Unconfined"`);
    if (unset.length && podType === undefined) parts.push(`pod or ${plural(unset.length, 'container', 'containers')} ${quoteList(unset)} must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"`);
    return parts.length ? fail('seccompProfile_restricted', 'seccompProfile', parts.join('; ')) : undefined;
  };
}

function capabilitiesRestricted(windowsExempt: boolean) {
  return (pod: PodView): CheckResult | undefined => {
    if (windowsExempt && isWindows(pod)) return undefined;
    const noDrop: string[] = [];
    const badAdd: string[] = [];
    const added = new Set<string>();
    for (const { name, c } of containersOf(pod.spec)) {
      const caps = c.securityContext?.capabilities ?? {};
      if (!(caps.drop ?? []).includes('ALL')) noDrop.push(name);
      const extra = (caps.add ?? []).filter((x: string) => x !== 'NET_BIND_SERVICE');
      if (extra.length) {
        badAdd.push(name);
        for (const x of extra) added.add(x);
      }
    }
    const parts: string[] = [];
    if (noDrop.length) parts.push(`${plural(noDrop.length, 'container', 'containers')} ${quoteList(noDrop)} must set securityContext.capabilities.drop=["ALL"]`);
    if (badAdd.length) parts.push(`${plural(badAdd.length, 'container', 'containers')} ${quoteList(badAdd)} must not include ${quoteList([...added].sort())} in securityContext.capabilities.add`);
    return parts.length ? fail('capabilities_restricted', 'unrestricted capabilities', parts.join('; ')) : undefined;
  };
}

/** restrictedChecks are the checks added by the restricted level, with the versions that changed them. */
export const restrictedChecks: Check[] = [
  { id: 'restrictedVolumes', level: 'restricted', versions: [{ since: V(0), run: volumeTypes }] },
  { id: 'allowPrivilegeEscalation', level: 'restricted', versions: [{ since: V(8), run: allowPrivilegeEscalation(false) }, { since: V(25), run: allowPrivilegeEscalation(true) }] },
  { id: 'runAsNonRoot', level: 'restricted', versions: [{ since: V(0), run: runAsNonRoot }] },
  { id: 'runAsUser', level: 'restricted', versions: [{ since: V(23), run: runAsUser }] },
  { id: 'seccompProfile_restricted', level: 'restricted', versions: [{ since: V(19), run: seccompRestricted(false) }, { since: V(25), run: seccompRestricted(true) }] },
  { id: 'capabilities_restricted', level: 'restricted', versions: [{ since: V(22), run: capabilitiesRestricted(false) }, { since: V(25), run: capabilitiesRestricted(true) }] },
];

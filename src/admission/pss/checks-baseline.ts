/**
 * The behaviours of the baseline checks. Each export builds one behaviour from the parameters the
 * version table gives it (an allow-list, whether user namespaces relax it), so a new Kubernetes
 * release changes data in `table.ts` rather than code here. Reasons and details are PSA's words.
 */
import { type Behaviour, containerNames, containersOf, type Forbidden, inUserNamespace, type Json,plural, quoteList, sortedUnique } from './types.js';

/** hostNamespaces forbids hostNetwork, hostPID and hostIPC. */
export function hostNamespaces(): Behaviour {
  return (pod) => {
    const on = ['hostNetwork', 'hostPID', 'hostIPC'].filter((f) => pod.spec?.[f] === true).map((f) => `${f}=true`);
    return on.length ? { reason: 'host namespaces', detail: on.join(', ') } : undefined;
  };
}

/** privileged forbids `securityContext.privileged: true` on any container. */
export function privileged(): Behaviour {
  return (pod) => {
    const bad = containersOf(pod.spec).filter(({ c }) => c.securityContext?.privileged === true).map((x) => x.name);
    return bad.length ? { reason: 'privileged', detail: `${containerNames(bad)} must not set securityContext.privileged=true` } : undefined;
  };
}

/** addedCapabilitiesWithin allows only the listed capabilities in `capabilities.add`. */
export function addedCapabilitiesWithin(allowed: readonly string[]): Behaviour {
  const ok = new Set(allowed);
  return (pod) => {
    const names: string[] = [];
    const caps: string[] = [];
    for (const { name, c } of containersOf(pod.spec)) {
      const extra = (asArray(c.securityContext?.capabilities?.add) as string[]).map(String).filter((x) => !ok.has(x));
      if (extra.length) {
        names.push(name);
        caps.push(...extra);
      }
    }
    return names.length ? { reason: 'non-default capabilities', detail: `${containerNames(names)} must not include ${quoteList(sortedUnique(caps))} in securityContext.capabilities.add` } : undefined;
  };
}

/** hostPathVolumes forbids hostPath volumes. */
export function hostPathVolumes(): Behaviour {
  return (pod) => {
    const bad = asArray(pod.spec?.volumes).filter((v: Json) => isSet(v?.hostPath)).map((v: Json) => String(v?.name ?? ''));
    return bad.length ? { reason: 'hostPath volumes', detail: `${plural(bad.length, 'volume', 'volumes')} ${quoteList(bad)}` } : undefined;
  };
}

/** hostPorts forbids any non-zero `ports[*].hostPort`. */
export function hostPorts(): Behaviour {
  return (pod) => {
    const names: string[] = [];
    const ports: string[] = [];
    for (const { name, c } of containersOf(pod.spec)) {
      const hp = asArray(c.ports).map((p: Json) => p?.hostPort).filter((p: unknown) => typeof p === 'number' && p !== 0);
      if (hp.length) {
        names.push(name);
        ports.push(...hp.map(String));
      }
    }
    if (!names.length) return undefined;
    const list = sortedUnique(ports);
    return { reason: 'hostPort', detail: `${containerNames(names)} ${plural(names.length, 'uses', 'use')} ${plural(list.length, 'hostPort', 'hostPorts')} ${list.join(', ')}` };
  };
}

const APPARMOR_ANNOTATION = 'container.apparmor.security.beta.kubernetes.io/';
const APPARMOR_TYPES = new Set(['RuntimeDefault', 'Localhost']);
const appArmorAnnotationOk = (v: string) => v === '' || v === 'runtime/default' || v.startsWith('localhost/');

/** appArmorProfile forbids profiles other than RuntimeDefault and Localhost, in the fields and in the beta annotations. */
export function appArmorProfile(): Behaviour {
  return (pod) => {
    const setters: string[] = [];
    const values: string[] = [];
    const podProfile = pod.spec?.securityContext?.appArmorProfile;
    if (isSet(podProfile) && !APPARMOR_TYPES.has(String(podProfile.type ?? ''))) {
      setters.push('pod');
      values.push(String(podProfile.type ?? ''));
    }
    const bad: string[] = [];
    for (const { name, c } of containersOf(pod.spec)) {
      const p = c.securityContext?.appArmorProfile;
      if (isSet(p) && !APPARMOR_TYPES.has(String(p.type ?? ''))) {
        bad.push(name);
        values.push(String(p.type ?? ''));
      }
    }
    if (bad.length) setters.push(containerNames(bad));
    const annotations = Object.entries(pod.metadata.annotations ?? {})
      .filter(([k, v]) => k.startsWith(APPARMOR_ANNOTATION) && !appArmorAnnotationOk(String(v)))
      .map(([k, v]) => `${k}=${JSON.stringify(String(v))}`)
      .sort();
    const all = [...sortedUnique(values), ...annotations];
    if (annotations.length) setters.push(plural(annotations.length, 'annotation', 'annotations'));
    if (!setters.length) return undefined;
    return { reason: plural(all.length, 'forbidden AppArmor profile', 'forbidden AppArmor profiles'), detail: `${setters.join(' and ')} must not set AppArmor profile type to ${quoteList(all)}` };
  };
}

/** seLinuxOptionsWithin allows only the listed SELinux types and no user or role. */
export function seLinuxOptionsWithin(types: readonly string[]): Behaviour {
  const allowed = new Set(types);
  return (pod) => {
    const badTypes: string[] = [];
    let user = false;
    let role = false;
    const valid = (o: Json): boolean => {
      let ok = true;
      const type = String(o.type ?? '');
      if (!allowed.has(type)) {
        ok = false;
        badTypes.push(type);
      }
      if (o.user) {
        ok = false;
        user = true;
      }
      if (o.role) {
        ok = false;
        role = true;
      }
      return ok;
    };
    const setters: string[] = [];
    const podOptions = pod.spec?.securityContext?.seLinuxOptions;
    if (isSet(podOptions) && !valid(podOptions)) setters.push('pod');
    const bad = containersOf(pod.spec)
      .filter(({ c }) => isSet(c.securityContext?.seLinuxOptions) && !valid(c.securityContext.seLinuxOptions))
      .map((x) => x.name);
    if (bad.length) setters.push(containerNames(bad));
    if (!setters.length) return undefined;
    const data: string[] = [];
    const types = sortedUnique(badTypes);
    if (types.length) data.push(`${plural(types.length, 'type', 'types')} ${quoteList(types)}`);
    if (user) data.push('user may not be set');
    if (role) data.push('role may not be set');
    return { reason: 'seLinuxOptions', detail: `${setters.join(' and ')} set forbidden securityContext.seLinuxOptions: ${data.join('; ')}` };
  };
}

/** procMount forbids any procMount but Default; with `relaxInUserNamespace`, a `hostUsers: false` pod may set any. */
export function procMount(opts: { relaxInUserNamespace: boolean }): Behaviour {
  return (pod) => {
    if (opts.relaxInUserNamespace && inUserNamespace(pod)) return undefined;
    const names: string[] = [];
    const types: string[] = [];
    for (const { name, c } of containersOf(pod.spec)) {
      const pm = c.securityContext?.procMount;
      if (pm !== undefined && pm !== null && pm !== 'Default') {
        names.push(name);
        types.push(String(pm));
      }
    }
    return names.length ? { reason: 'procMount', detail: `${containerNames(names)} must not set securityContext.procMount to ${quoteList(sortedUnique(types))}` } : undefined;
  };
}

const SECCOMP_POD_ANNOTATION = 'seccomp.security.alpha.kubernetes.io/pod';
const SECCOMP_CONTAINER_ANNOTATION = 'container.seccomp.security.alpha.kubernetes.io/';

/** seccompAnnotations forbids the alpha seccomp annotations set to `unconfined` (policy before v1.19). */
export function seccompAnnotations(): Behaviour {
  return (pod) => {
    const annotations = pod.metadata.annotations ?? {};
    const bad: string[] = [];
    if (annotations[SECCOMP_POD_ANNOTATION] === 'unconfined') bad.push(`${SECCOMP_POD_ANNOTATION}="unconfined"`);
    for (const { name } of containersOf(pod.spec)) {
      const key = SECCOMP_CONTAINER_ANNOTATION + name;
      if (annotations[key] === 'unconfined') bad.push(`${key}="unconfined"`);
    }
    const list = sortedUnique(bad);
    return list.length ? { reason: 'seccompProfile', detail: `forbidden ${plural(list.length, 'annotation', 'annotations')} ${list.join(', ')}` } : undefined;
  };
}

/** validSeccomp is PSA's allow-list of explicit seccomp profile types. */
export const validSeccomp = (t: unknown) => t === 'RuntimeDefault' || t === 'Localhost';

/** seccompFields forbids an explicit seccomp profile type other than RuntimeDefault or Localhost (baseline from v1.19). */
export function seccompFields(): Behaviour {
  return (pod) => badSeccompSetters(pod)?.forbidden;
}

/** badSeccompSetters finds the pod and containers that set a bad seccomp type, and the containers that set none. */
export function badSeccompSetters(pod: { spec: Json }): { forbidden?: Forbidden; podValid: boolean } | undefined {
  const setters: string[] = [];
  const values: string[] = [];
  const podProfile = pod.spec?.securityContext?.seccompProfile;
  let podValid = false;
  if (isSet(podProfile)) {
    if (!validSeccomp(podProfile.type)) {
      setters.push('pod');
      values.push(String(podProfile.type ?? ''));
    } else podValid = true;
  }
  const bad: string[] = [];
  for (const { name, c } of containersOf(pod.spec)) {
    const p = c.securityContext?.seccompProfile;
    if (isSet(p) && !validSeccomp(p.type)) {
      bad.push(name);
      values.push(String(p.type ?? ''));
    }
  }
  if (bad.length) setters.push(containerNames(bad));
  if (!setters.length) return { podValid };
  return { podValid, forbidden: { reason: 'seccompProfile', detail: `${setters.join(' and ')} must not set securityContext.seccompProfile.type to ${quoteList(sortedUnique(values))}` } };
}

/** sysctlsWithin allows only the listed pod sysctls. */
export function sysctlsWithin(list: readonly string[]): Behaviour {
  const allowed = new Set(list);
  return (pod) => {
    const bad = asArray(pod.spec?.securityContext?.sysctls).map((s: Json) => String(s?.name ?? '')).filter((n: string) => !allowed.has(n));
    return bad.length ? { reason: 'forbidden sysctls', detail: bad.join(', ') } : undefined;
  };
}

/** windowsHostProcess forbids `windowsOptions.hostProcess: true` on the pod or a container. */
export function windowsHostProcess(): Behaviour {
  return (pod) => {
    const setters: string[] = [];
    if (pod.spec?.securityContext?.windowsOptions?.hostProcess === true) setters.push('pod');
    const bad = containersOf(pod.spec).filter(({ c }) => c.securityContext?.windowsOptions?.hostProcess === true).map((x) => x.name);
    if (bad.length) setters.push(containerNames(bad));
    return setters.length ? { reason: 'hostProcess', detail: `${setters.join(' and ')} must not set securityContext.windowsOptions.hostProcess=true` } : undefined;
  };
}

/** hostProbesAndHostLifecycle forbids a `host` in httpGet or tcpSocket probes and lifecycle handlers. */
export function hostProbesAndHostLifecycle(): Behaviour {
  const hostsOf = (handler: Json): string[] =>
    [handler?.httpGet?.host, handler?.tcpSocket?.host].filter((h): h is string => typeof h === 'string' && h !== '');
  return (pod) => {
    const names: string[] = [];
    const hosts: string[] = [];
    for (const { name, c } of containersOf(pod.spec)) {
      const found = [c.livenessProbe, c.readinessProbe, c.startupProbe, c.lifecycle?.postStart, c.lifecycle?.preStop].flatMap(hostsOf);
      if (found.length) {
        names.push(name);
        hosts.push(...found);
      }
    }
    if (!names.length) return undefined;
    const containers = sortedUnique(names);
    const list = sortedUnique(hosts);
    return {
      reason: 'probe or lifecycle host',
      detail: `${containerNames(containers)} ${plural(containers.length, 'uses', 'use')} ${plural(list.length, 'probe or lifecycle host', 'probe or lifecycle hosts')} ${quoteList(list)}`,
    };
  };
}

/** asArray is the list at a field, or empty when the field is absent or not a list. */
export function asArray(x: unknown): Json[] {
  return Array.isArray(x) ? x : [];
}

/** isSet tells whether an optional object field is present (Go's non-nil pointer). */
export function isSet(x: unknown): x is Json {
  return x !== undefined && x !== null;
}

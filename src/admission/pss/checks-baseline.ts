import { containersOf, plural, quoteList, V, type Check, type CheckResult, type PodView } from './types.js';

const DEFAULT_CAPS = new Set(['AUDIT_WRITE', 'CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'MKNOD', 'NET_BIND_SERVICE', 'SETFCAP', 'SETGID', 'SETPCAP', 'SETUID', 'SYS_CHROOT']);
const SELINUX_TYPES_1_0 = ['', 'container_t', 'container_init_t', 'container_kvm_t'];
const SELINUX_TYPES_1_31 = [...SELINUX_TYPES_1_0, 'container_engine_t'];
const SYSCTLS_1_0 = ['kernel.shm_rmid_forced', 'net.ipv4.ip_local_port_range', 'net.ipv4.ip_unprivileged_port_start', 'net.ipv4.tcp_syncookies', 'net.ipv4.ping_group_range'];
const SYSCTLS_1_27 = [...SYSCTLS_1_0, 'net.ipv4.ip_local_reserved_ports'];
const SYSCTLS_1_29 = [...SYSCTLS_1_27, 'net.ipv4.tcp_keepalive_time', 'net.ipv4.tcp_fin_timeout', 'net.ipv4.tcp_keepalive_intvl', 'net.ipv4.tcp_keepalive_probes'];
const SYSCTLS_1_32 = [...SYSCTLS_1_29, 'net.ipv4.tcp_rmem', 'net.ipv4.tcp_wmem'];

const fail = (id: string, reason: string, detail: string): CheckResult => ({ id, reason, detail });

function hostNamespaces(pod: PodView): CheckResult | undefined {
  const on = ['hostNetwork', 'hostPID', 'hostIPC'].filter((f) => pod.spec?.[f] === true);
  return on.length ? fail('hostNamespaces', 'host namespaces', on.map((f) => `${f}=true`).join(', ')) : undefined;
}

function privileged(pod: PodView): CheckResult | undefined {
  const bad = containersOf(pod.spec).filter(({ c }) => c.securityContext?.privileged === true).map((x) => x.name);
  return bad.length ? fail('privileged', 'privileged', `${plural(bad.length, 'container', 'containers')} ${quoteList(bad)} must not set securityContext.privileged=true`) : undefined;
}

function capabilitiesBaseline(pod: PodView): CheckResult | undefined {
  const names: string[] = [];
  const caps = new Set<string>();
  for (const { name, c } of containersOf(pod.spec)) {
    const extra = (c.securityContext?.capabilities?.add ?? []).filter((x: string) => !DEFAULT_CAPS.has(x));
    if (extra.length) {
      names.push(name);
      for (const x of extra) caps.add(x);
    }
  }
  return names.length ? fail('capabilities_baseline', 'non-default capabilities', `${plural(names.length, 'container', 'containers')} ${quoteList(names)} must not include ${quoteList([...caps].sort())} in securityContext.capabilities.add`) : undefined;
}

function hostPathVolumes(pod: PodView): CheckResult | undefined {
  const bad = (pod.spec?.volumes ?? []).filter((v: { hostPath?: unknown }) => v?.hostPath).map((v: { name?: string }) => String(v.name ?? ''));
  return bad.length ? fail('hostPathVolumes', 'hostPath volumes', `${plural(bad.length, 'volume', 'volumes')} ${quoteList(bad)}`) : undefined;
}

function hostPorts(pod: PodView): CheckResult | undefined {
  const names: string[] = [];
  const ports: number[] = [];
  for (const { name, c } of containersOf(pod.spec)) {
    const hp = (c.ports ?? []).map((p: { hostPort?: number }) => p?.hostPort).filter((p: unknown) => typeof p === 'number' && p !== 0);
    if (hp.length) {
      names.push(name);
      ports.push(...hp);
    }
  }
  return names.length ? fail('hostPorts', 'hostPort', `${plural(names.length, 'container', 'containers')} ${quoteList(names)} ${plural(ports.length, 'uses', 'use')} ${plural(ports.length, 'hostPort', 'hostPorts')} ${ports.join(', ')}`) : undefined;
}

const APPARMOR_PREFIX = 'container.apparmor.security.beta.kubernetes.io/';
const appArmorAnnotationOk = (v: string) => v === '' || v === 'runtime/default' || v.startsWith('localhost/');

function appArmor(fields: boolean) {
  return (pod: PodView): CheckResult | undefined => {
    const bad: string[] = [];
    for (const [k, v] of Object.entries(pod.metadata.annotations ?? {})) if (k.startsWith(APPARMOR_PREFIX) && !appArmorAnnotationOk(String(v))) bad.push(`${k}="${v}"`);
    if (fields) {
      const t = pod.spec?.securityContext?.appArmorProfile?.type;
      if (t === 'Unconfined') bad.push(`pod must not set securityContext.appArmorProfile.type to "Unconfined"`);
      const names = containersOf(pod.spec).filter(({ c }) => c.securityContext?.appArmorProfile?.type === 'Unconfined').map((x) => x.name);
      if (names.length) bad.push(`${plural(names.length, 'container', 'containers')} ${quoteList(names)} must not set securityContext.appArmorProfile.type to "Unconfined"`);
    }
    return bad.length ? fail('appArmorProfile', 'forbidden AppArmor profile', bad.sort().join(', ')) : undefined;
  };
}

function seLinux(types: string[]) {
  const allowed = new Set(types);
  return (pod: PodView): CheckResult | undefined => {
    const problems = new Set<string>();
    const check = (o: { type?: string; user?: string; role?: string } | undefined, who: string) => {
      if (!o) return;
      if (o.type !== undefined && !allowed.has(o.type)) problems.add(`${who} type "${o.type}"`);
      if (o.user) problems.add(`${who} user "${o.user}"`);
      if (o.role) problems.add(`${who} role "${o.role}"`);
    };
    check(pod.spec?.securityContext?.seLinuxOptions, 'pod');
    for (const { name, c } of containersOf(pod.spec)) check(c.securityContext?.seLinuxOptions, `container "${name}"`);
    return problems.size ? fail('seLinuxOptions', 'seLinuxOptions', `forbidden securityContext.seLinuxOptions: ${[...problems].join(', ')}`) : undefined;
  };
}

function procMount(pod: PodView): CheckResult | undefined {
  const bad = containersOf(pod.spec).filter(({ c }) => c.securityContext?.procMount !== undefined && c.securityContext.procMount !== 'Default').map((x) => x.name);
  return bad.length ? fail('procMount', 'procMount', `${plural(bad.length, 'container', 'containers')} ${quoteList(bad)} must not set securityContext.procMount to "Unmasked"`) : undefined;
}

function seccompAnnotations(pod: PodView): CheckResult | undefined {
  const bad: string[] = [];
  for (const [k, v] of Object.entries(pod.metadata.annotations ?? {}))
    if ((k === 'seccomp.security.alpha.kubernetes.io/pod' || k.startsWith('container.seccomp.security.alpha.kubernetes.io/')) && v === 'unconfined') bad.push(`${k}="${v}"`);
  return bad.length ? fail('seccompProfile_baseline', 'seccompProfile', `forbidden annotations ${bad.sort().join(', ')}`) : undefined;
}

function seccompFields(pod: PodView): CheckResult | undefined {
  const bad: string[] = [];
  if (pod.spec?.securityContext?.seccompProfile?.type === 'Unconfined') bad.push('pod must not set securityContext.seccompProfile.type to "Unconfined"');
  const names = containersOf(pod.spec).filter(({ c }) => c.securityContext?.seccompProfile?.type === 'Unconfined').map((x) => x.name);
  if (names.length) bad.push(`${plural(names.length, 'container', 'containers')} ${quoteList(names)} must not set securityContext.seccompProfile.type to "Unconfined"`);
  return bad.length ? fail('seccompProfile_baseline', 'seccompProfile', bad.join('; ')) : undefined;
}

function sysctls(list: string[]) {
  const allowed = new Set(list);
  return (pod: PodView): CheckResult | undefined => {
    const bad = (pod.spec?.securityContext?.sysctls ?? []).map((s: { name?: string }) => String(s?.name ?? '')).filter((n: string) => !allowed.has(n));
    return bad.length ? fail('sysctls', 'forbidden sysctls', bad.join(', ')) : undefined;
  };
}

function windowsHostProcess(pod: PodView): CheckResult | undefined {
  const podLevel = pod.spec?.securityContext?.windowsOptions?.hostProcess === true;
  const names = containersOf(pod.spec).filter(({ c }) => c.securityContext?.windowsOptions?.hostProcess === true).map((x) => x.name);
  if (!podLevel && !names.length) return undefined;
  return fail('windowsHostProcess', 'hostProcess', podLevel ? 'pod must not set securityContext.windowsOptions.hostProcess=true' : `${plural(names.length, 'container', 'containers')} ${quoteList(names)} must not set securityContext.windowsOptions.hostProcess=true`);
}

/** baselineChecks are the checks of the baseline level (restricted includes them). */
export const baselineChecks: Check[] = [
  { id: 'hostNamespaces', level: 'baseline', versions: [{ since: V(0), run: hostNamespaces }] },
  { id: 'privileged', level: 'baseline', versions: [{ since: V(0), run: privileged }] },
  { id: 'capabilities_baseline', level: 'baseline', versions: [{ since: V(0), run: capabilitiesBaseline }] },
  { id: 'hostPathVolumes', level: 'baseline', versions: [{ since: V(0), run: hostPathVolumes }] },
  { id: 'hostPorts', level: 'baseline', versions: [{ since: V(0), run: hostPorts }] },
  { id: 'appArmorProfile', level: 'baseline', versions: [{ since: V(0), run: appArmor(false) }, { since: V(30), run: appArmor(true) }] },
  { id: 'seLinuxOptions', level: 'baseline', versions: [{ since: V(0), run: seLinux(SELINUX_TYPES_1_0) }, { since: V(31), run: seLinux(SELINUX_TYPES_1_31) }] },
  { id: 'procMount', level: 'baseline', versions: [{ since: V(0), run: procMount }] },
  { id: 'seccompProfile_baseline', level: 'baseline', versions: [{ since: V(0), run: seccompAnnotations }, { since: V(19), run: seccompFields }] },
  {
    id: 'sysctls',
    level: 'baseline',
    versions: [
      { since: V(0), run: sysctls(SYSCTLS_1_0) },
      { since: V(27), run: sysctls(SYSCTLS_1_27) },
      { since: V(29), run: sysctls(SYSCTLS_1_29) },
      { since: V(32), run: sysctls(SYSCTLS_1_32) },
    ],
  },
  { id: 'windowsHostProcess', level: 'baseline', versions: [{ since: V(0), run: windowsHostProcess }] },
];

import { describe, expect,it } from 'vitest';

import { checksAt, evaluatePod, formatViolations, LATEST, NEWEST_RELEASE, parseLevel, type PodView, PSS_TABLE, type PssCheck,validateTable } from '../../src/admission/index.js';

const pod = (spec: Record<string, unknown>, annotations?: Record<string, string>): PodView => ({ metadata: { name: 'p', annotations }, spec });
const detail = (p: PodView, level = 'baseline') => evaluatePod(p, parseLevel(level)).map((r) => `${r.reason} (${r.detail})`);

describe('the Pod Security version table', () => {
  it('is valid and its newest release is what latest means', () => {
    expect(validateTable(PSS_TABLE)).toEqual([]);
    expect(LATEST).toEqual(NEWEST_RELEASE);
    expect(checksAt(parseLevel('restricted'))).toEqual(checksAt(parseLevel(`restricted:v${NEWEST_RELEASE[0]}.${NEWEST_RELEASE[1]}`)));
  });

  it('refuses a table that upstream\'s registry would refuse', () => {
    const run = () => undefined;
    const bad: PssCheck[] = [
      { id: 'a', level: 'baseline', versions: [{ since: [1, 5], run }, { since: [1, 5], run }] },
      { id: 'a', level: 'baseline', versions: [{ since: [1, 0], run }] },
      { id: 'b', level: 'baseline', overrides: ['a'], versions: [{ since: [1, 0], run }] },
      { id: 'c', level: 'restricted', overrides: ['nope'], versions: [{ since: [1, 99], run }] },
      { id: 'd', level: 'restricted', versions: [] },
    ];
    expect(validateTable(bad)).toEqual([
      'check a: versions must be strictly increasing (v1.5)',
      'check a: listed twice',
      'check c: version v1.99 is newer than the newest release v1.36',
      'check d: no versions',
      'check b: only restricted checks may override others',
      'check c: overrides nope, which is not a baseline check',
    ]);
  });

  it('runs the checks in PSA\'s order: baseline ids, then restricted ids, minus overridden baseline checks', () => {
    expect(checksAt(parseLevel('baseline:v1.0'))).toEqual([
      'appArmorProfile', 'capabilities_baseline', 'hostNamespaces', 'hostPathVolumes', 'hostPorts', 'privileged', 'procMount', 'seLinuxOptions', 'seccompProfile_baseline', 'sysctls', 'windowsHostProcess',
    ]);
    expect(checksAt(parseLevel('restricted:v1.0'))).toEqual([
      'appArmorProfile', 'capabilities_baseline', 'hostNamespaces', 'hostPorts', 'privileged', 'procMount', 'seLinuxOptions', 'seccompProfile_baseline', 'sysctls', 'windowsHostProcess', 'restrictedVolumes', 'runAsNonRoot',
    ]);
    expect(checksAt(parseLevel('restricted:v1.34'))).toEqual([
      'appArmorProfile', 'hostNamespaces', 'hostPorts', 'hostProbesAndHostLifecycle', 'privileged', 'procMount', 'seLinuxOptions', 'sysctls', 'windowsHostProcess',
      'allowPrivilegeEscalation', 'capabilities_restricted', 'restrictedVolumes', 'runAsNonRoot', 'runAsUser', 'seccompProfile_restricted',
    ]);
    expect(checksAt(parseLevel('restricted:v1.35'))).toEqual([
      'appArmorProfile', 'hostNamespaces', 'hostPorts', 'hostProbesAndHostLifecycle', 'privileged', 'seLinuxOptions', 'sysctls', 'windowsHostProcess',
      'allowPrivilegeEscalation', 'capabilities_restricted', 'procMount_restricted', 'restrictedVolumes', 'runAsNonRoot', 'runAsUser', 'seccompProfile_restricted',
    ]);
    expect(checksAt(parseLevel('privileged'))).toEqual([]);
  });
});

describe("Pod Security messages, in PSA's words", () => {
  const c = (name: string, securityContext: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) => ({ name, image: 'x', securityContext, ...extra });

  it('host namespaces, privileged, capabilities, hostPath and host ports', () => {
    expect(detail(pod({ hostNetwork: true, hostPID: true, containers: [c('a')] }))).toEqual(['host namespaces (hostNetwork=true, hostPID=true)']);
    expect(detail(pod({ containers: [c('a', { privileged: true }), c('b', { privileged: true })] }))).toEqual(['privileged (containers "a", "b" must not set securityContext.privileged=true)']);
    expect(detail(pod({ containers: [c('a', { capabilities: { add: ['SYS_ADMIN', 'NET_RAW', 'CHOWN'] } })] }))).toEqual([
      'non-default capabilities (container "a" must not include "NET_RAW", "SYS_ADMIN" in securityContext.capabilities.add)',
    ]);
    expect(detail(pod({ containers: [c('a')], volumes: [{ name: 'h', hostPath: { path: '/' } }] }))).toEqual(['hostPath volumes (volume "h")']);
    expect(detail(pod({ containers: [c('a', {}, { ports: [{ hostPort: 9000 }, { hostPort: 80 }] }), c('b', {}, { ports: [{ hostPort: 80 }] })] }))).toEqual([
      'hostPort (containers "a", "b" use hostPorts 80, 9000)',
    ]);
  });

  it('AppArmor, SELinux, /proc mount, seccomp, sysctls and host process', () => {
    expect(detail(pod({ securityContext: { appArmorProfile: { type: 'Unconfined' } }, containers: [c('a')] }, { 'container.apparmor.security.beta.kubernetes.io/a': 'unconfined' }))).toEqual([
      'forbidden AppArmor profiles (pod and annotation must not set AppArmor profile type to "Unconfined", "container.apparmor.security.beta.kubernetes.io/a="unconfined"")',
    ]);
    expect(detail(pod({ securityContext: { seLinuxOptions: { type: 'spc_t', user: 'u' } }, containers: [c('a', { seLinuxOptions: { role: 'r' } })] }))).toEqual([
      'seLinuxOptions (pod and container "a" set forbidden securityContext.seLinuxOptions: type "spc_t"; user may not be set; role may not be set)',
    ]);
    expect(detail(pod({ containers: [c('a', { procMount: 'Unmasked' })] }))).toEqual(['procMount (container "a" must not set securityContext.procMount to "Unmasked")']);
    expect(detail(pod({ securityContext: { seccompProfile: { type: 'Unconfined' } }, containers: [c('a', { seccompProfile: { type: 'Unconfined' } })] }))).toEqual([
      'seccompProfile (pod and container "a" must not set securityContext.seccompProfile.type to "Unconfined")',
    ]);
    expect(detail(pod({ containers: [c('a')] }, { 'seccomp.security.alpha.kubernetes.io/pod': 'unconfined', 'container.seccomp.security.alpha.kubernetes.io/a': 'unconfined' }), 'baseline:v1.18')).toEqual([
      'seccompProfile (forbidden annotations container.seccomp.security.alpha.kubernetes.io/a="unconfined", seccomp.security.alpha.kubernetes.io/pod="unconfined")',
    ]);
    expect(detail(pod({ securityContext: { sysctls: [{ name: 'kernel.msgmax' }, { name: 'net.ipv4.tcp_rmem' }, { name: 'vm.swappiness' }] }, containers: [c('a')] }))).toEqual([
      'forbidden sysctls (kernel.msgmax, vm.swappiness)',
    ]);
    expect(detail(pod({ securityContext: { windowsOptions: { hostProcess: true } }, containers: [c('a', { windowsOptions: { hostProcess: true } })] }))).toEqual([
      'hostProcess (pod and container "a" must not set securityContext.windowsOptions.hostProcess=true)',
    ]);
  });

  it('probe and lifecycle hosts', () => {
    const p = pod({
      containers: [c('b', {}, { livenessProbe: { httpGet: { host: 'x.example' } }, lifecycle: { preStop: { tcpSocket: { host: '10.0.0.1' } } } }), c('a', {}, { readinessProbe: { tcpSocket: { host: 'x.example' } } })],
    });
    expect(detail(p)).toEqual(['probe or lifecycle host (containers "a", "b" use probe or lifecycle hosts "10.0.0.1", "x.example")']);
    expect(detail(p, 'baseline:v1.33')).toEqual([]);
  });

  it('the restricted checks', () => {
    const r = (spec: Record<string, unknown>, level = 'restricted') => detail(pod(spec), level);
    expect(r({ containers: [c('a')], volumes: [{ name: 'n', nfs: {} }, { name: 'h', hostPath: {} }, { name: 'x', futureVolume: {} }, { name: 'd' }] }).filter((m) => m.startsWith('restricted volume'))).toEqual([
      'restricted volume types (volumes "n", "h", "x" use restricted volume types "hostPath", "nfs", "unknown")',
    ]);
    const good = { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } };
    const base = { securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } } };
    expect(r({ ...base, containers: [c('a', { capabilities: { drop: ['ALL'] } })] })).toEqual(['allowPrivilegeEscalation != false (container "a" must set securityContext.allowPrivilegeEscalation=false)']);
    expect(r({ ...base, containers: [c('a', { allowPrivilegeEscalation: false }), c('b', { ...good, capabilities: { drop: ['ALL'], add: ['SYS_TIME'] } })] })).toEqual([
      'unrestricted capabilities (container "a" must set securityContext.capabilities.drop=["ALL"]; container "b" must not include "SYS_TIME" in securityContext.capabilities.add)',
    ]);
    expect(r({ securityContext: { runAsNonRoot: false, seccompProfile: { type: 'RuntimeDefault' } }, containers: [c('a', { ...good, runAsNonRoot: false }), c('b', good)] })).toEqual([
      'runAsNonRoot != true (pod and container "a" must not set securityContext.runAsNonRoot=false)',
    ]);
    expect(r({ securityContext: { seccompProfile: { type: 'RuntimeDefault' } }, containers: [c('a', good), c('b', { ...good, runAsNonRoot: true })] })).toEqual([
      'runAsNonRoot != true (pod or container "a" must set securityContext.runAsNonRoot=true)',
    ]);
    expect(r({ securityContext: { ...base.securityContext, runAsUser: 0 }, containers: [c('a', { ...good, runAsUser: 0 })] })).toEqual(['runAsUser=0 (pod and container "a" must not set runAsUser=0)']);
    expect(r({ securityContext: { runAsNonRoot: true }, containers: [c('a', good), c('b', { ...good, seccompProfile: { type: 'Localhost' } })] })).toEqual([
      'seccompProfile (pod or container "a" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")',
    ]);
    expect(r({ ...base, containers: [c('a', { ...good, procMount: 'Unmasked' })], hostUsers: false })).toEqual([
      'procMount (container "a" must not set securityContext.procMount to "Unmasked")',
    ]);
  });

  it("renders PSA's whole message", () => {
    const lv = parseLevel('baseline:v1.30');
    expect(formatViolations(evaluatePod(pod({ hostNetwork: true, containers: [c('a', { privileged: true })] }), lv), lv)).toBe(
      'violates PodSecurity "baseline:v1.30": host namespaces (hostNetwork=true), privileged (container "a" must not set securityContext.privileged=true)',
    );
  });
});

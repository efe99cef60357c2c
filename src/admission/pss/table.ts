/**
 * The Pod Security version table: every check of Kubernetes' pod-security-admission policy, its
 * level, and the policy versions at which its behaviour changes. A behaviour applies from its
 * `since` version until the next entry's; a check is absent before its first entry. Supporting a
 * new Kubernetes release is an edit here: add an entry (or an allow-list) at the version that
 * changed, and move NEWEST_RELEASE. See src/admission/README.md.
 */
import {
  addedCapabilitiesWithin, appArmorProfile, hostNamespaces, hostPathVolumes, hostPorts, hostProbesAndHostLifecycle, privileged, procMount,
  seccompAnnotations, seccompFields, seLinuxOptionsWithin, sysctlsWithin, windowsHostProcess,
} from './checks-baseline.js';
import {
  capabilitiesDropAll, exemptWindows, privilegeEscalationDisabled, relaxInUserNamespace, runAsNonRoot, runAsUserNotRoot, seccompRequired, volumeTypesWithin,
} from './checks-restricted.js';
import { type Behaviour, type Check, parseVersionText, type Version } from './types.js';

/** NEWEST_RELEASE is the newest Kubernetes release whose policy this table describes; `latest` means it. */
export const NEWEST_RELEASE: Version = [1, 36];

/** BASELINE_CAPABILITIES are the capabilities baseline lets a container add. */
export const BASELINE_CAPABILITIES = ['AUDIT_WRITE', 'CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'MKNOD', 'NET_BIND_SERVICE', 'SETFCAP', 'SETGID', 'SETPCAP', 'SETUID', 'SYS_CHROOT'];

/** SELINUX_TYPES are the SELinux types baseline allows, per policy version. */
export const SELINUX_TYPES = {
  'v1.0': ['', 'container_t', 'container_init_t', 'container_kvm_t'],
  'v1.31': ['', 'container_t', 'container_init_t', 'container_kvm_t', 'container_engine_t'],
};

const SYSCTLS_1_0 = ['kernel.shm_rmid_forced', 'net.ipv4.ip_local_port_range', 'net.ipv4.ip_unprivileged_port_start', 'net.ipv4.tcp_syncookies', 'net.ipv4.ping_group_range'];
const SYSCTLS_1_27 = [...SYSCTLS_1_0, 'net.ipv4.ip_local_reserved_ports'];
const SYSCTLS_1_29 = [...SYSCTLS_1_27, 'net.ipv4.tcp_keepalive_time', 'net.ipv4.tcp_fin_timeout', 'net.ipv4.tcp_keepalive_intvl', 'net.ipv4.tcp_keepalive_probes'];

/** SAFE_SYSCTLS are the pod sysctls baseline allows, per policy version. */
export const SAFE_SYSCTLS = {
  'v1.0': SYSCTLS_1_0,
  'v1.27': SYSCTLS_1_27,
  'v1.29': SYSCTLS_1_29,
  'v1.32': [...SYSCTLS_1_29, 'net.ipv4.tcp_rmem', 'net.ipv4.tcp_wmem'],
};

/**
 * RESTRICTED_VOLUME_SOURCES are the volume sources restricted allows. `image` was added to the
 * v1.0 behaviour upstream (Kubernetes 1.33), so it applies at every pinned version.
 */
export const RESTRICTED_VOLUME_SOURCES = ['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'image', 'persistentVolumeClaim', 'projected', 'secret'];

type Row = { id: string; level: Check['level']; overrides?: string[]; versions: Array<[string, Behaviour]> };

/**
 * ROWS is the table itself, one row per check: [first policy version, behaviour] pairs. Baseline's
 * AppArmor fields and restricted's `image` volumes were added to upstream's v1.0 behaviour, so they
 * apply at every version; user-namespace relaxations (`hostUsers: false`) start at v1.35.
 */
const ROWS: Row[] = [
  // baseline
  { id: 'appArmorProfile', level: 'baseline', versions: [['v1.0', appArmorProfile()]] },
  { id: 'capabilities_baseline', level: 'baseline', versions: [['v1.0', addedCapabilitiesWithin(BASELINE_CAPABILITIES)]] },
  { id: 'hostNamespaces', level: 'baseline', versions: [['v1.0', hostNamespaces()]] },
  { id: 'hostPathVolumes', level: 'baseline', versions: [['v1.0', hostPathVolumes()]] },
  { id: 'hostPorts', level: 'baseline', versions: [['v1.0', hostPorts()]] },
  { id: 'hostProbesAndHostLifecycle', level: 'baseline', versions: [['v1.34', hostProbesAndHostLifecycle()]] },
  { id: 'privileged', level: 'baseline', versions: [['v1.0', privileged()]] },
  {
    id: 'procMount',
    level: 'baseline',
    versions: [['v1.0', procMount({ relaxInUserNamespace: false })], ['v1.35', procMount({ relaxInUserNamespace: true })]],
  },
  { id: 'seLinuxOptions', level: 'baseline', versions: [['v1.0', seLinuxOptionsWithin(SELINUX_TYPES['v1.0'])], ['v1.31', seLinuxOptionsWithin(SELINUX_TYPES['v1.31'])]] },
  { id: 'seccompProfile_baseline', level: 'baseline', versions: [['v1.0', seccompAnnotations()], ['v1.19', seccompFields()]] },
  {
    id: 'sysctls',
    level: 'baseline',
    versions: [
      ['v1.0', sysctlsWithin(SAFE_SYSCTLS['v1.0'])],
      ['v1.27', sysctlsWithin(SAFE_SYSCTLS['v1.27'])],
      ['v1.29', sysctlsWithin(SAFE_SYSCTLS['v1.29'])],
      ['v1.32', sysctlsWithin(SAFE_SYSCTLS['v1.32'])],
    ],
  },
  { id: 'windowsHostProcess', level: 'baseline', versions: [['v1.0', windowsHostProcess()]] },
  // restricted (runs with the baseline rows, minus the ones it overrides)
  { id: 'allowPrivilegeEscalation', level: 'restricted', versions: [['v1.8', privilegeEscalationDisabled()], ['v1.25', exemptWindows(privilegeEscalationDisabled())]] },
  {
    id: 'capabilities_restricted',
    level: 'restricted',
    overrides: ['capabilities_baseline'],
    versions: [['v1.22', capabilitiesDropAll(['NET_BIND_SERVICE'])], ['v1.25', exemptWindows(capabilitiesDropAll(['NET_BIND_SERVICE']))]],
  },
  { id: 'procMount_restricted', level: 'restricted', overrides: ['procMount'], versions: [['v1.35', procMount({ relaxInUserNamespace: false })]] },
  { id: 'restrictedVolumes', level: 'restricted', overrides: ['hostPathVolumes'], versions: [['v1.0', volumeTypesWithin(RESTRICTED_VOLUME_SOURCES)]] },
  { id: 'runAsNonRoot', level: 'restricted', versions: [['v1.0', runAsNonRoot()], ['v1.35', relaxInUserNamespace(runAsNonRoot())]] },
  { id: 'runAsUser', level: 'restricted', versions: [['v1.23', runAsUserNotRoot()], ['v1.35', relaxInUserNamespace(runAsUserNotRoot())]] },
  {
    id: 'seccompProfile_restricted',
    level: 'restricted',
    overrides: ['seccompProfile_baseline'],
    versions: [['v1.19', seccompRequired()], ['v1.25', exemptWindows(seccompRequired())]],
  },
];

/** PSS_TABLE is the parsed table (versions as numbers), checked by validateTable when evaluation starts. */
export const PSS_TABLE: readonly Check[] = ROWS.map((r) => ({
  id: r.id,
  level: r.level,
  overrides: r.overrides,
  versions: r.versions.map(([text, run]) => ({ since: parseVersionText(text) ?? [0, 0], run })),
}));

import type { PodView } from './types.js';

/**
 * functionAsPod maps a Skiff Function onto the pod fields Pod Security reads, so the same levels
 * apply to both. A WASI sandbox has no privileges, host namespaces, capabilities or root user, so
 * a plain Function is `restricted`. A granted host directory is a host path: read-only it stays
 * within baseline (a hostPath volume would not, but WASI preopens cannot escape their directory
 * or write), read-write it is a restricted volume type, so such a function is not `restricted`.
 */
export function functionAsPod(fn: { metadata?: { name?: string; annotations?: Record<string, string> }; spec?: Record<string, unknown> }): PodView {
  const dirs = ((fn.spec?.capabilities as { dirs?: Array<{ host?: string; guest?: string; readOnly?: boolean }> } | undefined)?.dirs ?? []) as Array<{ host?: string; guest?: string; readOnly?: boolean }>;
  const volumes = dirs.map((d, i) => {
    const name = `dir-${i}${d.guest ? `-${d.guest.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '')}` : ''}`;
    return d.readOnly === true ? { name, configMap: {} } : { name, hostDirectoryReadWrite: { path: d.host } };
  });
  const sc = { allowPrivilegeEscalation: false, runAsNonRoot: true, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } };
  return {
    metadata: { name: fn.metadata?.name, annotations: fn.metadata?.annotations },
    spec: { containers: [{ name: String(fn.metadata?.name ?? 'function'), securityContext: sc }], volumes },
  };
}

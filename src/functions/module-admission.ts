import type { AdmissionHook } from '../api/admission.js';
import { invalid } from '../api/errors.js';
import { parseModuleRef } from '../api/kinds/module-ref.js';
import type { FieldError } from '../api/kinds/types.js';
import type { HostDirs, UpstreamGuard } from '../security/index.js';
import type { BlobStore } from '../store/index.js';

/** What the module-source check consults: the operator's grants and the blob store. */
export interface ModuleSourceChecks {
  hostDirs: HostDirs;
  upstreams: UpstreamGuard;
  blobs: BlobStore;
}

const UPLOAD_HINT = 'apply the Function with skiff apply, which uploads local module files';

/**
 * moduleSourceErrors checks where a Function's `spec.module` points before the object is stored: an
 * uploaded blob must be in the store; a host path must be absolute and inside an `--allow-host-dir`
 * (checked without touching anything outside, so the answer reveals nothing about what exists there);
 * a URL or an oci:// registry must not name a refused address literally (names are checked on every
 * fetch, redirects included).
 */
export async function moduleSourceErrors(module: unknown, checks: ModuleSourceChecks): Promise<FieldError[]> {
  if (typeof module !== 'string') return [];
  const ref = parseModuleRef(module);
  const forbid = (message: string): FieldError[] => [{ field: 'spec.module', message, reason: 'FieldValueForbidden' }];
  switch (ref.type) {
    case 'blob':
      if (await checks.blobs.has(ref.hex)) return [];
      return [{ field: 'spec.module', message: `no module with digest ${ref.digest} has been uploaded: PUT its bytes to /blobs/sha256/${ref.hex} first (${UPLOAD_HINT})`, reason: 'FieldValueNotFound' }];
    case 'host':
      if (!ref.absolute) return forbid(`"${ref.path}" is a relative path, which means nothing on the server; ${UPLOAD_HINT}, or name an absolute path inside an --allow-host-dir`);
      if (checks.hostDirs.contains(ref.path)) return [];
      return forbid(`${checks.hostDirs.refusal(ref.path, 'the module file').replace(/^the module file: /, '')}; or ${UPLOAD_HINT}`);
    case 'oci': {
      const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(ref.ref.registry);
      const why = checks.upstreams.checkLiteral(m?.[1] ?? ref.ref.registry, Number(m?.[2] ?? 443));
      return why ? forbid(`${why} (registries obey --allow-upstream)`) : [];
    }
    case 'url': {
      const port = Number(ref.url.port || (ref.url.protocol === 'https:' ? 443 : 80));
      const why = checks.upstreams.checkLiteral(ref.url.hostname, port);
      return why ? forbid(`${why} (URL sources obey --allow-upstream)`) : [];
    }
    default:
      return [];
  }
}

/**
 * moduleSourceAdmission is the admission hook that refuses, with 422 naming `spec.module` and the flag
 * that would allow it, a Function whose module the server may not read.
 */
export function moduleSourceAdmission(checks: ModuleSourceChecks): AdmissionHook {
  return {
    name: 'module-sources',
    async admit(req) {
      if (req.kind !== 'Function' || req.operation === 'DELETE' || !req.object) return { allowed: true };
      const errs = [...(await moduleSourceErrors(req.object.spec?.module, checks)), ...imageSourceErrors(req.object.spec?.image, checks)];
      if (errs.length) throw invalid('Function', req.name, errs);
      return { allowed: true };
    },
  };
}

/**
 * imageSourceErrors checks a container or VM Function's `spec.image` the same way: a local OCI image
 * layout directory must be inside an `--allow-host-dir`; a registry must not be a refused address.
 */
export function imageSourceErrors(image: unknown, checks: Pick<ModuleSourceChecks, 'hostDirs' | 'upstreams'>): FieldError[] {
  if (typeof image !== 'string') return [];
  const forbid = (message: string): FieldError[] => [{ field: 'spec.image', message, reason: 'FieldValueForbidden' }];
  if (image.startsWith('/')) {
    if (checks.hostDirs.contains(image)) return [];
    return forbid(`${checks.hostDirs.refusal(image, 'the image layout directory').replace(/^the image layout directory: /, '')}; push the image to a registry and name it oci://REGISTRY/REPO@sha256:..., or start skiff up with --allow-host-dir DIR for a directory that holds it`);
  }
  const ref = parseModuleRef(image);
  if (ref.type !== 'oci') return [];
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(ref.ref.registry);
  const why = checks.upstreams.checkLiteral(m?.[1] ?? ref.ref.registry, Number(m?.[2] ?? 443));
  return why ? forbid(`${why} (registries obey --allow-upstream)`) : [];
}

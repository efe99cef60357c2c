import type { Descriptor, ImageManifest, ImageReference, Registry } from '../oci/types.js';

import { sha256Digest } from './payload.js';
import type { SerializedBundle } from './sigstore.js';

/** Media types and annotation keys of cosign's registry layout (cosign's SIGNATURE_SPEC and BUNDLE_SPEC). */
export const MediaTypes = {
  simpleSigning: 'application/vnd.dev.cosign.simplesigning.v1+json',
  dsseEnvelope: 'application/vnd.dsse.envelope.v1+json',
  bundleV03: 'application/vnd.dev.sigstore.bundle.v0.3+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  empty: 'application/vnd.oci.empty.v1+json',
} as const;

export const Annotations = {
  signature: 'dev.cosignproject.cosign/signature',
  certificate: 'dev.sigstore.cosign/certificate',
  chain: 'dev.sigstore.cosign/chain',
  rekorBundle: 'dev.sigstore.cosign/bundle',
  rfc3161: 'dev.sigstore.cosign/rfc3161timestamp',
  predicateType: 'predicateType',
  bundleContent: 'dev.sigstore.bundle.content',
  bundlePredicateType: 'dev.sigstore.bundle.predicateType',
  created: 'org.opencontainers.image.created',
  title: 'org.opencontainers.image.title',
} as const;

/** BUNDLE_ARTIFACT_TYPE matches the artifact types of Sigstore bundle referrers, any version. */
export const BUNDLE_ARTIFACT_TYPE = /^application\/vnd\.dev\.sigstore\.bundle/;

/** signatureTag is where cosign keeps an artifact's signatures: `sha256-HEX.sig`. */
export function signatureTag(digest: string): string {
  return `${digest.replace(':', '-')}.sig`;
}

/** attestationTag is where cosign keeps an artifact's attestations: `sha256-HEX.att`. */
export function attestationTag(digest: string): string {
  return `${digest.replace(':', '-')}.att`;
}

/** describe writes a reference for messages: `HOST/REPO[:TAG][@DIGEST]`. */
export function describe(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

/** repositoryOf is the repository a reference names, without tag or digest (cosign's docker-reference). */
export function repositoryOf(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}`;
}

/** isNotFound tells a registry's "no such tag or manifest" apart from its other failures. */
export function isNotFound(err: unknown): boolean {
  return (err as { code?: unknown })?.code === 'oci_not_found';
}

/** A layer to add to a signature or attestation manifest. */
export interface SignatureLayer {
  bytes: Uint8Array;
  mediaType: string;
  annotations: Record<string, string>;
}

/**
 * appendLayer adds a layer to the manifest under `tag` (cosign's `.sig` or `.att`), creating it if
 * absent: existing signatures stay, as cosign appends rather than replaces. A layer already there
 * (same blob, same annotations) is not added twice. The config is an image config whose rootfs lists
 * the layers, as cosign writes it. Returns the new manifest's descriptor.
 */
export async function appendLayer(registry: Registry, ref: ImageReference, tag: string, layer: SignatureLayer): Promise<Descriptor> {
  const tagRef: ImageReference = { registry: ref.registry, repository: ref.repository, tag };
  let layers: Descriptor[] = [];
  try {
    const existing = await registry.getManifest(tagRef);
    if ('layers' in existing.manifest) layers = existing.manifest.layers;
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  const blob = await registry.putBlob(tagRef, layer.bytes, layer.mediaType);
  const desc: Descriptor = { mediaType: layer.mediaType, size: blob.size, digest: blob.digest, annotations: layer.annotations };
  const same = (d: Descriptor) => d.digest === desc.digest && JSON.stringify(d.annotations ?? {}) === JSON.stringify(desc.annotations);
  if (!layers.some(same)) layers = [...layers, desc];
  const config = {
    architecture: '',
    created: '0001-01-01T00:00:00Z',
    history: [{ created: '0001-01-01T00:00:00Z' }],
    os: '',
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
    config: {},
  };
  const configDesc = await registry.putBlob(tagRef, Buffer.from(JSON.stringify(config)), MediaTypes.ociConfig);
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaTypes.ociManifest,
    config: { mediaType: MediaTypes.ociConfig, size: configDesc.size, digest: configDesc.digest },
    layers,
  };
  return registry.putManifest(tagRef, Buffer.from(JSON.stringify(manifest)), MediaTypes.ociManifest);
}

/**
 * attachBundle stores a Sigstore bundle as cosign's new bundle format does: the bundle JSON as a
 * blob, an OCI manifest with the bundle's artifact type, the empty config, and `subject` pointing
 * at the signed manifest, pushed by digest. The client keeps the referrers index (or its tag-schema
 * fallback). Returns the referrer manifest's descriptor.
 */
export async function attachBundle(registry: Registry, ref: ImageReference, subject: Descriptor, bundle: SerializedBundle, predicateType?: string): Promise<Descriptor> {
  const repoRef: ImageReference = { registry: ref.registry, repository: ref.repository };
  const bytes = Buffer.from(JSON.stringify(bundle));
  const blob = await registry.putBlob(repoRef, bytes, MediaTypes.bundleV03);
  const empty = await registry.putBlob(repoRef, Buffer.from('{}'), MediaTypes.empty);
  const annotations: Record<string, string> = {
    [Annotations.bundleContent]: bundle.dsseEnvelope ? 'dsse-envelope' : 'message-signature',
    ...(predicateType ? { [Annotations.bundlePredicateType]: predicateType } : {}),
    [Annotations.created]: new Date().toISOString(),
  };
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaTypes.ociManifest,
    artifactType: MediaTypes.bundleV03,
    config: { mediaType: MediaTypes.empty, digest: empty.digest, size: empty.size },
    layers: [{ mediaType: MediaTypes.bundleV03, digest: blob.digest, size: blob.size, annotations: { [Annotations.title]: `${sha256Digest(bytes).replace(':', '-')}.sigstore.json` } }],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    annotations,
  };
  return registry.putManifest(repoRef, Buffer.from(JSON.stringify(manifest)), MediaTypes.ociManifest);
}

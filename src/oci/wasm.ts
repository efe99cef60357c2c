import { OciArtifactError, OciTooLargeError } from './errors.js';
import { encodeJson, formatPlatform, isIndex, MediaTypes } from './manifest.js';
import { formatReference } from './reference.js';
import type { Descriptor, ImageManifest, ImageReference, Platform, Registry } from './types.js';

/** The config media type of the CNCF Wasm OCI artifact layout. */
export const WASM_CONFIG_MEDIA_TYPE = 'application/vnd.wasm.config.v0+json';
/** The layer media type of the CNCF Wasm OCI artifact layout. */
export const WASM_LAYER_MEDIA_TYPE = 'application/wasm';

/** Layer media types other tools push a single Wasm module under (solo.io's and the older variants). */
export const WASM_LAYER_MEDIA_TYPES: readonly string[] = [WASM_LAYER_MEDIA_TYPE, 'application/vnd.wasm.content.layer.v1+wasm', 'application/vnd.module.wasm.content.layer.v1+wasm'];

/** Config media types accepted beside a single Wasm layer. */
export const WASM_CONFIG_MEDIA_TYPES: readonly string[] = [WASM_CONFIG_MEDIA_TYPE, MediaTypes.ociConfig, MediaTypes.ociEmpty, 'application/vnd.module.wasm.config.v1+json', 'application/vnd.wasm.config.v1+json'];

/** Platforms picked out of an image index for a Wasm module, in order of preference. */
const WASM_PLATFORMS: readonly Platform[] = [
  { os: 'wasip1', architecture: 'wasm' },
  { os: 'wasi', architecture: 'wasm' },
];

/** isWasmModule tells whether bytes are a core WebAssembly module (magic `\0asm`, version 1), not a component. */
export function isWasmModule(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && bytes[0] === 0 && bytes[1] === 0x61 && bytes[2] === 0x73 && bytes[3] === 0x6d && bytes[4] === 1 && bytes[5] === 0 && bytes[6] === 0 && bytes[7] === 0;
}

/** A Wasm module as pulled: the manifest it came from and the module's bytes and digest. */
export interface PulledWasmModule {
  /** Digest of the image manifest that names the module (after picking a platform out of an index). */
  manifestDigest: string;
  /** Digest the reference itself resolved to (the index's, when it named an index). */
  resolvedDigest: string;
  layer: Descriptor;
  bytes: Uint8Array;
}

/**
 * pullWasmModule pulls the single Wasm layer of an artifact: the CNCF layout (config
 * `application/vnd.wasm.config.v0+json`, one `application/wasm` layer) or the single-layer variants
 * other tools push (OCI image or empty config; `application/vnd.wasm.content.layer.v1+wasm` and
 * `application/vnd.module.wasm.content.layer.v1+wasm` layers). An index is narrowed to its
 * `wasip1/wasm` (or `wasi/wasm`) image. The layer's declared size is checked against `maxBytes` before
 * anything is downloaded, its digest as it is, and its bytes must be a core Wasm module.
 */
export async function pullWasmModule(registry: Registry, ref: ImageReference, opts: { maxBytes?: number } = {}): Promise<PulledWasmModule> {
  const shown = formatReference(ref);
  let fetched = await registry.getManifest(ref);
  const resolvedDigest = fetched.digest;
  if (isIndex(fetched.manifest)) {
    const index = fetched.manifest;
    const pick = WASM_PLATFORMS.map((p) => index.manifests.find((d) => d.platform?.os === p.os && d.platform.architecture === p.architecture)).find(Boolean);
    if (!pick) {
      const offered = index.manifests.map((d) => (d.platform ? formatPlatform(d.platform) : '(no platform)')).join(', ') || 'nothing';
      throw new OciArtifactError(`${shown} is an image index without a wasip1/wasm or wasi/wasm image (it offers ${offered}); push the module itself with skiff push`);
    }
    fetched = await registry.getManifest({ registry: ref.registry, repository: ref.repository, digest: pick.digest });
    if (isIndex(fetched.manifest)) throw new OciArtifactError(`${shown}: the ${formatPlatform(pick.platform!)} entry of the index is another index; expected an image manifest`);
  }
  const layer = wasmLayer(fetched.manifest, shown);
  if (opts.maxBytes !== undefined && layer.size > opts.maxBytes) throw new OciTooLargeError(`the Wasm layer of ${shown} is ${layer.size} bytes; the limit is ${opts.maxBytes}`);
  const bytes = await registry.getBlob(ref, layer.digest, { maxBytes: opts.maxBytes });
  if (bytes.length !== layer.size) throw new OciArtifactError(`the Wasm layer of ${shown} is ${bytes.length} bytes but its manifest says ${layer.size}`);
  if (!isWasmModule(bytes)) throw new OciArtifactError(`the Wasm layer of ${shown} is not a core WebAssembly module (components and other content are not run)`);
  return { manifestDigest: fetched.digest, resolvedDigest, layer, bytes };
}

/** wasmLayer finds the one Wasm layer of an image manifest, or says why the manifest is not a Wasm artifact. */
export function wasmLayer(m: ImageManifest, shown: string): Descriptor {
  const wasm = m.layers.filter((l) => WASM_LAYER_MEDIA_TYPES.includes(l.mediaType));
  if (wasm.length === 0) {
    const types = [...new Set(m.layers.map((l) => l.mediaType))].join(', ') || 'no layers';
    throw new OciArtifactError(`${shown} is not a Wasm module artifact: it has ${types}, and no layer of type ${WASM_LAYER_MEDIA_TYPE}; push the module with skiff push`);
  }
  if (wasm.length > 1) throw new OciArtifactError(`${shown} has ${wasm.length} Wasm layers; Skiff runs artifacts with exactly one`);
  if (!WASM_CONFIG_MEDIA_TYPES.includes(m.config.mediaType)) throw new OciArtifactError(`${shown} has config type ${m.config.mediaType}; a Wasm artifact has ${WASM_CONFIG_MEDIA_TYPE} (or an OCI image or empty config)`);
  return wasm[0]!;
}

/** What pushWasmModule pushed. */
export interface PushedWasmModule {
  manifest: Descriptor;
  config: Descriptor;
  layer: Descriptor;
}

/**
 * pushWasmModule pushes a core Wasm module in the CNCF Wasm OCI artifact layout: the module as one
 * `application/wasm` layer, a config (`application/vnd.wasm.config.v0+json`) stating the
 * architecture `wasm`, the os `wasip1`, the layer digests and `created`, and an OCI image manifest
 * without `artifactType` (the layout identifies itself by its config type), tagged `ref.tag` or pushed
 * by digest. `created` defaults to the Unix epoch so that the same module always gives the same digest.
 */
export async function pushWasmModule(registry: Registry, ref: ImageReference, module: Uint8Array, opts: { created?: Date; annotations?: Record<string, string> } = {}): Promise<PushedWasmModule> {
  if (!isWasmModule(module)) throw new OciArtifactError(`the file pushed to ${formatReference(ref)} is not a core WebAssembly module (it must start with \\0asm, version 1)`);
  const layer = await registry.putBlob(ref, module, WASM_LAYER_MEDIA_TYPE);
  const configBytes = encodeJson({ created: (opts.created ?? new Date(0)).toISOString(), architecture: 'wasm', os: 'wasip1', layerDigests: [layer.digest] });
  const config = await registry.putBlob(ref, configBytes, WASM_CONFIG_MEDIA_TYPE);
  const manifest: ImageManifest = { schemaVersion: 2, mediaType: MediaTypes.ociManifest, config, layers: [layer] };
  if (opts.annotations && Object.keys(opts.annotations).length) manifest.annotations = opts.annotations;
  const bytes = encodeJson(manifest);
  const pushed = await registry.putManifest({ registry: ref.registry, repository: ref.repository, tag: ref.tag }, bytes, MediaTypes.ociManifest);
  return { manifest: pushed, config, layer };
}

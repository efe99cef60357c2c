/**
 * The OCI area: a distribution-spec registry client (`Registry`), its content-addressed cache in the
 * data directory, registry credentials, and the Wasm module artifact layout. It depends on store,
 * security and util only; module sources, signatures, policy bundles and runtime classes use it.
 */
export type * from './types.js';
export { createRegistryClient, RegistryClient, DEFAULT_MAX_MANIFEST_BYTES, DEFAULT_MAX_BLOB_BYTES, DEFAULT_CHUNK_BYTES, type RegistryClientOptions } from './client.js';
export { OciCache, type OciCacheOptions } from './cache.js';
export { DockerConfig, defaultDockerConfigPath, chainProviders, normaliseRegistryKey, parseChallenges, type Credentials, type CredentialProvider, type Challenge } from './auth.js';
export { parseReference, formatReference, pinned, isDigest, OCI_SCHEME } from './reference.js';
export { MediaTypes, MANIFEST_MEDIA_TYPES, parseManifest, selectPlatform, parsePlatform, formatPlatform, sha256Of, descriptorOf, encodeJson, isIndex } from './manifest.js';
export { pullWasmModule, pushWasmModule, wasmLayer, isWasmModule, WASM_CONFIG_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPES, WASM_CONFIG_MEDIA_TYPES, type PulledWasmModule, type PushedWasmModule } from './wasm.js';
export type { TransportOptions } from './transport.js';
export * from './errors.js';

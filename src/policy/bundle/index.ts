/**
 * OPA bundles (`src/policy/bundle`): the gzipped tarball `opa build` writes — `.manifest`, data
 * files at any depth, Rego modules, `.signatures.json` — read with limits and path checks,
 * verified against a public key, and written by `skiff policy build`.
 */
export { BundleError } from './errors.js';
export { type BundleEntry, type BundleLimits, DEFAULT_BUNDLE_LIMITS, entryPath, readArchive, writeArchive } from './archive.js';
export { canonicalText, goString, parseRawJSON, RawNumber, type RawJSON } from './canonical-json.js';
export { type Manifest, manifestJSON, parseManifest, regoVersionOf, rootContains, rootsOverlap } from './manifest.js';
export { type BundleModule, type LoadedBundle, loadEntries, readBundle, type ReadOptions } from './reader.js';
export { algorithmsFor, fileDigest, publicKeyFrom, type SignatureInfo, type SignedFile, signFiles, signingAlgorithm, SIGNATURES_FILE, type VerificationOptions, verifySignatures } from './signature.js';
export { type BuildOptions, buildBundle, type BuiltBundle } from './writer.js';

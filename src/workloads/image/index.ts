/**
 * Container images as content-addressed, read-only root file systems: `ImageStore.prepare` pulls an
 * image through the OCI client (or reads a local OCI image layout inside an `--allow-host-dir`) and
 * unpacks its layers safely into `DATA_DIR/rootfs/sha256-HEX/root`, shared by every replica of every
 * runtime class; `gc` removes the ones no Function needs.
 */
export { DEFAULT_GC_GRACE_MS, DEFAULT_MAX_ENTRIES, DEFAULT_MAX_IMAGE_BYTES, DEFAULT_MAX_LAYER_BYTES, ImageStore, type ImageStoreOptions, type PrepareOptions } from './store.js';
export { hostPlatform, parseImageConfig, type ParsedImageConfig } from './config.js';
export { LAYER_MEDIA_TYPES } from './streams.js';
export { RootfsBuilder, splitName, type LayerData, type LayerInfo, type UnpackLimits } from './unpack.js';
export { type ImageUser, resolveImageUser } from './user.js';

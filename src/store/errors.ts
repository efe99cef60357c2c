import { SkiffError } from '../util/errors.js';

/** StoreError is any failure of the storage backend. */
export class StoreError extends SkiffError {}

/** CompactedError: a watch asked for history the store no longer keeps. */
export class CompactedError extends StoreError {
  constructor(readonly requested: number, readonly compacted: number) {
    super('store_compacted', `revision ${requested} has been compacted (oldest available is ${compacted + 1}); list again and watch from the list's revision`);
  }
}

/** StoreUnavailableError: the backend cannot be reached or written (disk full, closed, I/O error). */
export class StoreUnavailableError extends StoreError {
  constructor(message: string, cause?: unknown) {
    super('store_unavailable', message, { cause });
  }
}

/** StoreConfigError: the store endpoint could not be understood. Never echoes the endpoint (it may hold credentials). */
export class StoreConfigError extends StoreError {
  constructor(message: string) {
    super('store_config', message);
  }
}

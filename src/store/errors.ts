import { SkiffError } from '../util/errors.js';

/** StoreError is any failure of the storage backend. */
export class StoreError extends SkiffError {}

/** CompactedError: a watch asked for history the store no longer keeps. */
export class CompactedError extends StoreError {
  constructor(readonly requested: number, readonly compacted: number) {
    super('store_compacted', `revision ${requested} has been compacted (oldest available is ${compacted + 1}); list again and watch from the list's revision`);
  }
}

/** FutureRevisionError: a read asked for a revision the store has not reached yet. */
export class FutureRevisionError extends StoreError {
  constructor(readonly requested: number, readonly current: number) {
    super('store_future_revision', `revision ${requested} is newer than the store's current revision ${current}`);
  }
}

/** StoreUnavailableError: the backend cannot be reached, read or written (disk full, closed, I/O error); the API answers 503. */
export class StoreUnavailableError extends StoreError {
  constructor(message: string, cause?: unknown, code = 'store_unavailable') {
    super(code, message, { cause });
  }
}

/**
 * StoreCorruptError: the store's database file is damaged (found by the integrity check at start, or by
 * a read or write). It is a StoreUnavailableError, so the API answers 503; `skiff up` refuses to start.
 */
export class StoreCorruptError extends StoreUnavailableError {
  constructor(readonly file: string, message: string, cause?: unknown) {
    super(message, cause, 'store_corrupt');
  }
}

/** StoreConfigError: the store endpoint could not be understood. Never echoes the endpoint (it may hold credentials). */
export class StoreConfigError extends StoreError {
  constructor(message: string) {
    super('store_config', message);
  }
}

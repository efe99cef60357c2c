import { join, resolve } from 'node:path';

import { StoreConfigError } from './errors.js';
import { EtcdStore, parseEtcdEndpoint } from './etcd.js';
import type { EtcdTls } from './etcd-transport.js';
import { MemoryStore } from './memory.js';
import { SqliteStore } from './sqlite.js';
import type { Store } from './types.js';

export type * from './types.js';
export * from './errors.js';
export { MemoryStore } from './memory.js';
export { SqliteStore } from './sqlite.js';
export { EtcdStore, type EtcdStoreOptions, EtcdTimeoutError, parseEtcdEndpoint } from './etcd.js';
export { EtcdAnswerError, type EtcdTls, EtcdUnreachableError } from './etcd-transport.js';
export { BlobStore, BlobError, DEFAULT_MAX_BLOB_BYTES, isBlobHex, type BlobPut, type BlobStoreOptions } from './blobs.js';
export { InstrumentedStore, StoreStats, type StoreOperation } from './instrumented.js';

/**
 * openStore picks a backend from the endpoint's URL scheme: `sqlite://PATH` (relative paths are
 * relative to the working directory), `memory://`, `etcd://HOST:PORT[,HOST:PORT]/PREFIX`
 * (`etcd+https://` for TLS, with `opts.tls`: the CA and a client certificate). With no endpoint, SQLite
 * in the data directory. Error messages never repeat the endpoint, which may carry credentials.
 */
export async function openStore(endpoint: string | undefined, dataDir: string, opts: { tls?: EtcdTls } = {}): Promise<Store> {
  const tls = opts.tls && (opts.tls.ca || opts.tls.cert || opts.tls.key) ? opts.tls : undefined;
  if (tls && !/^etcd\+https:\/\//i.test(endpoint ?? '')) throw new StoreConfigError('store TLS files (CA, client certificate and key) are for an etcd store over TLS: use an etcd+https://HOST:PORT/PREFIX store');
  if (!endpoint) return new SqliteStore(join(dataDir, 'state.db'));
  const m = /^([a-z][a-z0-9+.-]*):\/\/(.*)$/i.exec(endpoint);
  if (!m) throw new StoreConfigError('the store endpoint is not a URL: use sqlite://PATH, memory:// or etcd://HOST:PORT/PREFIX');
  const scheme = m[1]!.toLowerCase();
  const rest = m[2]!;
  switch (scheme) {
    case 'memory':
      return new MemoryStore();
    case 'sqlite': {
      const [path, query] = rest.split('?', 2) as [string, string | undefined];
      const params = new URLSearchParams(query ?? '');
      const sync = params.get('sync');
      if (sync && sync !== 'full' && sync !== 'normal') throw new StoreConfigError(`unsupported sqlite sync mode '${sync}': use full or normal`);
      const maxMb = params.get('maxSizeMB');
      if (maxMb !== null && !(Number(maxMb) > 0)) throw new StoreConfigError(`maxSizeMB must be a positive number of megabytes`);
      return new SqliteStore(resolve(path || join(dataDir, 'state.db')), { sync: (sync as 'full' | 'normal' | null) ?? undefined, maxBytes: maxMb ? Number(maxMb) * 1024 * 1024 : undefined });
    }
    case 'etcd':
    case 'etcd+http':
    case 'etcd+https':
      return new EtcdStore({ ...parseEtcdEndpoint(endpoint), tls }).open();
    default:
      throw new StoreConfigError(`unknown store scheme '${scheme}': use sqlite://PATH, memory:// or etcd://HOST:PORT/PREFIX`);
  }
}

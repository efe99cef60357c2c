import { parentPort, workerData } from 'node:worker_threads';

import { InternalCA } from './ca.js';

/**
 * A one-shot thread that loads (or creates) the internal CA in `dir` and issues a serving certificate:
 * see `issueServingCertificate`. It answers once, with the PEMs or an error message, and exits.
 */
const { dir, trustDomain, names } = workerData as { dir: string; trustDomain: string; names: { dnsNames: string[]; ipAddresses: string[] } };
try {
  const ca = await InternalCA.loadOrCreate({ trustDomain, dir });
  const issued = await ca.issueServing(names);
  parentPort!.postMessage({ caPem: ca.certPem, certPem: issued.certPem, keyPem: issued.keyPem });
} catch (err) {
  parentPort!.postMessage({ error: (err as Error).message, code: (err as { code?: string }).code });
}

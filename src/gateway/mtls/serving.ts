import { SkiffError } from '../../util/errors.js';
import { startWorker } from '../../util/worker.js';

/** ServingCertificate is a TLS server certificate and key, with the root that signed it. */
export interface ServingCertificate {
  caPem: string;
  certPem: string;
  keyPem: string;
}

/**
 * issueServingCertificate loads or creates the internal CA in `dir` and signs a serving certificate
 * for `names`, on a thread of its own: loading the certificate library and signing are CPU work that
 * would otherwise sit on the start-up path of the main thread, while the thread runs beside it.
 */
export function issueServingCertificate(dir: string, trustDomain: string, names: { dnsNames: string[]; ipAddresses: string[] }): Promise<ServingCertificate> {
  return new Promise((resolve, reject) => {
    const worker = startWorker(import.meta.url, 'serving-worker', { dir, trustDomain, names });
    let settled = false;
    worker.once('message', (m: Partial<ServingCertificate> & { error?: string; code?: string }) => {
      settled = true;
      if (m.error !== undefined) reject(new SkiffError(m.code ?? 'invalid_ca', m.error));
      else resolve({ caPem: m.caPem!, certPem: m.certPem!, keyPem: m.keyPem! });
    });
    worker.once('error', (err) => {
      if (!settled) reject(err);
      settled = true;
    });
    worker.once('exit', (code) => {
      if (!settled) reject(new SkiffError('invalid_ca', `the certificate thread exited with code ${code} before answering`));
    });
  });
}

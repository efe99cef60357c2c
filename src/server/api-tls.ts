import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import { join } from 'node:path';

import { issueServingCertificate } from '../gateway/index.js';

import { DataDirError } from './data-dir.js';

/** ApiCertificate is what the API's TLS side serves, and the root a client must trust for it. */
export interface ApiCertificate {
  caPem: string;
  certPem: string;
  keyPem: string;
}

/** A serving certificate this close to expiry is replaced at start-up. */
const RENEW_BEFORE_MS = 30 * 24 * 3600 * 1000;

/**
 * servingNames lists the names a client may use for an API listening on `host`: loopback always (the
 * kubeconfig points there for a wildcard address), the host itself, and for a wildcard address this
 * machine's name and interface addresses, so a client elsewhere can verify the certificate too.
 */
export function servingNames(host: string): { dnsNames: string[]; ipAddresses: string[] } {
  const dns = new Set(['localhost']);
  const ips = new Set(['127.0.0.1', '::1']);
  const add = (name: string) => {
    const bare = name.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
    if (isIP(bare)) ips.add(bare);
    else if (/^[a-z0-9.-]+$/i.test(bare)) dns.add(bare.toLowerCase());
  };
  if (host === '0.0.0.0' || host === '::') {
    add(hostname());
    for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (!a.internal) add(a.address);
  } else {
    add(host);
  }
  return { dnsNames: [...dns], ipAddresses: [...ips] };
}

/**
 * ensureApiCertificate returns the API's serving certificate, kept in DATA_DIR/ca/api.{crt,key} and
 * signed by the internal CA (DATA_DIR/ca/ca.{crt,key}, the root the mesh uses too). A certificate that
 * still chains to the root, covers every name in `names` and has more than a month left is reused as
 * it is, read with Node's own X.509 support; only a first start or a renewal signs a new one, on a
 * thread of its own.
 */
export async function ensureApiCertificate(dataDir: string, trustDomain: string, names: { dnsNames: string[]; ipAddresses: string[] }): Promise<ApiCertificate> {
  const dir = join(dataDir, 'ca');
  const files = { ca: join(dir, 'ca.crt'), cert: join(dir, 'api.crt'), key: join(dir, 'api.key') };
  const current = reusable(files, names);
  if (current) return current;
  const issued = await issueServingCertificate(dir, trustDomain, names);
  try {
    writeAtomically(files.key, issued.keyPem, 0o600);
    writeAtomically(files.cert, issued.certPem, 0o644);
  } catch (err) {
    throw new DataDirError(dataDir, err);
  }
  return issued;
}

function reusable(files: { ca: string; cert: string; key: string }, names: { dnsNames: string[]; ipAddresses: string[] }): ApiCertificate | undefined {
  if (!existsSync(files.ca) || !existsSync(files.cert) || !existsSync(files.key)) return undefined;
  try {
    const caPem = readFileSync(files.ca, 'utf8');
    const certPem = readFileSync(files.cert, 'utf8');
    const keyPem = readFileSync(files.key, 'utf8');
    const ca = new X509Certificate(caPem);
    const cert = new X509Certificate(certPem);
    if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) return undefined;
    if (Date.parse(cert.validTo) - Date.now() < RENEW_BEFORE_MS || Date.parse(cert.validFrom) > Date.now() + 60_000) return undefined;
    if (!createPublicKey(createPrivateKey(keyPem)).equals(cert.publicKey)) return undefined;
    if (!names.dnsNames.every((d) => cert.checkHost(d, { wildcards: false }) === d)) return undefined;
    if (!names.ipAddresses.every((ip) => cert.checkIP(ip) !== undefined)) return undefined;
    return { caPem, certPem, keyPem };
  } catch {
    // Unreadable or mismatched files are replaced by a new certificate.
    return undefined;
  }
}

function writeAtomically(path: string, text: string, mode: number): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}

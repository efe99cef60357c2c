import { createHash, createHmac, createPrivateKey, timingSafeEqual,X509Certificate } from 'node:crypto';
import { createRequire } from 'node:module';

import { fromJSON, type Value } from '../value.js';

import { str } from './operands.js';
import { type Builtin,builtinErr } from './types.js';

const hash = (alg: string): Builtin => ({ arity: 1, fn: (a) => createHash(alg).update(str(`crypto.${alg}`, a, 0)).digest('hex') });
const hmac = (alg: string): Builtin => ({
  arity: 2,
  fn: (a) => createHmac(alg, str(`crypto.hmac.${alg}`, a, 1)).update(str(`crypto.hmac.${alg}`, a, 0)).digest('hex'),
});

const PEM_RE = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

/** derBlocks reads PEM text, base64 of PEM, or base64 DER into DER buffers of the given PEM type. */
function derBlocks(name: string, input: string, type: string): Buffer[] {
  let text = input;
  if (!text.includes('-----BEGIN')) {
    if (!/^[A-Za-z0-9+/=\s]*$/.test(text)) throw builtinErr(name, `illegal base64 data at input byte ${[...text].findIndex((c) => !/[A-Za-z0-9+/=\s]/.test(c))}`);
    const compact = text.replace(/\s+/g, '');
    if (compact.length % 4) throw builtinErr(name, `illegal base64 data at input byte ${compact.length - (compact.length % 4)}`);
    const raw = Buffer.from(compact, 'base64');
    const asText = raw.toString('latin1');
    if (!asText.includes('-----BEGIN')) return splitDer(raw);
    text = asText;
  }
  const out: Buffer[] = [];
  for (const m of text.matchAll(PEM_RE)) if (m[1] === type || (type === 'CERTIFICATE REQUEST' && m[1] === 'NEW CERTIFICATE REQUEST')) out.push(Buffer.from(m[2]!.replace(/\s+/g, ''), 'base64'));
  return out;
}

function dn(s: string): Record<string, unknown> {
  const out: Record<string, unknown> = { CommonName: '', Country: null, Organization: null, OrganizationalUnit: null, Locality: null, Province: null, StreetAddress: null, PostalCode: null, SerialNumber: '' };
  const add = (k: string, v: string): void => {
    out[k] = [...((out[k] as string[] | null) ?? []), v];
  };
  for (const line of s.split('\n')) {
    const i = line.indexOf('=');
    if (i < 0) continue;
    const k = line.slice(0, i);
    const v = line.slice(i + 1);
    if (k === 'CN') out.CommonName = v;
    else if (k === 'C') add('Country', v);
    else if (k === 'O') add('Organization', v);
    else if (k === 'OU') add('OrganizationalUnit', v);
    else if (k === 'L') add('Locality', v);
    else if (k === 'ST') add('Province', v);
  }
  return out;
}

/**
 * splitDer cuts concatenated DER certificates (a chain in one blob) apart. Node's X.509 parser reads
 * the first certificate of a buffer and reports its encoding, which says where the next one starts.
 * Anything that is not a certificate is returned whole, for the caller's parser to refuse or read.
 */
function splitDer(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let i = 0;
  while (i < buf.length) {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(buf.subarray(i));
    } catch {
      return out.length ? out : [buf];
    }
    out.push(cert.raw);
    i += cert.raw.length;
  }
  return out;
}

let x509: typeof import('@peculiar/x509') | undefined;

/**
 * certificateLibrary is `@peculiar/x509`, loaded the first time a policy reads a certificate request.
 * Builtins are synchronous, so it is required rather than imported; its load time is paid only by
 * policies that call such a builtin (its container needs the Reflect polyfill loaded first).
 */
function certificateLibrary(): typeof import('@peculiar/x509') {
  if (!x509) {
    const require = createRequire(import.meta.url);
    require('reflect-metadata');
    x509 = require('@peculiar/x509') as typeof import('@peculiar/x509');
  }
  return x509;
}

/** certObject describes a certificate with the field names of Go's x509.Certificate that policies read. */
function certObject(c: X509Certificate): Value {
  const san = c.subjectAltName ?? '';
  const list = (prefix: string): string[] | null => {
    const xs = san.split(/,\s*/).filter((x) => x.startsWith(prefix + ':')).map((x) => x.slice(prefix.length + 1));
    return xs.length ? xs : null;
  };
  return fromJSON({
    Raw: c.raw.toString('base64'),
    Subject: dn(c.subject),
    Issuer: dn(c.issuer),
    SerialNumber: BigInt('0x' + c.serialNumber).toString(),
    NotBefore: new Date(c.validFrom).toISOString().replace('.000Z', 'Z'),
    NotAfter: new Date(c.validTo).toISOString().replace('.000Z', 'Z'),
    DNSNames: list('DNS'),
    EmailAddresses: list('email'),
    IPAddresses: list('IP Address'),
    URIStrings: list('URI'),
    IsCA: c.ca,
    PublicKeyAlgorithm: c.publicKey.asymmetricKeyType === 'rsa' ? 1 : c.publicKey.asymmetricKeyType === 'ec' ? 3 : c.publicKey.asymmetricKeyType === 'ed25519' ? 4 : 0,
  });
}

function parseCerts(name: string, input: string): X509Certificate[] {
  const ders = derBlocks(name, input, 'CERTIFICATE');
  const out: X509Certificate[] = [];
  for (const d of ders) {
    try {
      out.push(new X509Certificate(d));
    } catch {
      throw builtinErr(name, 'x509: malformed certificate');
    }
  }
  return out;
}

/** Crypto: hashes, HMAC, X.509 certificates and private keys. */
export const register: Record<string, Builtin> = {
  'crypto.md5': hash('md5'),
  'crypto.sha1': hash('sha1'),
  'crypto.sha256': hash('sha256'),
  'crypto.hmac.md5': hmac('md5'),
  'crypto.hmac.sha1': hmac('sha1'),
  'crypto.hmac.sha256': hmac('sha256'),
  'crypto.hmac.sha512': hmac('sha512'),
  'crypto.hmac.equal': {
    arity: 2,
    fn: (a) => {
      const x = Buffer.from(str('crypto.hmac.equal', a, 0));
      const y = Buffer.from(str('crypto.hmac.equal', a, 1));
      return x.length === y.length && timingSafeEqual(x, y);
    },
  },
  'crypto.x509.parse_certificates': { arity: 1, fn: (a) => parseCerts('crypto.x509.parse_certificates', str('crypto.x509.parse_certificates', a, 0)).map(certObject) },
  'crypto.x509.parse_and_verify_certificates': {
    arity: 1,
    fn: (a) => {
      const certs = parseCerts('crypto.x509.parse_and_verify_certificates', str('crypto.x509.parse_and_verify_certificates', a, 0));
      const invalid: Value = [false, []];
      if (certs.length < 2) return invalid;
      // the input lists root, intermediates and leaf in any order: rebuild the chain from the leaf
      const issues = (a: X509Certificate, b: X509Certificate): boolean => a !== b && b.checkIssued(a) && b.verify(a.publicKey);
      const leaf = certs.find((c) => !certs.some((o) => issues(c, o)));
      if (!leaf) return invalid;
      const chain = [leaf];
      for (;;) {
        const cur = chain[chain.length - 1]!;
        const up = certs.find((c) => !chain.includes(c) && issues(c, cur));
        if (!up) break;
        chain.push(up);
      }
      const root = chain[chain.length - 1]!;
      if (chain.length !== certs.length || !root.checkIssued(root) || !root.verify(root.publicKey)) return invalid;
      return [true, chain.map(certObject)];
    },
  },
  'crypto.x509.parse_certificate_request': {
    arity: 1,
    fn: (a) => {
      const n = 'crypto.x509.parse_certificate_request';
      const ders = derBlocks(n, str(n, a, 0), 'CERTIFICATE REQUEST');
      const der = ders[0];
      let commonName: string;
      try {
        if (!der) throw new Error('no request');
        const x = certificateLibrary();
        commonName = new x.Pkcs10CertificateRequest(der).subjectName.getField('CN')[0] ?? '';
      } catch {
        // Go's message for input that is not a DER structure, which policies and tests match on.
        throw builtinErr(n, 'asn1: structure error: tags don\'t match');
      }
      return fromJSON({ Subject: { CommonName: commonName }, Raw: der.toString('base64') });
    },
  },
  'crypto.x509.parse_keypair': {
    arity: 2,
    fn: (a) => {
      const n = 'crypto.x509.parse_keypair';
      const certs = parseCerts(n, str(n, a, 0));
      const keyText = str(n, a, 1);
      const keyPem = keyText.includes('-----BEGIN') ? keyText : Buffer.from(keyText, 'base64').toString('utf8');
      try {
        createPrivateKey(keyPem);
      } catch (e) {
        throw builtinErr(n, `tls: failed to parse private key: ${(e as Error).message}`);
      }
      if (!certs.length) throw builtinErr(n, 'tls: failed to find any PEM data in certificate input');
      return fromJSON({ Certificate: certs.map((c) => c.raw.toString('base64')), PrivateKey: {}, Leaf: null });
    },
  },
  'crypto.x509.parse_rsa_private_key': {
    arity: 1,
    fn: (a) => {
      const n = 'crypto.x509.parse_rsa_private_key';
      const s = str(n, a, 0);
      const pem = s.includes('-----BEGIN') ? s : (() => {
        if (!/^[A-Za-z0-9+/=\s]*$/.test(s) || s.length % 4) throw builtinErr(n, 'illegal base64 data at input byte 4');
        return Buffer.from(s, 'base64').toString('utf8');
      })();
      try {
        return fromJSON(createPrivateKey(pem).export({ format: 'jwk' }));
      } catch (e) {
        throw builtinErr(n, (e as Error).message);
      }
    },
  },
  'crypto.parse_private_keys': {
    arity: 1,
    fn: (a) => {
      const n = 'crypto.parse_private_keys';
      const s = str(n, a, 0);
      if (s === '') return null;
      const text = s.includes('-----BEGIN') ? s : /^[A-Za-z0-9+/=\s]+$/.test(s) ? Buffer.from(s, 'base64').toString('utf8') : s;
      const out: Value[] = [];
      for (const m of text.matchAll(PEM_RE)) {
        if (!/PRIVATE KEY/.test(m[1]!)) continue;
        try {
          out.push(fromJSON(createPrivateKey(m[0]).export({ format: 'jwk' })));
        } catch {
          /* not a key block we can read */
        }
      }
      return out;
    },
  },
};

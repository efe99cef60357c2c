import { createHash } from 'node:crypto';

/** The `critical.type` cosign writes in a simple-signing payload. */
export const SIMPLE_SIGNING_TYPE = 'cosign container image signature';
/** The predicate type of a cosign image signature in the new bundle format (a DSSE in-toto statement). */
export const SIGN_PREDICATE_TYPE = 'https://sigstore.dev/cosign/sign/v1';
/** DSSE payload type of in-toto statements. */
export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
/** in-toto statement types Skiff reads; it writes v1. */
export const STATEMENT_TYPES = ['https://in-toto.io/Statement/v1', 'https://in-toto.io/Statement/v0.1'];

/**
 * SimpleSigning is the payload of a cosign signature (containers/image's simple signing format, with
 * cosign's `critical.type`): the signed claim that `docker-manifest-digest` is the image.
 */
export interface SimpleSigning {
  critical: {
    identity: { 'docker-reference': string };
    image: { 'docker-manifest-digest': string };
    type: string;
  };
  optional: Record<string, unknown> | null;
}

/** buildSimpleSigning writes the payload bytes for `digest` in `repository` (`HOST/REPO`), in cosign's key order. */
export function buildSimpleSigning(repository: string, digest: string, annotations?: Record<string, string>): Buffer {
  const payload: SimpleSigning = {
    critical: { identity: { 'docker-reference': repository }, image: { 'docker-manifest-digest': digest }, type: SIMPLE_SIGNING_TYPE },
    optional: annotations && Object.keys(annotations).length ? annotations : null,
  };
  return Buffer.from(JSON.stringify(payload));
}

/** parseSimpleSigning reads a payload; it returns a reason instead when the bytes are not one. */
export function parseSimpleSigning(bytes: Uint8Array): SimpleSigning | string {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    return `the payload is not JSON (${(err as Error).message})`;
  }
  const c = (v as SimpleSigning)?.critical;
  if (typeof c?.image?.['docker-manifest-digest'] !== 'string') return 'the payload has no critical.image.docker-manifest-digest';
  if (c.type !== SIMPLE_SIGNING_TYPE) return `the payload's critical.type is "${String(c.type)}", not "${SIMPLE_SIGNING_TYPE}"`;
  return v as SimpleSigning;
}

/** Subject is an in-toto statement's subject: a name and its digests by algorithm. */
export interface Subject {
  name: string;
  digest: Record<string, string>;
}

/** Statement is an in-toto attestation statement. */
export interface Statement {
  _type: string;
  subject: Subject[];
  predicateType: string;
  predicate: unknown;
}

/** buildStatement writes an in-toto v1 statement about one subject (`sha256:HEX` digest). */
export function buildStatement(name: string, digest: string, predicateType: string, predicate: unknown): Buffer {
  const statement: Statement = {
    _type: STATEMENT_TYPES[0]!,
    subject: [{ name, digest: { [digest.slice(0, digest.indexOf(':'))]: digest.slice(digest.indexOf(':') + 1) } }],
    predicateType,
    predicate: predicate ?? {},
  };
  return Buffer.from(JSON.stringify(statement));
}

/** parseStatement reads an in-toto statement; it returns a reason instead when the bytes are not one. */
export function parseStatement(bytes: Uint8Array): Statement | string {
  let v: Statement;
  try {
    v = JSON.parse(Buffer.from(bytes).toString('utf8')) as Statement;
  } catch (err) {
    return `the in-toto statement is not JSON (${(err as Error).message})`;
  }
  if (!STATEMENT_TYPES.includes(v?._type)) return `the statement's _type is "${String(v?._type)}", not an in-toto statement`;
  if (!Array.isArray(v.subject) || typeof v.predicateType !== 'string') return 'the statement has no subject list or no predicateType';
  return v;
}

/** statementCovers tells whether a statement names `digest` (`sha256:HEX`) among its subjects. */
export function statementCovers(statement: Statement, digest: string): boolean {
  const [alg, hex] = [digest.slice(0, digest.indexOf(':')), digest.slice(digest.indexOf(':') + 1)];
  return statement.subject.some((s) => s?.digest?.[alg] === hex);
}

/** Envelope is a DSSE envelope in its JSON form (payload and signatures base64). */
export interface Envelope {
  payloadType: string;
  payload: string;
  signatures: Array<{ keyid?: string; sig: string }>;
}

/** pae is DSSE's pre-authentication encoding: what a DSSE signature signs. */
export function pae(payloadType: string, payload: Uint8Array): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${payload.length} `), payload]);
}

/** sha256Digest is `sha256:HEX` of some bytes, the form OCI digests take. */
export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** Cosign's `--type` shorthands for predicate types (`cosign attest --type`); anything else is taken as the URI itself. */
export const PREDICATE_TYPES: Record<string, string> = {
  slsaprovenance: 'https://slsa.dev/provenance/v0.2',
  slsaprovenance02: 'https://slsa.dev/provenance/v0.2',
  slsaprovenance1: 'https://slsa.dev/provenance/v1',
  link: 'https://in-toto.io/Link/v1',
  spdx: 'https://spdx.dev/Document',
  spdxjson: 'https://spdx.dev/Document',
  cyclonedx: 'https://cyclonedx.org/bom',
  vuln: 'https://cosign.sigstore.dev/attestation/vuln/v1',
  openvex: 'https://openvex.dev/ns',
  custom: 'https://cosign.sigstore.dev/attestation/v1',
};

/** predicateTypeOf maps a `--type` value to its predicate type URI. */
export function predicateTypeOf(type: string): string {
  return PREDICATE_TYPES[type] ?? type;
}

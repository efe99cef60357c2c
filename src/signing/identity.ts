import { RE2JS } from 're2js';

import { SkiffError } from '../util/errors.js';

/**
 * Identity is who may have signed, keyless: a certificate's subject (its email or URI SAN) and the
 * OIDC issuer that vouched for it, each exact or by regular expression. The field names are those
 * of Sigstore policy-controller's `keyless.identities[]`; cosign's flags map onto them
 * (`--certificate-identity` → subject, `--certificate-identity-regexp` → subjectRegExp, ...).
 */
export interface Identity {
  issuer?: string;
  subject?: string;
  issuerRegExp?: string;
  subjectRegExp?: string;
}

/** IdentityError means an identity is unusable as written (no subject or issuer, a bad regexp). */
export class IdentityError extends SkiffError {
  constructor(message: string) {
    super('identity_invalid', message);
  }
}

/** IdentityMatcher is an `Identity` compiled once; `match` says why a signer does not match, or undefined. */
export interface IdentityMatcher {
  identity: Identity;
  match(subject: string | undefined, issuer: string | undefined): string | undefined;
  describe(): string;
}

function compile(pattern: string, field: string): RE2JS {
  try {
    return RE2JS.compile(pattern);
  } catch (err) {
    throw new IdentityError(`${field} "${pattern}" is not a valid RE2 regular expression: ${(err as Error).message}`);
  }
}

/**
 * compileIdentity checks and compiles an identity. As cosign, a subject and an issuer are both
 * required (exact or regexp), and a regexp matches anywhere in the value unless anchored with `^...$`
 * (Go's `regexp.MatchString`, which cosign uses).
 */
export function compileIdentity(identity: Identity, where = 'identity'): IdentityMatcher {
  if (!identity.subject && !identity.subjectRegExp) throw new IdentityError(`${where}: set subject or subjectRegExp (cosign: --certificate-identity or --certificate-identity-regexp)`);
  if (!identity.issuer && !identity.issuerRegExp) throw new IdentityError(`${where}: set issuer or issuerRegExp (cosign: --certificate-oidc-issuer or --certificate-oidc-issuer-regexp)`);
  const subjectRe = identity.subjectRegExp ? compile(identity.subjectRegExp, `${where}.subjectRegExp`) : undefined;
  const issuerRe = identity.issuerRegExp ? compile(identity.issuerRegExp, `${where}.issuerRegExp`) : undefined;
  const check = (value: string | undefined, exact: string | undefined, re: RE2JS | undefined, what: string): string | undefined => {
    if (value === undefined) return `the certificate has no ${what}`;
    if (exact !== undefined && value !== exact) return `${what} "${value}" is not "${exact}"`;
    if (re && !re.matcher(value).find()) return `${what} "${value}" does not match /${re.pattern()}/`;
    return undefined;
  };
  return {
    identity,
    match: (subject, issuer) => check(subject, identity.subject, subjectRe, 'subject') ?? check(issuer, identity.issuer, issuerRe, 'issuer'),
    describe: () =>
      `subject ${identity.subject !== undefined ? `"${identity.subject}"` : `/${identity.subjectRegExp}/`} from issuer ${identity.issuer !== undefined ? `"${identity.issuer}"` : `/${identity.issuerRegExp}/`}`,
  };
}

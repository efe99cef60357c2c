import { readFile } from 'node:fs/promises';

import type { Command } from 'commander';

import { type BundleCheck, compileIdentity, type Identity, loadPrivateKey, loadPublicKey, parseTrustedRoot, type PrivateKey, type TrustedRoot } from '../signing/index.js';
import { CheckFailedError, SkiffError } from '../util/errors.js';

/** The verification flags `verify`, `verify-attestation` and `verify-blob` share, with cosign's names. */
export interface VerifyFlags {
  key?: string;
  certificateIdentity?: string;
  certificateIdentityRegexp?: string;
  certificateOidcIssuer?: string;
  certificateOidcIssuerRegexp?: string;
  trustedRoot?: string;
  insecureIgnoreSct?: boolean;
  insecureIgnoreTlog?: boolean;
}

/** addVerifyOptions adds cosign's verification flags: a key, or a keyless identity under a trusted root. */
export function addVerifyOptions(cmd: Command): Command {
  return cmd
    .option('--key <file>', 'the public key (PEM) the signature must verify with')
    .option('--certificate-identity <id>', 'keyless: the signing certificate\'s identity (email or URI SAN), exactly')
    .option('--certificate-identity-regexp <re>', 'keyless: the identity, by RE2 regular expression')
    .option('--certificate-oidc-issuer <url>', 'keyless: the OIDC issuer in the certificate, exactly')
    .option('--certificate-oidc-issuer-regexp <re>', 'keyless: the OIDC issuer, by RE2 regular expression')
    .option('--trusted-root <file>', 'Sigstore trusted_root.json (Fulcio CAs, Rekor keys, TSAs, CT logs); needed keyless, optional with --key')
    .option('--insecure-ignore-sct', 'keyless: accept a certificate without an embedded SCT')
    .option('--insecure-ignore-tlog', 'keyless: accept a bundle without a transparency log entry (an RFC 3161 timestamp must give the time)');
}

/** failed is how a verification command reports any problem: exit 1, as cosign does, naming the command. */
export function failed(command: string, err: unknown): CheckFailedError {
  if (err instanceof CheckFailedError) return err.message.startsWith(command) ? err : new CheckFailedError(`${command}: ${err.message}`, err.code);
  if (err instanceof SkiffError) return new CheckFailedError(`${command}: ${err.message}`, err.code);
  return new CheckFailedError(`${command}: ${err instanceof Error ? err.message : String(err)}`);
}

/** readText reads a file named by a flag; the message names the flag. */
export async function readText(path: string, flag: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new CheckFailedError(`${flag} ${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

/** readJson reads and parses a JSON file named by a flag. */
export async function readJson(path: string, flag: string): Promise<unknown> {
  const text = await readText(path, flag);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new CheckFailedError(`${flag} ${path}: not JSON (${(err as Error).message})`);
  }
}

/** loadTrustedRootFile reads `--trusted-root FILE`. */
export async function loadTrustedRootFile(path: string): Promise<TrustedRoot> {
  return parseTrustedRoot(await readJson(path, '--trusted-root'), path);
}

/**
 * checkFromFlags turns the flags into a verification: `--key` (with `--trusted-root` also checking any
 * log entries), or keyless with an identity and an issuer (each exact or regexp) and `--trusted-root`.
 */
export async function checkFromFlags(f: VerifyFlags): Promise<BundleCheck> {
  const keyless = [f.certificateIdentity, f.certificateIdentityRegexp, f.certificateOidcIssuer, f.certificateOidcIssuerRegexp].some((v) => v !== undefined);
  if (f.key && keyless) throw new CheckFailedError('give either --key or the --certificate-identity/--certificate-oidc-issuer flags, not both');
  const trustedRoot = f.trustedRoot ? await loadTrustedRootFile(f.trustedRoot) : undefined;
  if (f.key) return { kind: 'key', key: loadPublicKey(await readText(f.key, '--key'), f.key), trustedRoot };
  if (!keyless) throw new CheckFailedError('nothing to verify against: give --key PUB.pem, or --certificate-identity ID --certificate-oidc-issuer ISSUER --trusted-root FILE');
  if (!trustedRoot) throw new CheckFailedError('keyless verification needs --trusted-root FILE (Sigstore\'s trusted_root.json): Skiff does not fetch it');
  const identity: Identity = { subject: f.certificateIdentity, subjectRegExp: f.certificateIdentityRegexp, issuer: f.certificateOidcIssuer, issuerRegExp: f.certificateOidcIssuerRegexp };
  const flagNames = (msg: string) =>
    msg.replace('set subject or subjectRegExp', 'set --certificate-identity or --certificate-identity-regexp').replace('set issuer or issuerRegExp', 'set --certificate-oidc-issuer or --certificate-oidc-issuer-regexp');
  try {
    return { kind: 'keyless', trustedRoot, identities: [compileIdentity(identity, 'the certificate identity flags')], ignoreSct: f.insecureIgnoreSct, ignoreTlog: f.insecureIgnoreTlog };
  } catch (err) {
    throw new CheckFailedError(flagNames((err as Error).message));
  }
}

/** loadSigningKey reads `--key FILE`, decrypting cosign's encrypted keys with `$COSIGN_PASSWORD` (empty when unset, as cosign reads it). */
export async function loadSigningKey(path: string): Promise<PrivateKey> {
  return loadPrivateKey(await readText(path, '--key'), path, process.env.COSIGN_PASSWORD ?? '');
}

import { readFile } from 'node:fs/promises';

import type { Command } from 'commander';

import { IN_TOTO_PAYLOAD_TYPE, parseBundle, parseStatement, sha256Digest, statementCovers, verifyBundle } from '../../signing/index.js';
import { CheckFailedError } from '../../util/errors.js';
import { addVerifyOptions, checkFromFlags, failed, readJson, type VerifyFlags } from '../signing-flags.js';

/**
 * `skiff verify-blob --bundle BUNDLE.json [--key PUB.pem | --certificate-identity ID
 * --certificate-oidc-issuer ISSUER] [--trusted-root FILE] FILE`, as `cosign verify-blob`: exit 0
 * and "Verified OK" when the bundle's signature covers FILE, exit 1 with the reason otherwise.
 */
export function register(program: Command): void {
  addVerifyOptions(
    program
      .command('verify-blob')
      .description('verify a file against a Sigstore bundle (v0.1-v0.3), by key or keyless; exit 0 verified, 1 not')
      .argument('<file>', 'the signed file')
      .option('--bundle <file>', 'the Sigstore bundle (JSON), as `skiff sign-blob --bundle` or `cosign sign-blob --bundle` writes it'),
  ).action(async (file: string, opts: VerifyFlags & { bundle?: string }) => {
    try {
      if (!opts.bundle) throw new CheckFailedError('--bundle FILE is required: the Sigstore bundle to verify against');
      let artifact: Buffer;
      try {
        artifact = await readFile(file);
      } catch (err) {
        throw new CheckFailedError(`${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
      }
      const check = await checkFromFlags(opts);
      const bundle = await parseBundle(await readJson(opts.bundle, '--bundle'), opts.bundle);
      const result = await verifyBundle(bundle, check, artifact);
      if (result.dsse) {
        // A DSSE bundle signs a statement, not the file: the statement must name the file's digest.
        if (result.dsse.payloadType !== IN_TOTO_PAYLOAD_TYPE) throw new CheckFailedError(`${opts.bundle}: the DSSE payload is ${result.dsse.payloadType}, not an in-toto statement about ${file}`);
        const statement = parseStatement(result.dsse.payload);
        if (typeof statement === 'string') throw new CheckFailedError(`${opts.bundle}: ${statement}`);
        const digest = sha256Digest(artifact);
        if (!statementCovers(statement, digest)) throw new CheckFailedError(`${opts.bundle}: the statement's subjects do not include ${file} (${digest}): it was signed for other content`);
      }
      if (result.signer.kind === 'keyless') process.stderr.write(`Certificate subject: ${result.signer.subject}\nCertificate issuer URL: ${result.signer.issuer}\n`);
      process.stderr.write('Verified OK\n');
    } catch (err) {
      throw failed('skiff verify-blob', err);
    }
  });
}

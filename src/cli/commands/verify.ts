import type { Command } from 'commander';

import { verifyImage } from '../../signing/index.js';
import { CheckFailedError } from '../../util/errors.js';
import { addRegistryOptions, referenceArg, type RegistryFlags, registryFrom } from '../registry-options.js';
import { addVerifyOptions, checkFromFlags, failed, type VerifyFlags } from '../signing-flags.js';

/**
 * `skiff verify --key PUB.pem REF` (or keyless flags), as `cosign verify`: checks the `.sig` tag and
 * Sigstore bundle referrers of the digest REF names now, prints the verified payloads as a JSON
 * array on stdout, and exits exactly 0 (verified) or 1 (not, with every reason on stderr).
 */
export function register(program: Command): void {
  addRegistryOptions(
    addVerifyOptions(
      program
        .command('verify')
        .description('verify an artifact\'s signatures (cosign .sig tag and Sigstore bundle referrers); exit 0 verified, 1 not')
        .argument('<reference>', 'REGISTRY/REPO:TAG or REGISTRY/REPO@sha256:...'),
    ),
  ).action(async (refText: string, opts: RegistryFlags & VerifyFlags) => {
    let registry;
    try {
      const ref = referenceArg(refText, 'skiff verify');
      const check = await checkFromFlags(opts);
      registry = registryFrom(opts);
      const v = await verifyImage(registry, ref, check);
      if (v.signatures.length === 0) {
        const why = v.candidates === 0 ? `no signatures found (looked for tag ${v.digest.replace(':', '-')}.sig and Sigstore bundle referrers)` : `no signature verified:\n  ${v.reasons.join('\n  ')}`;
        throw new CheckFailedError(`${v.reference}: ${why}`);
      }
      process.stderr.write(`\nVerification for ${v.reference} --\nThe following checks were performed on each of these signatures:\n  - The cosign claims were validated\n`);
      process.stderr.write(check.kind === 'key'
        ? '  - The signatures were verified against the specified public key\n'
        : '  - Existence of the claims in the transparency log was verified offline\n  - The code-signing certificate was verified using trusted certificate authority certificates\n');
      process.stdout.write(`${JSON.stringify(v.signatures.map((s) => s.payload))}\n`);
    } catch (err) {
      throw failed('skiff verify', err);
    } finally {
      registry?.close();
    }
  });
}

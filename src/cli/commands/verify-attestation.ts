import type { Command } from 'commander';

import { predicateTypeOf, verifyImage } from '../../signing/index.js';
import { CheckFailedError } from '../../util/errors.js';
import { addRegistryOptions, referenceArg, type RegistryFlags, registryFrom } from '../registry-options.js';
import { addVerifyOptions, checkFromFlags, failed, type VerifyFlags } from '../signing-flags.js';

/**
 * `skiff verify-attestation --key PUB.pem [--type TYPE] REF`, as `cosign verify-attestation`: prints
 * each verified in-toto statement about the digest (one JSON object a line), exit 0; exit 1 if none.
 */
export function register(program: Command): void {
  addRegistryOptions(
    addVerifyOptions(
      program
        .command('verify-attestation')
        .description('verify an artifact\'s in-toto attestations and print their statements; exit 0 verified, 1 not')
        .argument('<reference>', 'REGISTRY/REPO:TAG or REGISTRY/REPO@sha256:...')
        .option('--type <type>', 'only attestations of this predicate type (cosign shorthand or URI)'),
    ),
  ).action(async (refText: string, opts: RegistryFlags & VerifyFlags & { type?: string }) => {
    let registry;
    try {
      const ref = referenceArg(refText, 'skiff verify-attestation');
      const check = await checkFromFlags(opts);
      registry = registryFrom(opts);
      const v = await verifyImage(registry, ref, check, { signatures: false, attestations: true });
      const wanted = opts.type ? predicateTypeOf(opts.type) : undefined;
      const found = v.attestations.filter((a) => !wanted || a.predicateType === wanted);
      if (found.length === 0) {
        const what = wanted ? `no verified attestation of type ${wanted}` : 'no verified attestation';
        throw new CheckFailedError(`${v.reference}: ${what}${v.reasons.length ? `:\n  ${v.reasons.join('\n  ')}` : v.candidates === 0 ? ' (none found)' : ''}`);
      }
      process.stderr.write(`\nVerification for ${v.reference} --\n`);
      for (const a of found) process.stdout.write(`${JSON.stringify(a.statement)}\n`);
    } catch (err) {
      throw failed('skiff verify-attestation', err);
    } finally {
      registry?.close();
    }
  });
}

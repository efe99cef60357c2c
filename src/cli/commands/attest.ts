import type { Command } from 'commander';

import { attestImage, predicateTypeOf } from '../../signing/index.js';
import { addRegistryOptions, referenceArg, registryFailure, type RegistryFlags, registryFrom } from '../registry-options.js';
import { loadSigningKey, readJson } from '../signing-flags.js';

/**
 * `skiff attest --key KEY --predicate FILE --type TYPE REF`, as `cosign attest --key`: an in-toto
 * statement about the digest REF names, in a DSSE envelope appended to the `sha256-HEX.att` tag (or a
 * bundle referrer with `--new-bundle-format`). `--type` takes cosign's shorthands or a URI.
 */
export function register(program: Command): void {
  addRegistryOptions(
    program
      .command('attest')
      .description('attach a signed in-toto attestation (DSSE) to an artifact, as cosign attest --key does')
      .argument('<reference>', 'REGISTRY/REPO:TAG or REGISTRY/REPO@sha256:...')
      .requiredOption('--key <file>', 'the private key (PEM; cosign\'s encrypted format with $COSIGN_PASSWORD)')
      .requiredOption('--predicate <file>', 'the predicate (JSON): SLSA provenance, an SBOM, ...')
      .option('--type <type>', 'predicate type: slsaprovenance, slsaprovenance1, spdxjson, cyclonedx, vuln, openvex, custom, or a URI', 'custom')
      .option('--new-bundle-format', 'store a Sigstore bundle (v0.3) as a referrer instead of the sha256-HEX.att tag'),
  ).action(async (refText: string, opts: RegistryFlags & { key: string; predicate: string; type: string; newBundleFormat?: boolean }) => {
    const ref = referenceArg(refText, 'skiff attest');
    const predicate = await readJson(opts.predicate, '--predicate');
    const key = await loadSigningKey(opts.key);
    const registry = registryFrom(opts);
    try {
      const done = await attestImage(registry, ref, { key, predicateType: predicateTypeOf(opts.type), predicate, newBundleFormat: opts.newBundleFormat });
      process.stdout.write(`${done.reference}\n`);
    } catch (err) {
      throw registryFailure('skiff attest', err);
    } finally {
      registry.close();
    }
  });
}

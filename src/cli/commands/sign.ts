import type { Command } from 'commander';

import { signImage } from '../../signing/index.js';
import { UsageError } from '../../util/errors.js';
import { addRegistryOptions, referenceArg, registryFailure, type RegistryFlags, registryFrom } from '../registry-options.js';
import { loadSigningKey } from '../signing-flags.js';

/**
 * `skiff sign --key KEY.pem REF`, as `cosign sign --key`: signs the digest REF names now, in cosign's
 * `sha256-HEX.sig` tag (appended to), or with `--new-bundle-format` as a Sigstore bundle referrer.
 * No transparency log: key signatures need none. Prints the signed reference `HOST/REPO@DIGEST`.
 */
export function register(program: Command): void {
  addRegistryOptions(
    program
      .command('sign')
      .description('sign an artifact in an OCI registry with a key, as cosign does (the .sig tag, or a bundle referrer)')
      .argument('<reference>', 'REGISTRY/REPO:TAG or REGISTRY/REPO@sha256:... (a tag is resolved and its digest signed)')
      .requiredOption('--key <file>', 'the private key (PEM: PKCS#8, SEC1, or cosign\'s encrypted format with $COSIGN_PASSWORD)')
      .option('--new-bundle-format', 'store a Sigstore bundle (v0.3, DSSE) as a referrer instead of the sha256-HEX.sig tag')
      .option('-a, --annotations <key=value>', 'a claim for the payload\'s optional section (repeatable)', (v: string, prev: string[]) => [...prev, v], []),
  ).action(async (refText: string, opts: RegistryFlags & { key: string; newBundleFormat?: boolean; annotations: string[] }) => {
    const ref = referenceArg(refText, 'skiff sign');
    const annotations: Record<string, string> = {};
    for (const a of opts.annotations) {
      const eq = a.indexOf('=');
      if (eq <= 0) throw new UsageError(`skiff sign: -a ${a}: expected KEY=VALUE`);
      annotations[a.slice(0, eq)] = a.slice(eq + 1);
    }
    if (opts.newBundleFormat && opts.annotations.length) throw new UsageError('skiff sign: -a goes into the simple-signing payload, which --new-bundle-format does not write');
    const key = await loadSigningKey(opts.key);
    const registry = registryFrom(opts);
    try {
      const signed = await signImage(registry, ref, { key, newBundleFormat: opts.newBundleFormat, annotations });
      const where = signed.tag ? `${signed.reference.slice(0, signed.reference.indexOf('@'))}:${signed.tag}` : `referrer ${signed.referrer}`;
      process.stderr.write(`Pushing signature to: ${where}\n`);
      process.stdout.write(`${signed.reference}\n`);
    } catch (err) {
      throw registryFailure('skiff sign', err);
    } finally {
      registry.close();
    }
  });
}

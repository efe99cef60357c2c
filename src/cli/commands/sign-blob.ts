import { readFile, writeFile } from 'node:fs/promises';

import type { Command } from 'commander';

import { signBlob } from '../../signing/index.js';
import { UsageError } from '../../util/errors.js';
import { loadSigningKey } from '../signing-flags.js';

/**
 * `skiff sign-blob --key KEY --bundle OUT FILE`, as `cosign sign-blob --key --bundle`: writes a v0.3
 * Sigstore bundle (message signature, the key's hint, no log entry) and prints the signature.
 */
export function register(program: Command): void {
  program
    .command('sign-blob')
    .description('sign a file with a key and write a Sigstore bundle (v0.3, no transparency log); prints the base64 signature')
    .argument('<file>', 'the file to sign')
    .requiredOption('--key <file>', 'the private key (PEM: PKCS#8, SEC1, or cosign\'s encrypted format with $COSIGN_PASSWORD)')
    .requiredOption('--bundle <file>', 'where to write the bundle (JSON)')
    .action(async (file: string, opts: { key: string; bundle: string }) => {
      let artifact: Buffer;
      try {
        artifact = await readFile(file);
      } catch (err) {
        throw new UsageError(`skiff sign-blob: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
      }
      const key = await loadSigningKey(opts.key);
      const bundle = signBlob(key, artifact);
      await writeFile(opts.bundle, JSON.stringify(bundle) + '\n');
      process.stderr.write(`Wrote bundle to file ${opts.bundle}\n`);
      process.stdout.write(`${bundle.messageSignature!.signature}\n`);
    });
}

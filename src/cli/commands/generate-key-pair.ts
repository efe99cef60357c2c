import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';

import type { Command } from 'commander';

import { generateKeyPair, type KeyAlgorithm } from '../../signing/index.js';
import { UsageError } from '../../util/errors.js';

/**
 * `skiff generate-key-pair`, as `cosign generate-key-pair`: writes `cosign.key` (cosign's encrypted
 * format under `$COSIGN_PASSWORD`, empty when unset) and `cosign.pub`, refusing to overwrite either.
 */
export function register(program: Command): void {
  program
    .command('generate-key-pair')
    .description('write a signing key pair: PREFIX.key (encrypted with $COSIGN_PASSWORD, as cosign does) and PREFIX.pub')
    .option('--output-key-prefix <prefix>', 'file name prefix', 'cosign')
    .option('--algorithm <alg>', 'ecdsa-p256 or ed25519', 'ecdsa-p256')
    .action(async (opts: { outputKeyPrefix: string; algorithm: string }) => {
      if (opts.algorithm !== 'ecdsa-p256' && opts.algorithm !== 'ed25519') throw new UsageError(`--algorithm ${opts.algorithm}: expected ecdsa-p256 or ed25519`);
      const pair = generateKeyPair(opts.algorithm as KeyAlgorithm, process.env.COSIGN_PASSWORD ?? '');
      const keyFile = `${opts.outputKeyPrefix}.key`;
      const pubFile = `${opts.outputKeyPrefix}.pub`;
      for (const path of [keyFile, pubFile]) if (existsSync(path)) throw new UsageError(`${path} already exists; move it away or pick another --output-key-prefix`);
      for (const [path, text, mode] of [[keyFile, pair.privatePem, 0o600], [pubFile, pair.publicPem, 0o644]] as const) {
        try {
          await writeFile(path, text, { flag: 'wx', mode });
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new UsageError(`${path} already exists; move it away or pick another --output-key-prefix`);
          throw err;
        }
      }
      process.stderr.write(`Private key written to ${keyFile}\nPublic key written to ${pubFile}\n`);
    });
}

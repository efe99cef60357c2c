import { readFile } from 'node:fs/promises';

import type { Command } from 'commander';

import { formatReference, isWasmModule, pushWasmModule } from '../../oci/index.js';
import { inspectModule, RuntimeError } from '../../runtime/index.js';
import { UsageError } from '../../util/errors.js';
import { addRegistryOptions, referenceArg, registryFailure, type RegistryFlags, registryFrom } from '../registry-options.js';

/**
 * `skiff push MODULE.wasm REGISTRY/REPO:TAG`: pushes a Wasm module in the CNCF Wasm OCI artifact
 * layout, straight to the registry (no Skiff server involved). The last line of stdout is the
 * manifest digest, for scripts: `DIGEST=$(skiff push m.wasm reg/app:v1 | tail -1)`.
 */
export function register(program: Command): void {
  addRegistryOptions(
    program
      .command('push')
      .description('push a Wasm module to an OCI registry (CNCF Wasm artifact layout); prints the manifest digest last')
      .argument('<module>', 'a .wasm file (a core WebAssembly module)')
      .argument('<reference>', 'where to push: REGISTRY/REPO:TAG, e.g. 127.0.0.1:5000/team/app:v1 (oci:// accepted)'),
  ).action(async (modulePath: string, refText: string, opts: RegistryFlags) => {
    const ref = referenceArg(refText, 'skiff push');
    if (ref.digest) throw new UsageError(`skiff push: ${refText} names a digest; push to a tag (REGISTRY/REPO:TAG), the digest is printed`);
    if (!ref.tag) throw new UsageError(`skiff push: ${refText} names no tag; push to REGISTRY/REPO:TAG`);
    let bytes: Uint8Array;
    try {
      bytes = await readFile(modulePath);
    } catch (err) {
      throw new UsageError(`skiff push: cannot read ${modulePath}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    if (!isWasmModule(bytes)) throw new UsageError(`skiff push: ${modulePath} is not a core WebAssembly module (it must start with \\0asm, version 1); nothing was pushed`);
    try {
      await inspectModule(bytes);
    } catch (err) {
      if (err instanceof RuntimeError) throw new UsageError(`skiff push: ${modulePath} is not a valid WebAssembly module (${err.message}); nothing was pushed`);
      throw err;
    }
    const registry = registryFrom(opts);
    try {
      const created = process.env.SOURCE_DATE_EPOCH ? new Date(Number(process.env.SOURCE_DATE_EPOCH) * 1000) : undefined;
      const pushed = await pushWasmModule(registry, ref, bytes, { created });
      process.stdout.write(`pushed ${formatReference(ref)} (module ${pushed.layer.digest}, ${pushed.layer.size} bytes)\n${pushed.manifest.digest}\n`);
    } catch (err) {
      throw registryFailure('skiff push', err);
    } finally {
      registry.close();
    }
  });
}

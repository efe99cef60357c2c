import { accessSync, constants } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * nativeBinary is the path of a helper program built from `native/NAME.c` by `npm run build`
 * (scripts/build-native.mjs), or undefined when it was not built (no C compiler on this host).
 * The same path serves `tsx src/...` and `node dist/...`: both sit two levels under the package root.
 */
export function nativeBinary(name: string): string | undefined {
  const path = fileURLToPath(new URL(`../../dist/native/${name}`, import.meta.url));
  try {
    accessSync(path, constants.X_OK);
    return path;
  } catch {
    return undefined;
  }
}

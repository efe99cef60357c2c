import { createHash, createPrivateKey, type KeyObject } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';

import type { Command } from 'commander';

import { buildBundle, type BundleEntry, BundleError, type LoadedBundle, loadEntries, readBundle, type VerificationOptions } from '../../policy/bundle/index.js';
import { RegoError, RegoErrors } from '../../policy/index.js';
import { describeError, engineFrom, type Loaded, mergeInto } from '../../policy/loader.js';
import { CheckFailedError, UsageError } from '../../util/errors.js';

/** BundleFlags are what `eval` and `test` take to read bundles (as `opa eval -b`). */
export interface BundleFlags {
  bundle?: string[];
  verificationKey?: string;
  verificationKeyId?: string;
  scope?: string;
}

/** bundleOptions adds `-b/--bundle` and the verification flags to a command. */
export function bundleOptions(cmd: Command): Command {
  return cmd
    .option('-b, --bundle <path>', 'an OPA bundle (.tar.gz or directory) to load (repeatable)', (v: string, prev: string[]) => [...prev, v], [])
    .option('--verification-key <file>', 'PEM public key the bundles must be signed with (without it, signatures are not checked, as with opa eval)')
    .option('--verification-key-id <id>', 'key id the bundle signatures must name')
    .option('--scope <scope>', 'scope the bundle signatures must carry');
}

function readKey(path: string, flag: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new UsageError(`${flag}: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/** dirEntries reads a bundle directory as its files (paths from the root), refusing links. */
function dirEntries(dir: string): BundleEntry[] {
  const out: BundleEntry[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      const abs = join(d, name);
      const st = lstatSync(abs);
      const rel = relative(dir, abs).split(sep).join('/');
      if (st.isSymbolicLink()) throw new BundleError('bundle_unsafe_entry', dir, rel, 'is a symbolic link; bundles hold regular files only');
      if (st.isDirectory()) walk(abs);
      else if (st.isFile()) out.push({ path: rel, bytes: readFileSync(abs) });
    }
  };
  walk(dir);
  return out;
}

/** loadBundlePath reads one bundle file or directory, checking its signature only when a key is given. */
export async function loadBundlePath(path: string, flags: BundleFlags, regoVersion: 0 | 1): Promise<LoadedBundle> {
  const verification: VerificationOptions | undefined = flags.verificationKey ? { publicKey: readKey(flags.verificationKey, '--verification-key'), keyId: flags.verificationKeyId, scope: flags.scope } : undefined;
  const opts = { name: path, verification, skipVerification: !verification, regoVersion, filePrefix: `${path}:` };
  try {
    if (statSync(path).isDirectory()) return await loadEntries(dirEntries(path), opts, '');
    return await readBundle(readFileSync(path), opts);
  } catch (e) {
    if (e instanceof BundleError) throw new CheckFailedError(e.message, e.code);
    throw new UsageError(`cannot read bundle ${path}: ${(e as Error).message}`);
  }
}

/** withBundles adds the modules and data of `flags.bundle` to what `-d` loaded. */
export async function withBundles(loaded: Loaded, flags: BundleFlags, regoVersion: 0 | 1): Promise<Loaded> {
  for (const path of flags.bundle ?? []) {
    const b = await loadBundlePath(path, flags, regoVersion);
    loaded.modules.push(...b.modules.map((m) => ({ file: m.file, text: m.text, regoVersion: m.regoVersion })));
    mergeInto(loaded.data, [], b.data as never);
  }
  return loaded;
}

function signingKey(path: string): KeyObject {
  const pem = readKey(path, '--signing-key');
  try {
    return createPrivateKey(pem);
  } catch (e) {
    throw new UsageError(`--signing-key: ${path} is not a PEM private key (${(e as Error).message}); encrypted keys are not supported`);
  }
}

/** registerBuild adds `skiff policy build DIR -o BUNDLE.tar.gz [--signing-key KEY.pem]` under `policy`. */
export function registerBuild(policy: Command): void {
  policy
    .command('build')
    .description('Build an OPA bundle from a directory (like `opa build -b DIR`), signed with --signing-key')
    .argument('<dir>', 'bundle directory: .rego modules, data.json/data.yaml files (placed at their folder\'s path), an optional .manifest')
    .option('-o, --output <file>', 'where to write the bundle', 'bundle.tar.gz')
    .option('--signing-key <file>', 'PEM private key: ES256 for P-256, ES384 for P-384, ES512 for P-521, RS256 for RSA, EdDSA for Ed25519')
    .option('--key-id <id>', 'key id written into the signature (JWS kid), as opa build\'s --verification-key-id', 'default')
    .option('--scope <scope>', 'scope claim of the signature')
    .option('-r, --revision <revision>', 'the manifest revision')
    .option('--v0', 'the modules are Rego v0 (recorded as rego_version 0 unless the .manifest says otherwise)')
    .option('--v0-compatible', 'the same as --v0 (opa\'s name for it)')
    .action(async (dir: string, opts: { output: string; signingKey?: string; keyId: string; scope?: string; revision?: string; v0?: boolean; v0Compatible?: boolean }) => {
      let isDir = false;
      try {
        isDir = statSync(dir).isDirectory();
      } catch {
        isDir = false;
      }
      if (!isDir) throw new UsageError(`${dir} is not a directory: skiff policy build packs a bundle directory`);
      const key = opts.signingKey ? signingKey(opts.signingKey) : undefined;
      let built;
      try {
        built = await buildBundle(dir, { revision: opts.revision, regoVersion: opts.v0 || opts.v0Compatible ? 0 : 1, signingKey: key, keyId: opts.keyId, scope: opts.scope, issuer: 'skiff' });
      } catch (e) {
        if (e instanceof BundleError) throw new CheckFailedError(e.message, e.code);
        throw e;
      }
      // opa build compiles what it packs: a bundle that would not activate is not written
      const sources = new Map(built.modules.map((m) => [join(dir, m.path), m.text]));
      try {
        engineFrom({ modules: built.modules.map((m) => ({ file: join(dir, m.path), text: m.text, regoVersion: m.regoVersion })), data: Object.create(null) as never }).compile();
      } catch (e) {
        if (e instanceof RegoError || e instanceof RegoErrors) throw new CheckFailedError(describeError(e, sources));
        throw e;
      }
      writeFileSync(opts.output, built.bytes);
      const digest = `sha256:${createHash('sha256').update(built.bytes).digest('hex')}`;
      process.stdout.write(`wrote ${opts.output}: ${built.modules.length} module(s), revision ${JSON.stringify(built.manifest.revision)}, ${built.signed ? 'signed' : 'unsigned'}\n${digest}\n`);
    });
}

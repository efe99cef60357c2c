import type { KeyObject } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';

import { type BundleEntry, writeArchive } from './archive.js';
import { type RawObject, rawToJSONText } from './canonical-json.js';
import { BundleError } from './errors.js';
import { type Manifest, manifestJSON, parseManifest } from './manifest.js';
import { insertData, loadEntries } from './reader.js';
import { fileDigest, parseStructured, type SignedFile, signFiles, type SignOptions } from './signature.js';

/** BuildOptions shape the bundle `skiff policy build` writes. */
export interface BuildOptions extends SignOptions {
  /** the manifest's revision (overrides the directory's .manifest) */
  revision?: string;
  /** Rego version recorded in the manifest when the directory's .manifest sets none (default 1, as opa 1.x) */
  regoVersion?: 0 | 1;
  /** a private key: the bundle gets a `.signatures.json` over every file */
  signingKey?: KeyObject;
}

/** BuiltBundle is the gzipped bundle and what went into it. */
export interface BuiltBundle {
  bytes: Buffer;
  manifest: Manifest;
  /** module paths (from the bundle root) */
  modules: Array<{ path: string; text: string; regoVersion: 0 | 1 }>;
  signed: boolean;
}

const DATA_FILES = new Set(['data.json', 'data.yaml', 'data.yml']);

/** sourceFiles lists what a bundle directory contributes, refusing links (a bundle holds regular files only). */
function sourceFiles(dir: string): Array<{ path: string; abs: string }> {
  const out: Array<{ path: string; abs: string }> = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      const abs = join(d, name);
      const rel = relative(dir, abs).split(sep).join('/');
      const st = lstatSync(abs);
      if (st.isSymbolicLink()) throw new BundleError('bundle_unsafe_entry', dir, rel, 'is a symbolic link; copy the file into the bundle directory');
      if (st.isDirectory()) {
        if (!name.startsWith('.')) walk(abs);
        continue;
      }
      if (!st.isFile()) continue;
      if (rel === '.manifest' || name.endsWith('.rego') || DATA_FILES.has(name)) out.push({ path: rel, abs });
    }
  };
  walk(dir);
  return out;
}

/**
 * buildBundle packs a directory the way `opa build -b DIR` does: every data file merged into one
 * `/data.json`, each module at its path, a `/.manifest` (the directory's own, with `revision` and
 * `rego_version` filled in) and, with a signing key, a `/.signatures.json` whose JWS lists every
 * file's SHA-256 (modules over their bytes, data and manifest over their canonical JSON). The
 * result is read back through `readBundle`'s checks before it is returned.
 */
export async function buildBundle(dir: string, opts: BuildOptions = {}): Promise<BuiltBundle> {
  const name = dir;
  const files = sourceFiles(dir);
  const manifestFile = files.find((f) => f.path === '.manifest');
  const base = manifestFile ? parseManifest(JSON.parse(JSON.stringify(parseStructuredPlain(manifestFile, name))), name) : parseManifest({}, name);
  const manifest: Manifest = { ...base, revision: opts.revision ?? base.revision, regoVersion: base.regoVersion ?? opts.regoVersion ?? 1 };
  const data: RawObject = new Map();
  const modules: BundleEntry[] = [];
  for (const f of files) {
    const bytes = readFileSync(f.abs);
    if (f.path.endsWith('.rego')) modules.push({ path: f.path, bytes });
    else if (f.path !== '.manifest') insertData(data, f.path.includes('/') ? f.path.slice(0, f.path.lastIndexOf('/')).split('/') : [], parseStructured(f.path, bytes, name), f.path, name);
  }
  const dataEntry: BundleEntry = { path: 'data.json', bytes: Buffer.from(rawToJSONText(data) + '\n') };
  const manifestEntry: BundleEntry = { path: '.manifest', bytes: Buffer.from(JSON.stringify(manifestJSON(manifest)) + '\n') };
  const entries = [dataEntry, ...modules, manifestEntry];
  // the same checks a reader makes (roots, parse, data), before anything is written
  const loaded = await loadEntries(entries, { name, regoVersion: manifest.regoVersion ?? 1, filePrefix: '' }, '');
  const out: Array<{ name: string; bytes: Uint8Array }> = [dataEntry, ...modules].map((e) => ({ name: `/${e.path}`, bytes: e.bytes }));
  if (opts.signingKey) {
    const signed: SignedFile[] = [...modules, dataEntry, manifestEntry].map((e) => ({ name: e.path, hash: fileDigest(e.path, e.bytes, 'SHA-256', name), algorithm: 'SHA-256' }));
    const token = await signFiles(signed, opts.signingKey, opts);
    out.push({ name: '/.signatures.json', bytes: Buffer.from(JSON.stringify({ signatures: [token] }, null, 1)) });
  }
  out.push({ name: '/.manifest', bytes: manifestEntry.bytes });
  return { bytes: await writeArchive(out), manifest, modules: loaded.modules.map((m) => ({ path: m.path, text: m.text, regoVersion: m.regoVersion })), signed: !!opts.signingKey };
}

function parseStructuredPlain(f: { path: string; abs: string }, name: string): unknown {
  return JSON.parse(rawToJSONText(parseStructured(f.path, readFileSync(f.abs), name)));
}

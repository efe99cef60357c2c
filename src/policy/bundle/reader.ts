import { createHash } from 'node:crypto';

import { parseModule } from '../ast/parser.js';
import { RegoError, RegoErrors } from '../errors.js';

import { type BundleEntry, type BundleLimits, DEFAULT_BUNDLE_LIMITS, readArchive } from './archive.js';
import { type RawJSON, type RawObject, rawToPlain } from './canonical-json.js';
import { BundleError } from './errors.js';
import { type Manifest, parseManifest, regoVersionOf, rootContains } from './manifest.js';
import { fileDigest, isStructured, parseStructured, type SignatureInfo, SIGNATURES_FILE, type VerificationOptions, verifySignatures } from './signature.js';

/** BundleModule is one Rego file of a bundle. */
export interface BundleModule {
  /** path inside the bundle (`authz/policy.rego`) */
  path: string;
  /** the file name given to the engine, so errors name the bundle too (`bundle:NAME/authz/policy.rego`) */
  file: string;
  text: string;
  regoVersion: 0 | 1;
  /** the package, as segments under `data` */
  pkg: string[];
}

/** LoadedBundle is a bundle read, verified and checked, ready to load into an engine. */
export interface LoadedBundle {
  name: string;
  /** `sha256:` of the gzipped bytes */
  digest: string;
  manifest: Manifest;
  modules: BundleModule[];
  /** base documents, merged from every data file at its directory's path */
  data: Record<string, unknown>;
  /** the verified signature, when the bundle was signed and a key was given */
  signature?: SignatureInfo;
  /** every file in the bundle (paths from its root) */
  files: string[];
}

/** ReadOptions say how one bundle is read. */
export interface ReadOptions {
  /** the bundle's name in errors and module file names */
  name: string;
  /** the key the bundle must be signed with; without it, a signed bundle is refused (as OPA does) unless `skipVerification` */
  verification?: VerificationOptions;
  /** read a signed bundle without checking its signature (`opa eval -b` does the same) */
  skipVerification?: boolean;
  limits?: Partial<BundleLimits>;
  /** Rego version of modules the manifest says nothing about (default 1) */
  regoVersion?: 0 | 1;
  /** prefix of engine file names (default `bundle:NAME/`) */
  filePrefix?: string;
}

const DATA_FILES = new Set(['data.json', 'data.yaml', 'data.yml']);

const baseName = (p: string): string => p.slice(p.lastIndexOf('/') + 1);
const dirSegments = (p: string): string[] => (p.includes('/') ? p.slice(0, p.lastIndexOf('/')).split('/') : []);

/**
 * readBundle unpacks a gzipped OPA bundle, verifies its signature, parses its manifest, data and
 * modules, and checks the manifest's roots, as OPA activates one. Every refusal is a BundleError
 * naming the bundle and the file.
 */
export async function readBundle(bytes: Uint8Array, opts: ReadOptions): Promise<LoadedBundle> {
  const limits = { ...DEFAULT_BUNDLE_LIMITS, ...opts.limits };
  const entries = await readArchive(bytes, opts.name, limits);
  return loadEntries(entries, opts, `sha256:${createHash('sha256').update(bytes).digest('hex')}`);
}

/** loadEntries does readBundle's work on files already unpacked (or read from a directory). */
export async function loadEntries(entries: BundleEntry[], opts: ReadOptions, digest: string): Promise<LoadedBundle> {
  const name = opts.name;
  const sigEntry = entries.find((e) => e.path === SIGNATURES_FILE);
  const files = entries.filter((e) => e !== sigEntry);
  const parsed = new Map<string, RawJSON>();
  const structured = (e: BundleEntry): RawJSON => {
    let v = parsed.get(e.path);
    if (v === undefined) parsed.set(e.path, (v = parseStructured(e.path, e.bytes, name)));
    return v;
  };
  let signature: SignatureInfo | undefined;
  if (sigEntry && opts.verification) {
    signature = await verifySignatures(sigEntry.bytes, name, opts.verification);
    checkSignedFiles(files, signature, name, structured);
  } else if (sigEntry && !opts.skipVerification) {
    throw new BundleError('bundle_signature_invalid', name, SIGNATURES_FILE, 'the bundle is signed but no verification key is configured; give the public key (spec.verification.publicKey) so the signature can be checked');
  } else if (!sigEntry && opts.verification && opts.verification.required !== false) {
    throw new BundleError('bundle_signature_missing', name, undefined, `the bundle has no ${SIGNATURES_FILE} but a signature is required; sign it (skiff policy build --signing-key, opa build --signing-key) or set spec.verification.required: false`);
  }

  const manifestEntry = files.find((e) => e.path === '.manifest');
  const manifest = manifestEntry ? parseManifest(rawToPlain(structured(manifestEntry)), name) : parseManifest({}, name);
  if (manifest.wasm?.length) throw new BundleError('bundle_unsupported', name, '.manifest', 'the bundle resolves entrypoints to Wasm modules (opa build -t wasm); Skiff evaluates Rego: build it with the default rego target');
  if (files.some((e) => e.path === 'patch.json')) throw new BundleError('bundle_unsupported', name, 'patch.json', 'delta bundles are not supported: serve a snapshot bundle');

  const data: RawObject = new Map();
  const modules: BundleModule[] = [];
  const prefix = opts.filePrefix ?? `bundle:${name}/`;
  for (const e of [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    if (e.path.endsWith('.rego')) modules.push(parseBundleModule(e, manifest, opts.regoVersion ?? 1, prefix, name));
    else if (DATA_FILES.has(baseName(e.path))) {
      const v = isStructured(e.path) ? structured(e) : parseStructured(e.path, e.bytes, name);
      insertData(data, dirSegments(e.path), v, e.path, name);
    }
  }
  checkRoots(manifest, modules, data, name);
  return { name, digest, manifest, modules, data: rawToPlain(data) as Record<string, unknown>, ...(signature ? { signature } : {}), files: entries.map((e) => e.path) };
}

/** checkSignedFiles refuses a bundle whose files differ from what its signature lists: one added, removed or changed. */
function checkSignedFiles(files: BundleEntry[], sig: SignatureInfo, name: string, structured: (e: BundleEntry) => RawJSON): void {
  const listed = new Map(sig.files.map((f) => [f.name, f]));
  for (const e of files) {
    const f = listed.get(e.path);
    if (!f) throw new BundleError('bundle_files_mismatch', name, e.path, 'is not covered by the bundle signature (a file was added after signing)');
    const got = fileDigest(e.path, e.bytes, f.algorithm, name, isStructured(e.path) ? structured(e) : undefined);
    if (got !== f.hash) throw new BundleError('bundle_files_mismatch', name, e.path, `does not match its signed digest (${f.algorithm} ${got}, signed ${f.hash}): the file was changed after signing`);
    listed.delete(e.path);
  }
  if (listed.size) {
    const missing = [...listed.keys()];
    throw new BundleError('bundle_files_mismatch', name, missing[0], `the signature covers ${missing.length === 1 ? 'a file' : 'files'} the bundle does not hold (${missing.join(', ')}): a file was removed after signing`);
  }
}

function parseBundleModule(e: BundleEntry, manifest: Manifest, fallback: 0 | 1, prefix: string, name: string): BundleModule {
  const text = Buffer.from(e.bytes).toString('utf8');
  const regoVersion = regoVersionOf(manifest, e.path, fallback, name);
  const file = prefix + e.path;
  try {
    const m = parseModule(file, text, regoVersion);
    return { path: e.path, file, text, regoVersion, pkg: m.pkg[0] === 'data' ? m.pkg.slice(1) : m.pkg };
  } catch (err) {
    if (err instanceof RegoError || err instanceof RegoErrors) {
      const first = err instanceof RegoErrors ? err.errors[0] : err;
      const where = first?.loc ? `${e.path}:${first.loc.row}` : e.path;
      const detail = err instanceof RegoErrors ? err.errors.map((x) => `${x.loc ? `line ${x.loc.row}: ` : ''}${x.code}: ${x.detail}`).join('; ') : `${err.code}: ${err.detail}`;
      throw new BundleError('bundle_parse_error', name, where, `${detail} (read as Rego v${regoVersion}${regoVersion === 1 ? '; a v0 bundle needs "rego_version": 0 in .manifest' : ''})`, { cause: err });
    }
    throw err;
  }
}

/** insertData merges one data file's value at its directory's path, as OPA merges bundle data. */
export function insertData(root: RawObject, path: string[], value: RawJSON, file: string, name: string): void {
  if (!path.length && !(value instanceof Map)) throw new BundleError('bundle_data_invalid', name, file, 'data at the bundle root must be a JSON object');
  let cur = root;
  for (const seg of path.slice(0, -1)) {
    let next = cur.get(seg);
    if (next === undefined) cur.set(seg, (next = new Map()));
    if (!(next instanceof Map)) throw new BundleError('bundle_data_invalid', name, file, `its path /${path.join('/')} crosses a value another data file set`);
    cur = next;
  }
  if (!path.length) return mergeObjects(cur, value as RawObject, file, name, '');
  const last = path[path.length - 1]!;
  const prev = cur.get(last);
  if (prev === undefined) cur.set(last, value);
  else if (prev instanceof Map && value instanceof Map) mergeObjects(prev, value, file, name, `/${path.join('/')}`);
  else throw new BundleError('bundle_data_invalid', name, file, `its value at /${path.join('/')} conflicts with another data file`);
}

function mergeObjects(into: RawObject, from: RawObject, file: string, name: string, at: string): void {
  for (const [k, v] of from) {
    const prev = into.get(k);
    if (prev === undefined) into.set(k, v);
    else if (prev instanceof Map && v instanceof Map) mergeObjects(prev, v, file, name, `${at}/${k}`);
    else throw new BundleError('bundle_data_invalid', name, file, `its value at ${at}/${k} conflicts with another data file`);
  }
}

/** checkRoots refuses packages and data outside the manifest's roots, as OPA does when it activates a bundle. */
function checkRoots(manifest: Manifest, modules: BundleModule[], data: RawObject, name: string): void {
  const roots = manifest.roots;
  const within = (p: string) => roots.some((r) => rootContains(r, p));
  for (const m of modules) {
    if (!within(m.pkg.join('/'))) throw new BundleError('bundle_roots', name, m.path, `package ${m.pkg.join('.')} is outside the manifest's roots (${roots.map((r) => JSON.stringify(r)).join(', ')})`);
  }
  const walk = (node: RawJSON, path: string[]): void => {
    const p = path.join('/');
    if (path.length && within(p)) return;
    if (node instanceof Map && (!path.length || roots.some((r) => rootContains(p, r)))) {
      for (const [k, v] of node) walk(v, [...path, k]);
      return;
    }
    throw new BundleError('bundle_roots', name, undefined, `data at /${p} is outside the manifest's roots (${roots.map((r) => JSON.stringify(r)).join(', ')})`);
  };
  walk(data, []);
}

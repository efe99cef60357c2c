import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';

import { cli, REPO, startSkiff } from '../helpers/skiff-process.js';

/**
 * The certificate library (and the Reflect polyfill it needs) costs a noticeable share of a
 * command's start-up, so only mTLS may load it: it must be reachable from the CLI only through a
 * dynamic import, and the common commands and a server without a mesh listener must not load it.
 */
const LIBRARY = ['@peculiar/x509', 'reflect-metadata'];
const DIST = join(REPO, 'dist');

interface Imports {
  /** Relative or bare specifiers loaded when the module loads. */
  static: string[];
  /** Specifiers of `import(...)` calls with a string literal. */
  dynamic: string[];
}

/** importsOf lists a compiled module's imports, as written (the compiled JS: type-only imports are gone). */
function importsOf(file: string): Imports {
  const src = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true, ts.ScriptKind.JS);
  const out: Imports = { static: [], dynamic: [] };
  for (const st of src.statements) {
    if ((ts.isImportDeclaration(st) || ts.isExportDeclaration(st)) && st.moduleSpecifier && ts.isStringLiteral(st.moduleSpecifier)) out.static.push(st.moduleSpecifier.text);
  }
  const visit = (node: ts.Node): void => {
    if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const arg = node.arguments[0];
      out.dynamic.push(arg && ts.isStringLiteralLike(arg) ? arg.text : '<computed>');
    }
    ts.forEachChild(node, visit);
  };
  visit(src);
  return out;
}

/** staticGraph follows the static imports of dist/ from an entry: the files loaded with it, and the packages they import. */
function staticGraph(entry: string): { files: Map<string, Imports>; packages: Set<string> } {
  const files = new Map<string, Imports>();
  const packages = new Set<string>();
  const todo = [entry];
  while (todo.length) {
    const file = todo.pop()!;
    if (files.has(file)) continue;
    const imports = importsOf(file);
    files.set(file, imports);
    for (const spec of imports.static) {
      if (spec.startsWith('.')) todo.push(resolve(dirname(file), spec));
      else packages.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
    }
  }
  return { files, packages };
}

const logs = mkdtempSync(join(tmpdir(), 'skiff-imports-'));
afterAll(() => rmSync(logs, { recursive: true, force: true }));
let runs = 0;

/** recording returns the environment that has a process log every module it resolves, and a reader of that log. */
function recording(): { env: Record<string, string>; loaded: () => string[] } {
  const file = join(logs, `run-${++runs}.log`);
  const hook = pathToFileURL(join(REPO, 'test', 'helpers', 'record-imports.mjs')).href;
  return {
    env: { SKIFF_IMPORT_LOG: file, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${hook}`.trim() },
    loaded: () => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []),
  };
}

const library = (urls: string[]) => urls.filter((u) => LIBRARY.some((p) => u.includes(`/node_modules/${p}/`)));

describe('the certificate library is loaded only to sign certificates', () => {
  it('is reachable from the CLI entry only through the dynamic import in gateway/mtls/library.js', () => {
    const { files, packages } = staticGraph(join(DIST, 'cli', 'main.js'));
    // The graph is the real one: the server and the mesh modules are in it, statically.
    expect(files.has(join(DIST, 'server', 'skiff.js'))).toBe(true);
    expect(files.has(join(DIST, 'gateway', 'mtls', 'ca.js'))).toBe(true);
    expect(files.has(join(DIST, 'gateway', 'mtls', 'library.js'))).toBe(true);
    expect(packages.has('commander')).toBe(true);
    for (const p of LIBRARY) expect(packages.has(p)).toBe(false);
    const importers = [...files].filter(([, i]) => i.dynamic.some((d) => LIBRARY.includes(d))).map(([f]) => f.slice(DIST.length + 1));
    expect(importers).toEqual(['gateway/mtls/library.js']);
    expect(files.get(join(DIST, 'gateway', 'mtls', 'library.js'))!.dynamic).toEqual(['reflect-metadata', '@peculiar/x509']);
  });

  it('is not loaded by skiff --help, skiff version or a client command', async () => {
    for (const args of [['--help'], ['version'], ['get', 'functions', '--server', 'http://127.0.0.1:9']]) {
      const rec = recording();
      const r = await cli(args, { env: rec.env });
      expect(r.stderr).not.toContain('record-imports');
      const loaded = rec.loaded();
      // The log is written (the CLI itself is in it), and the library is not.
      expect(loaded.some((u) => u.endsWith('/dist/cli/main.js'))).toBe(true);
      expect(library(loaded)).toEqual([]);
    }
  });

  it('is not loaded by skiff up without a mesh listener once the API certificate exists, and is with one', async () => {
    // A first start signs the API's serving certificate (on a thread of its own); a restart reads the
    // files back with Node's own X.509 support and never loads the library.
    const first = await startSkiff({ demo: true });
    await first.stop();
    expect(existsSync(join(first.dataDir, 'ca', 'api.crt'))).toBe(true);
    const plain = recording();
    const s = await startSkiff({ demo: true, dataDir: first.dataDir, env: plain.env });
    try {
      expect(plain.loaded().some((u) => u.endsWith('/dist/server/skiff.js'))).toBe(true);
      expect(library(plain.loaded())).toEqual([]);
    } finally {
      await s.stop();
    }
    const meshed = recording();
    const m = await startSkiff({ args: ['--mesh', '127.0.0.1:0'], env: meshed.env });
    try {
      // Resolved again by each use (Node hands back the module it already loaded): the polyfill first.
      expect([...new Set(library(meshed.loaded()).map((u) => LIBRARY.find((p) => u.includes(`/node_modules/${p}/`))))]).toEqual(['reflect-metadata', '@peculiar/x509']);
      expect(existsSync(join(m.dataDir, 'ca', 'ca.crt'))).toBe(true);
    } finally {
      await m.stop();
    }
  });

  it('still checks --trust-domain at start-up, without --mesh', async () => {
    const dataDir = mkdtempSync(join(logs, 'data-'));
    const r = await cli(['up', '--data-dir', dataDir, '--api', '127.0.0.1:0', '--gateway', '127.0.0.1:0', '--trust-domain', 'Bad Domain']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/"spiffe:\/\/Bad Domain\/ns\/skiff-system\/node\/[^"]+" is not a valid SPIFFE ID: use a lower-case trust domain/);
    expect(r.stdout).not.toContain('skiff ready');
  });
});

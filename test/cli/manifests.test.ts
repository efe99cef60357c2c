import { mkdirSync,mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect,it } from 'vitest';

import { ManifestError,readManifests, resolveModuleRef } from '../../src/manifests/index.js';

function dir(files: Record<string, string>): string {
  const d = mkdtempSync(join(tmpdir(), 'skiff-manifests-'));
  for (const [n, t] of Object.entries(files)) writeFileSync(join(d, n), t);
  return d;
}

describe('manifest reading', () => {
  it('reads multi-document YAML, JSON and List wrappers from a directory in name order', () => {
    const d = dir({
      'b.yaml': 'kind: Function\nmetadata: {name: b}\n---\n# comment only\n---\nkind: Route\nmetadata: {name: r}\n',
      'a.json': JSON.stringify({ kind: 'List', items: [{ kind: 'Function', metadata: { name: 'a1' } }, { kind: 'Function', metadata: { name: 'a2' } }] }),
      'ignored.txt': 'x',
    });
    const objs = readManifests([d]);
    expect(objs.map((o) => o.object.metadata.name)).toEqual(['a1', 'a2', 'b', 'r']);
    expect(objs[2]!.source).toBe(join(d, 'b.yaml'));
  });

  it('names file, line and column for malformed YAML, and reports every bad file', () => {
    const d = dir({ 'bad.yaml': 'kind: Function\nmetadata:\n  name: [unclosed\n', 'dup.yaml': 'a: 1\na: 2\n' });
    try {
      readManifests([join(d, 'bad.yaml'), join(d, 'dup.yaml'), join(d, 'missing.yaml')]);
      throw new Error('expected an error');
    } catch (err) {
      expect(err).toBeInstanceOf(ManifestError);
      const msg = (err as Error).message;
      expect(msg).toMatch(/bad\.yaml:\d+:\d+: /);
      expect(msg).toMatch(/dup\.yaml:2:1: .*unique/i);
      expect(msg).toMatch(/missing\.yaml: no such file/);
    }
  });

  it('refuses documents that are not objects', () => {
    const d = dir({ 'x.yaml': '- a\n- b\n' });
    expect(() => readManifests([join(d, 'x.yaml')])).toThrow(/x\.yaml:1: a manifest document must be an object/);
  });

  it('reads stdin', () => {
    const objs = readManifests(['-'], () => 'kind: Function\nmetadata: {name: s}\n');
    expect(objs[0]!.source).toBe('<stdin>');
  });

  it('resolves a Function module path relative to its manifest', () => {
    const o = { kind: 'Function', spec: { module: './m.wasm' } };
    resolveModuleRef(o, '/srv/app');
    expect(o.spec.module).toBe('/srv/app/m.wasm');
    const url = { kind: 'Function', spec: { module: 'https://example.test/m.wasm' } };
    resolveModuleRef(url, '/srv');
    expect(url.spec.module).toBe('https://example.test/m.wasm');
    mkdirSync(join(tmpdir(), 'unused'), { recursive: true });
  });

  it('resolves a Function image layout path relative to its manifest and leaves oci:// references alone', () => {
    const o = { kind: 'Function', spec: { runtimeClassName: 'container', image: './image' } };
    resolveModuleRef(o, '/srv/app');
    expect(o.spec.image).toBe('/srv/app/image');
    const up = { kind: 'Function', spec: { image: '../container-hello/image' } };
    resolveModuleRef(up, '/srv/examples/vm-hello');
    expect(up.spec.image).toBe('/srv/examples/container-hello/image');
    const oci = { kind: 'Function', spec: { image: 'oci://127.0.0.1:5000/app@sha256:' + 'a'.repeat(64) } };
    resolveModuleRef(oci, '/srv');
    expect(oci.spec.image).toBe('oci://127.0.0.1:5000/app@sha256:' + 'a'.repeat(64));
  });
});

describe('module references', () => {
  it('leaves uploaded modules, URLs and absolute paths alone and classifies every form', async () => {
    const { parseModuleRef } = await import('../../src/api/kinds/index.js');
    const hex = 'ab'.repeat(32);
    const blob = { kind: 'Function', spec: { module: `blob:sha256:${hex}` } };
    resolveModuleRef(blob, '/srv');
    expect(blob.spec.module).toBe(`blob:sha256:${hex}`);
    expect(parseModuleRef(`blob:sha256:${hex}`)).toMatchObject({ type: 'blob', hex, digest: `sha256:${hex}` });
    expect(parseModuleRef('blob:sha256:ABC').type).toBe('invalid');
    expect(parseModuleRef('blob:md5:00').type).toBe('invalid');
    expect(parseModuleRef('file:///etc/shadow')).toEqual({ type: 'host', path: '/etc/shadow', absolute: true });
    expect(parseModuleRef('file://evil.example/etc/shadow').type).toBe('invalid');
    expect(parseModuleRef('/srv/m.wasm')).toEqual({ type: 'host', path: '/srv/m.wasm', absolute: true });
    expect(parseModuleRef('m.wasm')).toEqual({ type: 'host', path: 'm.wasm', absolute: false });
    expect(parseModuleRef('https://example.test/m.wasm').type).toBe('url');
    expect(parseModuleRef('ftp://example.test/m.wasm').type).toBe('invalid');
    expect(parseModuleRef('/a\0b').type).toBe('invalid');
  });
});

import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { jsonDuplicates } from '../../src/api/duplicate-keys.js';
import { pruneUnknownFields } from '../../src/api/field-validation.js';
import { builtinKinds } from '../../src/api/kinds/index.js';
import { decodeBodyFields } from '../../src/api/request-body.js';
import { ResourceService } from '../../src/api/resources.js';
import { ApiServer } from '../../src/api/server.js';
import { MemoryStore } from '../../src/store/index.js';

const logger = pino({ level: 'silent' });
const FN = '/apis/skiff.dev/v1/namespaces/default/functions';

describe('finding unknown and duplicate fields', () => {
  it('prunes by the kind\'s schema with structural rules and names each field by its path', () => {
    const kinds = builtinKinds();
    const obj = {
      apiVersion: 'skiff.dev/v1',
      kind: 'Route',
      extra: 1,
      metadata: { name: 'r', labels: { a: 'b' }, bogus: true, ownerReferences: [{ apiVersion: 'v1', kind: 'X', name: 'x', uid: 'u', weird: 1 }] },
      spec: { hosts: ['*'], http: [{ match: [{ uri: { prefix: '/', suffix: 'x' } }], route: [{ destination: { function: 'f', fn: 'g' } }], filters: [{ jwt: { anything: 1 } }], fault: { delay: { any: 1 } } }] },
      status: { whatever: 1 },
    };
    expect(pruneUnknownFields(kinds.lookup('Route')!, obj)).toEqual([
      'extra',
      'metadata.bogus',
      'metadata.ownerReferences[0].weird',
      'spec.http[0].match[0].uri.suffix',
      'spec.http[0].route[0].destination.fn',
    ]);
    // Free-form places (filter configs, label maps, status) keep what they have.
    expect(obj.spec.http[0]!.filters).toEqual([{ jwt: { anything: 1 } }]);
    expect(obj.spec.http[0]!.fault).toEqual({ delay: { any: 1 } });
    expect(obj.status).toEqual({ whatever: 1 });
    expect(obj).not.toHaveProperty('extra');
    expect(obj.spec.http[0]!.match[0]!.uri).toEqual({ prefix: '/' });
  });

  it('follows anyOf branches, maps and the fields of kinds without spec', () => {
    const kinds = builtinKinds();
    const fn = { spec: { module: 'x', env: { A: '1' }, capabilities: { random: { seed: 1, salt: 2 } } } };
    expect(pruneUnknownFields(kinds.lookup('Function')!, fn)).toEqual(['spec.capabilities.random.salt']);
    const ev = { metadata: { name: 'e' }, reason: 'R', involvedObject: { kind: 'Function', name: 'f', colour: 'red' }, flavour: 1 };
    expect(pruneUnknownFields(kinds.lookup('Event')!, ev)).toEqual(['flavour', 'involvedObject.colour']);
  });

  it('finds duplicate keys in JSON with their paths, in document order', () => {
    const text = '{"metadata":{"name":"a","name":"b"},"spec":{"x":1,"ports":[{"p":1,"p":2}],"x":2,"s":"{\\"x\\":1,\\"x\\":2}"}}';
    expect(jsonDuplicates(text).map((d) => d.path)).toEqual(['metadata.name', 'spec.ports[0].p', 'spec.x']);
    expect(jsonDuplicates('{"a":[{"b":1},{"b":2}],"c":{"d":{}, "e":{}}}')).toEqual([]);
  });

  it('finds duplicate keys in YAML with their lines, and keeps the later value', () => {
    const { value, duplicates } = decodeBodyFields(Buffer.from('a: 1\nb:\n  c: 1\n  c: 2\na: 3\n'), { essence: 'application/yaml', format: 'yaml' });
    expect(value).toEqual({ a: 3, b: { c: 2 } });
    expect(duplicates).toEqual([
      { path: 'b.c', key: 'c', line: 4 },
      { path: 'a', key: 'a', line: 5 },
    ]);
  });
});

describe('?fieldValidation on writes', () => {
  let store: MemoryStore;
  let server: ApiServer;
  let base: string;
  const call = async (method: string, path: string, body: string, contentType = 'application/json') => {
    const res = await fetch(base + path, { method, headers: { 'content-type': contentType, authorization: 'Bearer t' }, body });
    const text = await res.text();
    return { status: res.status, body: JSON.parse(text), warnings: res.headers.get('warning') };
  };
  const fnJson = (name: string, spec: string) => `{"apiVersion":"skiff.dev/v1","kind":"Function","metadata":{"name":"${name}"},"spec":${spec}}`;

  beforeEach(async () => {
    store = new MemoryStore();
    server = new ApiServer({ resources: new ResourceService(store, builtinKinds()), logger, version: 't', token: 't' });
    base = `http://127.0.0.1:${(await server.listen('127.0.0.1', 0)).port}`;
  });
  afterEach(async () => {
    await server.close();
    await store.close();
  });

  it('Strict refuses with kube\'s strict decoding error: duplicates first, then unknown fields', async () => {
    const r = await call('POST', `${FN}?fieldValidation=Strict`, fnJson('a', '{"module":"/m.wasm","foo":1,"args":[],"args":["x"],"limits":{"memroy":"1Mi"}}'));
    expect(r.status).toBe(400);
    expect(r.body.reason).toBe('BadRequest');
    expect(r.body.message).toBe('Function in version "v1" cannot be handled as a Function: strict decoding error: duplicate field "spec.args", unknown field "spec.foo", unknown field "spec.limits.memroy"');
  });

  it('Strict reports YAML duplicates with their lines, as go-yaml words them', async () => {
    const yaml = 'apiVersion: skiff.dev/v1\nkind: Function\nmetadata:\n  name: y\nspec:\n  module: /m.wasm\n  module: /n.wasm\n  foo: 1\n';
    const r = await call('POST', `${FN}?fieldValidation=Strict`, yaml, 'application/yaml');
    expect(r.status).toBe(400);
    expect(r.body.message).toBe('Function in version "v1" cannot be handled as a Function: strict decoding error: yaml: unmarshal errors:\n  line 7: key "module" already set in map, unknown field "spec.foo"');
  });

  it('Warn stores the object without the unknown fields and answers one Warning per field', async () => {
    const r = await call('POST', `${FN}?fieldValidation=Warn`, fnJson('w', '{"module":"/m.wasm","foo":1,"module":"/n.wasm"}'));
    expect(r.status).toBe(201);
    expect(r.body.spec).toEqual({ module: '/n.wasm' });
    expect(r.warnings).toBe('299 - "duplicate field \\"spec.module\\"", 299 - "unknown field \\"spec.foo\\""');
  });

  it('Ignore drops unknown fields silently, on create, update and merge patch', async () => {
    const c = await call('POST', `${FN}?fieldValidation=Ignore`, fnJson('i', '{"module":"/m.wasm","foo":1}'));
    expect(c.status).toBe(201);
    expect(c.body.spec).toEqual({ module: '/m.wasm' });
    expect(c.warnings).toBeNull();
    const p = await call('PATCH', `${FN}/i?fieldValidation=Ignore`, '{"spec":{"bar":2,"args":["a"]}}', 'application/merge-patch+json');
    expect(p.status).toBe(200);
    expect(p.body.spec).toEqual({ module: '/m.wasm', args: ['a'] });
    const u = await call('PUT', `${FN}/i?fieldValidation=Ignore`, fnJson('i', '{"module":"/x.wasm","baz":3}'));
    expect(u.status).toBe(200);
    expect(u.body.spec).toEqual({ module: '/x.wasm' });
  });

  it('Strict on a merge patch names the unknown field of the patched object', async () => {
    await call('POST', FN, fnJson('p', '{"module":"/m.wasm"}'));
    const r = await call('PATCH', `${FN}/p?fieldValidation=Strict`, '{"spec":{"limits":{"cpu":1}}}', 'application/merge-patch+json');
    expect(r.status).toBe(400);
    expect(r.body.message).toMatch(/strict decoding error: unknown field "spec\.limits\.cpu"$/);
  });

  it('without the parameter refuses unknown and duplicate fields in the 422 that lists every bad field', async () => {
    const r = await call('POST', FN, fnJson('d', '{"modul":"x.wasm","args":3,"env":{},"env":{}}'));
    expect(r.status).toBe(422);
    const fields = r.body.details.causes.map((c: { field: string; reason: string }) => `${c.field}:${c.reason}`);
    expect(fields).toEqual(expect.arrayContaining(['spec.env:FieldValueDuplicate', 'spec.modul:FieldValueNotSupported', 'spec.module:FieldValueRequired', 'spec.args:FieldValueInvalid']));
    expect(r.body.message).toContain('spec.modul: unknown field "modul"');
  });

  it('refuses a value it does not know', async () => {
    const r = await call('POST', `${FN}?fieldValidation=strict`, fnJson('v', '{"module":"/m.wasm"}'));
    expect(r.status).toBe(400);
    expect(r.body.message).toBe('fieldValidation: Unsupported value: "strict": supported values: "Ignore", "Strict", "Warn"');
  });
});

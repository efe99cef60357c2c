import { Ajv } from 'ajv';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';

import { constraintKind, constraintTemplateKind } from '../../src/api/kinds/constraint-template.js';
import { builtinKinds } from '../../src/api/kinds/index.js';
import type { KindRegistry } from '../../src/api/kinds/registry.js';
import { toOpenApiV3, toSwagger } from '../../src/api/openapi/convert.js';
import { acceptsJson } from '../../src/api/openapi/endpoint.js';
import { SWAGGER_PROTOBUF_MEDIA_TYPE } from '../../src/api/openapi/swagger-protobuf.js';
import { msg, type ProtoFields, readMessage, str } from '../../src/api/protobuf.js';
import { ResourceService } from '../../src/api/resources.js';
import { ApiServer } from '../../src/api/server.js';
import { MemoryStore } from '../../src/store/index.js';

const logger = pino({ level: 'silent' });
const auth = { authorization: 'Bearer t' };
type Doc = Record<string, any>;

describe('draft-07 to OpenAPI 3.0', () => {
  it('turns type lists into nullable or anyOf, const into enum, numeric exclusive bounds into flags', () => {
    expect(toOpenApiV3({ type: ['string', 'null'] })).toEqual({ type: 'string', nullable: true });
    expect(toOpenApiV3({ type: ['string', 'number'], description: 'd' })).toEqual({ anyOf: [{ type: 'string' }, { type: 'number' }], description: 'd' });
    expect(toOpenApiV3({ const: 'x' })).toEqual({ enum: ['x'], type: 'string' });
    expect(toOpenApiV3({ enum: ['real', 'frozen'] })).toEqual({ enum: ['real', 'frozen'], type: 'string' });
    expect(toOpenApiV3({ enum: [1, 'a'] })).toEqual({ enum: [1, 'a'] });
    expect(toOpenApiV3({ type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 10 })).toEqual({ type: 'number', minimum: 0, exclusiveMinimum: true, maximum: 10, exclusiveMaximum: true });
    expect(toOpenApiV3({ type: 'string', examples: ['a', 'b'] })).toEqual({ type: 'string', example: 'a' });
  });

  it('keeps patterns, required, additionalProperties and nested schemas, and drops what 3.0 lacks', () => {
    const out = toOpenApiV3({
      $schema: 'http://json-schema.org/draft-07/schema#',
      type: 'object',
      required: ['a'],
      additionalProperties: false,
      properties: {
        a: { type: 'string', pattern: '^sha256:[0-9a-f]{64}$', minLength: 1 },
        m: { type: 'object', additionalProperties: { type: 'string' }, propertyNames: { pattern: '^x' } },
        t: { type: 'array', items: [{ type: 'string' }], contains: { const: 1 } },
        c: { if: { type: 'string' }, then: { minLength: 2 }, not: { const: 'bad' } },
      },
    });
    expect(out).toEqual({
      type: 'object',
      required: ['a'],
      additionalProperties: false,
      properties: {
        a: { type: 'string', pattern: '^sha256:[0-9a-f]{64}$', minLength: 1 },
        m: { type: 'object', additionalProperties: { type: 'string' } },
        t: { type: 'array', items: {} },
        c: { not: { enum: ['bad'], type: 'string' } },
      },
    });
  });

  it('marks a string-or-integer anyOf as int-or-string and combines a type list with anyOf', () => {
    expect(toOpenApiV3({ anyOf: [{ type: 'string' }, { type: 'integer', minimum: 0 }] })).toEqual({ anyOf: [{ type: 'string' }, { type: 'integer', minimum: 0 }], 'x-kubernetes-int-or-string': true });
    const both = toOpenApiV3({ type: ['string', 'integer'], anyOf: [{ minLength: 1 }, { minimum: 1 }] });
    expect(both.allOf).toEqual([{ anyOf: [{ type: 'string' }, { type: 'integer' }] }, { anyOf: [{ minLength: 1 }, { minimum: 1 }] }]);
  });

  it('accepts and refuses the same values as the draft-07 schema it came from (Function spec)', () => {
    const ajv = new Ajv({ strict: false });
    const kinds = builtinKinds();
    const draft = kinds.lookup('Function')!.specSchema;
    // OpenAPI 3.0 here uses only keywords draft-07 reads the same way (nullable aside).
    const oas = toOpenApiV3(draft);
    const samples = [
      { module: '/m.wasm' },
      { module: '/m.wasm', limits: { memory: '64Mi', timeout: 2000 } },
      { module: '/m.wasm', limits: { memory: -1 } },
      { module: '' },
      { module: '/m.wasm', capabilities: { random: { seed: 3 } } },
      { module: '/m.wasm', capabilities: { random: 'fake' } },
      { module: '/m.wasm', digest: 'sha256:nothex' },
      { module: '/m.wasm', extra: 1 },
    ];
    const a = ajv.compile(draft);
    const b = ajv.compile(oas);
    for (const s of samples) expect(b(s), JSON.stringify(s)).toBe(a(s));
  });

  it('writes Swagger 2.0: refs into definitions, x-nullable, no anyOf', () => {
    const v2 = toSwagger({ type: 'object', properties: { m: { allOf: [{ $ref: '#/components/schemas/X' }], description: 'd' }, q: { anyOf: [{ type: 'string' }, { type: 'integer' }], 'x-kubernetes-int-or-string': true }, n: { type: 'string', nullable: true } } });
    expect(v2).toEqual({ type: 'object', properties: { m: { $ref: '#/definitions/X', description: 'd' }, q: { 'x-kubernetes-int-or-string': true }, n: { type: 'string', 'x-nullable': true } } });
  });

  it('reads Accept as kube-openapi does', () => {
    expect(acceptsJson(undefined)).toBe(true);
    expect(acceptsJson('application/json, */*')).toBe(true);
    expect(acceptsJson('application/com.github.proto-openapi.spec.v2@v1.0+protobuf')).toBe(false);
    expect(acceptsJson('application/com.github.proto-openapi.spec.v3@v1.0+protobuf, application/json;q=0')).toBe(false);
    expect(acceptsJson('application/*;q=0.5')).toBe(true);
  });
});

describe('/openapi/v2 and /openapi/v3', () => {
  let store: MemoryStore;
  let server: ApiServer;
  let kinds: KindRegistry;
  let base: string;
  const get = async (path: string, headers: Record<string, string> = {}) => {
    const res = await fetch(base + path, { headers: { ...auth, ...headers }, redirect: 'manual' });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text && res.headers.get('content-type')?.includes('json') ? (JSON.parse(text) as Doc) : undefined };
  };

  beforeEach(async () => {
    store = new MemoryStore();
    kinds = builtinKinds();
    server = new ApiServer({ resources: new ResourceService(store, kinds), logger, version: '9.9.9', token: 't' });
    base = `http://127.0.0.1:${(await server.listen('127.0.0.1', 0)).port}`;
  });
  afterEach(async () => {
    await server.close();
    await store.close();
  });

  it('needs the token, like the rest of the API', async () => {
    expect((await fetch(`${base}/openapi/v3`)).status).toBe(401);
    expect((await fetch(`${base}/openapi/v2`)).status).toBe(401);
  });

  it('indexes every group/version with a hashed URL; the hash is the ETag; a stale hash redirects', async () => {
    const index = await get('/openapi/v3');
    expect(index.status).toBe(200);
    const paths = index.body!.paths as Record<string, { serverRelativeURL: string }>;
    expect(Object.keys(paths)).toContain('apis/skiff.dev/v1');
    const url = paths['apis/skiff.dev/v1']!.serverRelativeURL;
    expect(url).toMatch(/^\/openapi\/v3\/apis\/skiff\.dev\/v1\?hash=[0-9A-F]{128}$/);
    const doc = await get(url);
    expect(doc.status).toBe(200);
    expect(doc.headers.get('etag')).toBe(`"${url.split('hash=')[1]}"`);
    expect(doc.headers.get('cache-control')).toBe('public, immutable');
    expect(new Date(doc.headers.get('expires')!).getTime()).toBeGreaterThan(Date.now() + 300 * 24 * 3600 * 1000);
    const again = await get(url, { 'if-none-match': doc.headers.get('etag')! });
    expect(again.status).toBe(304);
    const stale = await get('/openapi/v3/apis/skiff.dev/v1?hash=0123');
    expect(stale.status).toBe(301);
    expect(stale.headers.get('location')).toBe(url);
    const plain = await get('/openapi/v3/apis/skiff.dev/v1');
    expect(plain.headers.get('cache-control')).toBe('no-cache, private');
    expect((await get('/openapi/v3/apis/nothing.example/v1')).status).toBe(404);
    expect((await get(url, { accept: 'application/com.github.proto-openapi.spec.v3@v1.0+protobuf' })).status).toBe(406);
  });

  it('describes each kind as kube does: named schema, GVK, ObjectMeta, spec and status, operations with fieldValidation', async () => {
    const doc = (await get('/openapi/v3/apis/skiff.dev/v1')).body!;
    expect(doc.openapi).toBe('3.0.0');
    const fn = doc.components.schemas['dev.skiff.v1.Function'];
    expect(fn['x-kubernetes-group-version-kind']).toEqual([{ group: 'skiff.dev', kind: 'Function', version: 'v1' }]);
    expect(fn.properties.metadata.allOf).toEqual([{ $ref: '#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta' }]);
    expect(doc.components.schemas['io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta'].properties.labels.additionalProperties).toEqual({ type: 'string', default: '' });
    // module or image is required by runtime class: the API checks it, the schema cannot say it.
    expect(fn.properties.spec.required).toBeUndefined();
    expect(fn.properties.spec.additionalProperties).toBe(false);
    expect(fn.properties.spec.properties.digest.pattern).toBe('^sha256:[0-9a-f]{64}$');
    expect(fn.properties.spec.properties.limits.properties.memory['x-kubernetes-int-or-string']).toBe(true);
    expect(fn.properties.spec.properties.capabilities.properties.clock).toMatchObject({ type: 'string', enum: ['real', 'frozen'] });
    expect(fn.properties.status.properties.conditions.items).toEqual({ $ref: '#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Condition' });
    expect(doc.components.schemas['dev.skiff.v1.FunctionList']['x-kubernetes-group-version-kind']).toEqual([{ group: 'skiff.dev', kind: 'FunctionList', version: 'v1' }]);

    const item = doc.paths['/apis/skiff.dev/v1/namespaces/{namespace}/functions/{name}'];
    expect(item.patch['x-kubernetes-group-version-kind']).toEqual({ group: 'skiff.dev', kind: 'Function', version: 'v1' });
    expect(item.patch['x-kubernetes-action']).toBe('patch');
    for (const op of [item.patch, item.put, doc.paths['/apis/skiff.dev/v1/namespaces/{namespace}/functions'].post]) {
      expect(op.parameters.find((p: Doc) => p.name === 'fieldValidation')).toMatchObject({ in: 'query', schema: { type: 'string' } });
    }
    expect(Object.keys(item.patch.requestBody.content)).toContain('application/apply-patch+yaml');
    const core = (await get('/openapi/v3/api/v1')).body!;
    expect(core.paths['/api/v1/namespaces'].get.operationId).toBe('listCoreV1Namespace');
    expect(core.components.schemas['io.k8s.api.core.v1.Namespace']['x-kubernetes-group-version-kind']).toEqual([{ group: '', kind: 'Namespace', version: 'v1' }]);
    expect(doc.paths['/apis/skiff.dev/v1/functions'].get.operationId).toBe('listSkiffDevV1FunctionForAllNamespaces');

    // Every $ref resolves within the document.
    const refs = JSON.stringify(doc).match(/#\/components\/schemas\/[\w.]+/g)!;
    for (const r of new Set(refs)) expect(doc.components.schemas[r.split('/').pop()!], r).toBeDefined();
  });

  it('describes every field of every built-in kind', async () => {
    const doc = (await get('/openapi/v3/apis/skiff.dev/v1')).body!;
    const missing: string[] = [];
    const walk = (s: Doc, path: string) => {
      for (const [k, v] of Object.entries((s.properties ?? {}) as Record<string, Doc>)) {
        if (!v.description) missing.push(`${path}.${k}`);
        walk(v, `${path}.${k}`);
        if (v.items) walk(v.items, `${path}.${k}[]`);
        if (v.additionalProperties && typeof v.additionalProperties === 'object') walk(v.additionalProperties, `${path}.${k}{}`);
      }
    };
    const core = (await get('/openapi/v3/api/v1')).body!;
    for (const kind of ['Function', 'Route', 'Service', 'Policy', 'Namespace', 'Event']) {
      const s = kind === 'Namespace' || kind === 'Event' ? core.components.schemas[`io.k8s.api.core.v1.${kind}`] : doc.components.schemas[`dev.skiff.v1.${kind}`];
      expect(s.description, kind).not.toMatch(/is a kind served by Skiff/);
      walk(s, kind);
    }
    kinds.register(constraintTemplateKind(() => []));
    const ct = (await get('/openapi/v3/apis/templates.gatekeeper.sh/v1')).body!;
    walk(ct.components.schemas['sh.gatekeeper.templates.v1.ConstraintTemplate'], 'ConstraintTemplate');
    expect(missing).toEqual([]);
  });

  it('publishes a constraint kind registered at run time, with its template\'s parameters schema, and drops it when unregistered', async () => {
    let params: Record<string, unknown> = { type: 'object', properties: { labels: { type: 'array', items: { type: 'string' }, description: 'Labels every object must have.' } } };
    kinds.register(constraintKind('K8sRequiredLabels', () => [], () => ({ openAPIV3Schema: params })));
    const index = (await get('/openapi/v3')).body!;
    const url = index.paths['apis/constraints.gatekeeper.sh/v1beta1'].serverRelativeURL as string;
    const doc = (await get(url)).body!;
    const s = doc.components.schemas['sh.gatekeeper.constraints.v1beta1.K8sRequiredLabels'];
    expect(s['x-kubernetes-group-version-kind']).toEqual([{ group: 'constraints.gatekeeper.sh', kind: 'K8sRequiredLabels', version: 'v1beta1' }]);
    expect(s.properties.spec.properties.parameters.properties.labels.description).toBe('Labels every object must have.');
    expect(doc.paths['/apis/constraints.gatekeeper.sh/v1beta1/k8srequiredlabels/{name}'].patch.parameters.some((p: Doc) => p.name === 'fieldValidation')).toBe(true);

    // A changed template changes the document, its hash, and the index.
    params = { type: 'object', properties: { keys: { type: 'array', items: { type: 'string' } } } };
    const index2 = (await get('/openapi/v3')).body!;
    expect(index2.paths['apis/constraints.gatekeeper.sh/v1beta1'].serverRelativeURL).not.toBe(url);
    expect((await get(url)).status).toBe(301);

    kinds.unregister('constraints.gatekeeper.sh', 'k8srequiredlabels');
    expect(Object.keys((await get('/openapi/v3')).body!.paths)).not.toContain('apis/constraints.gatekeeper.sh/v1beta1');
  });

  it('serves Swagger 2.0 JSON with the same definition names', async () => {
    const v2 = await get('/openapi/v2', { accept: 'application/json' });
    expect(v2.status).toBe(200);
    expect(v2.body!.swagger).toBe('2.0');
    const fn = v2.body!.definitions['dev.skiff.v1.Function'];
    expect(fn['x-kubernetes-group-version-kind']).toEqual([{ group: 'skiff.dev', kind: 'Function', version: 'v1' }]);
    expect(fn.properties.metadata.$ref).toBe('#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta');
    expect(JSON.stringify(v2.body)).not.toContain('#/components/');
    expect(JSON.stringify(v2.body)).not.toContain('"anyOf"');
    const patch = v2.body!.paths['/apis/skiff.dev/v1/namespaces/{namespace}/functions/{name}'].patch;
    expect(patch.parameters.find((p: Doc) => p.name === 'fieldValidation')).toMatchObject({ in: 'query', type: 'string' });
    expect(patch.parameters.find((p: Doc) => p.in === 'body').schema.$ref).toBe('#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Patch');
    expect(v2.headers.get('etag')).toMatch(/^"[0-9A-F]{128}"$/);
  });

  it('serves /openapi/v2 as gnostic protobuf to a client that asks for it, and 406 to one that takes neither', async () => {
    const res = await fetch(`${base}/openapi/v2`, { headers: { ...auth, accept: `application/json;q=0.5, ${SWAGGER_PROTOBUF_MEDIA_TYPE}` } });
    expect(res.status).toBe(200);
    // What kube-openapi's content sniffing names it: client-go cannot parse the requested media type.
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    const etag = res.headers.get('etag');
    expect(etag).toMatch(/^"[0-9A-F]{128}"$/);
    expect(etag).not.toBe((await get('/openapi/v2')).headers.get('etag'));
    const doc = readMessage(Buffer.from(await res.arrayBuffer()));
    expect(str(doc, 1)).toBe('2.0');
    expect(str(msg(doc, 2)!, 1)).toBe('Skiff');
    // definitions (9): NamedSchema entries; the Function's schema carries its GVK extension (31) as YAML.
    const named = (m: ProtoFields, field: number) => new Map((m.get(field) ?? []).map((b) => readMessage(b as Buffer)).map((e) => [str(e, 1), msg(e, 2)!]));
    const fnSchema = named(msg(doc, 9)!, 1).get('dev.skiff.v1.Function')!;
    expect(str(fnSchema, 4)).toMatch(/^Function is/);
    const ext = named(fnSchema, 31).get('x-kubernetes-group-version-kind')!;
    expect(parseYaml(str(ext, 2))).toEqual([{ group: 'skiff.dev', kind: 'Function', version: 'v1' }]);
    // properties (25) → metadata: a $ref (1); type (22) is a TypeItem of strings.
    const props = named(msg(fnSchema, 25)!, 1);
    expect(str(props.get('metadata')!, 1)).toBe('#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta');
    expect(str(msg(props.get('kind')!, 22)!, 1)).toBe('string');
    // paths (8) → the PATCH operation (8) of one Function: its GVK extension and the fieldValidation query parameter, as kubectl looks them up.
    const item = named(msg(doc, 8)!, 2).get('/apis/skiff.dev/v1/namespaces/{namespace}/functions/{name}')!;
    const patch = msg(item, 8)!;
    expect(parseYaml(str(named(patch, 13).get('x-kubernetes-group-version-kind')!, 2))).toEqual({ group: 'skiff.dev', kind: 'Function', version: 'v1' });
    const queryNames = (patch.get(8) ?? []).map((b) => msg(msg(msg(readMessage(b as Buffer), 1)!, 2) ?? new Map(), 3)).filter((q) => q !== undefined).map((q) => str(q!, 4));
    expect(queryNames).toContain('fieldValidation');
    expect((await get('/openapi/v2', { accept: 'text/html' })).status).toBe(406);
  });
});

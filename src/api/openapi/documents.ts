import { groupOf, type KindDefinition } from '../kinds/types.js';

import { type SchemaObject, toSwagger } from './convert.js';
import { META, metaSchemas, ref } from './meta-schemas.js';
import { gvkOf, listSchema, objectSchema, schemaName } from './object-schema.js';

/** One group/version as the OpenAPI index names it: `apis/skiff.dev/v1`, or `api/v1` for the core group. */
export function groupVersionPath(group: string, version: string): string {
  return group === '' ? `api/${version}` : `apis/${group}/${version}`;
}

interface Param {
  name: string;
  in: 'query' | 'path';
  description: string;
  type: 'string' | 'boolean' | 'integer';
  required?: boolean;
}

const q = (name: string, description: string, type: Param['type'] = 'string'): Param => ({ name, in: 'query', description, type });

const PRETTY = q('pretty', 'Accepted for compatibility: answers are compact JSON either way.');
const DRY_RUN = q('dryRun', 'All: check, default and admit the request without storing anything.');
const FIELD_MANAGER = q('fieldManager', 'Name of the actor making the change, recorded in metadata.managedFields.');
const FIELD_VALIDATION = q(
  'fieldValidation',
  'What to do with unknown and duplicate fields in the body. Strict: refuse the request (400, "strict decoding error" naming each field). Warn: drop them and answer with a Warning header per field. Ignore: drop them silently. Without the parameter Skiff refuses them as invalid fields (422), together with every other bad field.',
);
const LIST_PARAMS: Param[] = [
  q('allowWatchBookmarks', 'Ask for BOOKMARK events in a watch.', 'boolean'),
  q('continue', 'The continue token of the previous page of a list.'),
  q('fieldSelector', 'Select objects by fields (metadata.name=NAME, metadata.namespace=NS).'),
  q('labelSelector', 'Select objects by labels: a=b, a!=b, a in (x,y), a notin (x), a, !a.'),
  q('limit', 'Return at most this many objects and a continue token for the rest.', 'integer'),
  q('resourceVersion', 'For a watch, the revision to stream changes after; for a list, a revision to read at.'),
  q('resourceVersionMatch', 'How resourceVersion applies to a list (NotOlderThan, Exact).'),
  q('sendInitialEvents', 'With a watch: start with an ADDED event per existing object.', 'boolean'),
  q('timeoutSeconds', 'End the list or watch after this many seconds.', 'integer'),
  q('watch', 'Stream changes instead of listing: one JSON WatchEvent per line.', 'boolean'),
];
const pathParam = (name: string, description: string): Param => ({ name, in: 'path', description, type: 'string', required: true });
const NAME = pathParam('name', 'Name of the object.');
const NAMESPACE = pathParam('namespace', 'The namespace (an RFC 1123 label).');

const PATCH_TYPES = ['application/apply-patch+yaml', 'application/json-patch+json', 'application/merge-patch+json', 'application/strategic-merge-patch+json'];

interface Operation {
  method: 'get' | 'post' | 'put' | 'patch' | 'delete';
  action: 'list' | 'watchlist' | 'post' | 'get' | 'put' | 'patch' | 'delete';
  id: string;
  summary: string;
  params: Param[];
  /** Schema name of the request body, if any. */
  body?: string;
  bodyTypes?: string[];
  /** Schema name of the answer and its status codes. */
  answer: string;
  codes: number[];
}

interface PathItem {
  path: string;
  params: Param[];
  ops: Operation[];
}

/** camel turns an API group into the part of an operation id kube-apiserver uses: skiff.dev → SkiffDev, "" → Core. */
function camel(group: string): string {
  if (group === '') return 'Core';
  return group.split(/[.-]/).map((p) => p.charAt(0).toUpperCase() + p.slice(1)).join('');
}

function pathsOf(def: KindDefinition): PathItem[] {
  const group = groupOf(def);
  const version = def.version ?? 'v1';
  const prefix = `/${groupVersionPath(group, version)}`;
  const idBase = `${group === '' ? 'Core' : camel(group)}${version.charAt(0).toUpperCase()}${version.slice(1)}`;
  const scoped = def.namespaced ? 'Namespaced' : '';
  const base = def.namespaced ? `${prefix}/namespaces/{namespace}/${def.plural}` : `${prefix}/${def.plural}`;
  const scopeParams = def.namespaced ? [NAMESPACE] : [];
  const kind = schemaName(def);
  const list = schemaName(def, `${def.kind}List`);
  const status = `${META}.Status`;
  const items: PathItem[] = [
    {
      path: base,
      params: [...scopeParams, PRETTY],
      ops: [
        { method: 'get', action: 'list', id: `list${idBase}${scoped}${def.kind}`, summary: `list or watch ${def.plural}`, params: LIST_PARAMS, answer: list, codes: [200] },
        { method: 'post', action: 'post', id: `create${idBase}${scoped}${def.kind}`, summary: `create a ${def.kind}`, params: [DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION], body: kind, answer: kind, codes: [200, 201] },
      ],
    },
    {
      path: `${base}/{name}`,
      params: [NAME, ...scopeParams, PRETTY],
      ops: [
        { method: 'get', action: 'get', id: `read${idBase}${scoped}${def.kind}`, summary: `read the ${def.kind}`, params: [], answer: kind, codes: [200] },
        { method: 'put', action: 'put', id: `replace${idBase}${scoped}${def.kind}`, summary: `replace the ${def.kind}`, params: [DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION], body: kind, answer: kind, codes: [200, 201] },
        { method: 'patch', action: 'patch', id: `patch${idBase}${scoped}${def.kind}`, summary: `partially update the ${def.kind}`, params: [DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION, q('force', 'With server-side apply: take over fields other managers own instead of answering 409.', 'boolean')], body: `${META}.Patch`, bodyTypes: PATCH_TYPES, answer: kind, codes: [200, 201] },
        { method: 'delete', action: 'delete', id: `delete${idBase}${scoped}${def.kind}`, summary: `delete the ${def.kind}`, params: [DRY_RUN, q('gracePeriodSeconds', 'Accepted for compatibility; deletion is immediate.', 'integer'), q('propagationPolicy', 'Accepted for compatibility.'), q('resourceVersion', 'Delete only if the object is at this revision (409 otherwise).')], body: `${META}.DeleteOptions`, answer: status, codes: [200, 202] },
      ],
    },
    {
      path: `${base}/{name}/status`,
      params: [NAME, ...scopeParams, PRETTY],
      ops: [
        { method: 'get', action: 'get', id: `read${idBase}${scoped}${def.kind}Status`, summary: `read the status of the ${def.kind}`, params: [], answer: kind, codes: [200] },
        { method: 'put', action: 'put', id: `replace${idBase}${scoped}${def.kind}Status`, summary: `replace the status of the ${def.kind} (controller token only)`, params: [DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION], body: kind, answer: kind, codes: [200, 201] },
        { method: 'patch', action: 'patch', id: `patch${idBase}${scoped}${def.kind}Status`, summary: `partially update the status of the ${def.kind} (controller token only)`, params: [DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION, q('force', 'With server-side apply: take over fields other managers own.', 'boolean')], body: `${META}.Patch`, bodyTypes: PATCH_TYPES, answer: kind, codes: [200, 201] },
      ],
    },
  ];
  if (def.namespaced) {
    items.push({
      path: `${prefix}/${def.plural}`,
      params: [PRETTY],
      ops: [{ method: 'get', action: 'list', id: `list${idBase}${def.kind}ForAllNamespaces`, summary: `list or watch ${def.plural} in every namespace`, params: LIST_PARAMS, answer: list, codes: [200] }],
    });
  }
  return items;
}

function v3Param(p: Param): SchemaObject {
  return { name: p.name, in: p.in, description: p.description, ...(p.required ? { required: true } : {}), schema: { type: p.type, uniqueItems: true } };
}

function v2Param(p: Param): SchemaObject {
  return { name: p.name, in: p.in, description: p.description, ...(p.required ? { required: true } : {}), type: p.type, uniqueItems: true };
}

function kindsOf(defs: KindDefinition[], group: string, version: string): KindDefinition[] {
  return defs.filter((d) => groupOf(d) === group && (d.version ?? 'v1') === version).sort((a, b) => a.kind.localeCompare(b.kind));
}

/** The schemas of some kinds (object and list), by name. */
function kindSchemas(defs: KindDefinition[]): Record<string, SchemaObject> {
  const out: Record<string, SchemaObject> = {};
  for (const def of defs) {
    out[schemaName(def)] = objectSchema(def);
    out[schemaName(def, `${def.kind}List`)] = listSchema(def);
  }
  return out;
}

/**
 * groupDocument is the OpenAPI 3.0 document of one group/version (`/openapi/v3/apis/GROUP/VERSION`):
 * every operation on its kinds with `x-kubernetes-group-version-kind` and `x-kubernetes-action`, and
 * the schemas they reference. kubectl reads the PATCH operation's `fieldValidation` parameter to
 * learn that the server validates fields itself, and `kubectl explain` reads the schemas.
 */
export function groupDocument(defs: KindDefinition[], group: string, version: string, serverVersion: string): SchemaObject {
  const kinds = kindsOf(defs, group, version);
  const paths: Record<string, SchemaObject> = {};
  for (const def of kinds) {
    for (const item of pathsOf(def)) {
      const entry: SchemaObject = { parameters: item.params.map(v3Param) };
      for (const op of item.ops) {
        const responses: Record<string, SchemaObject> = {};
        for (const code of op.codes) {
          const content = Object.fromEntries(['application/json', 'application/yaml'].map((t) => [t, { schema: ref(op.answer) }]));
          if (op.action === 'list') content['application/json;stream=watch'] = { schema: ref(`${META}.WatchEvent`) };
          responses[String(code)] = { description: code === 201 ? 'Created' : code === 202 ? 'Accepted' : 'OK', content };
        }
        responses['401'] = { description: 'Unauthorized' };
        entry[op.method] = {
          tags: [`${group === '' ? 'core' : group}_${version}`],
          summary: op.summary,
          operationId: op.id,
          parameters: op.params.map(v3Param),
          ...(op.body ? { requestBody: { content: Object.fromEntries((op.bodyTypes ?? ['application/json', 'application/yaml']).map((t) => [t, { schema: ref(op.body!) }])), required: op.method !== 'delete' } } : {}),
          responses,
          'x-kubernetes-action': op.action,
          'x-kubernetes-group-version-kind': gvkOf(def),
        };
      }
      paths[item.path] = entry;
    }
  }
  return {
    openapi: '3.0.0',
    info: { title: 'Skiff', version: serverVersion },
    paths,
    components: {
      schemas: { ...metaSchemas(), ...kindSchemas(kinds) },
      securitySchemes: { BearerToken: { type: 'apiKey', description: 'Bearer token: Authorization: Bearer TOKEN (DATA_DIR/token).', name: 'authorization', in: 'header' } },
    },
    security: [{ BearerToken: [] }],
  };
}

/**
 * swaggerDocument is `/openapi/v2`: every group in one Swagger 2.0 document, with `definitions`
 * under the same names as the v3 schemas and the same extensions.
 */
export function swaggerDocument(defs: KindDefinition[], serverVersion: string): SchemaObject {
  const sorted = [...defs].sort((a, b) => schemaName(a).localeCompare(schemaName(b)));
  const paths: Record<string, SchemaObject> = {};
  for (const def of sorted) {
    for (const item of pathsOf(def)) {
      const entry: SchemaObject = { parameters: item.params.map(v2Param) };
      for (const op of item.ops) {
        const responses: Record<string, SchemaObject> = {};
        for (const code of op.codes) responses[String(code)] = { description: code === 201 ? 'Created' : code === 202 ? 'Accepted' : 'OK', schema: { $ref: `#/definitions/${op.answer}` } };
        responses['401'] = { description: 'Unauthorized' };
        const params = op.params.map(v2Param);
        if (op.body) params.unshift({ name: 'body', in: 'body', required: op.method !== 'delete', schema: { $ref: `#/definitions/${op.body}` } });
        entry[op.method] = {
          tags: [`${groupOf(def) === '' ? 'core' : groupOf(def)}_${def.version ?? 'v1'}`],
          description: op.summary,
          operationId: op.id,
          consumes: op.bodyTypes ?? ['*/*'],
          produces: ['application/json', 'application/yaml', ...(op.action === 'list' ? ['application/json;stream=watch'] : [])],
          schemes: ['https'],
          parameters: params,
          responses,
          'x-kubernetes-action': op.action,
          'x-kubernetes-group-version-kind': gvkOf(def),
        };
      }
      paths[item.path] = entry;
    }
  }
  const definitions = Object.fromEntries(Object.entries({ ...metaSchemas(), ...kindSchemas(sorted) }).map(([k, v]) => [k, toSwagger(v)]));
  return {
    swagger: '2.0',
    info: { title: 'Skiff', version: serverVersion },
    paths,
    definitions,
    securityDefinitions: { BearerToken: { type: 'apiKey', description: 'Bearer token: Authorization: Bearer TOKEN (DATA_DIR/token).', name: 'authorization', in: 'header' } },
    security: [{ BearerToken: [] }],
  };
}

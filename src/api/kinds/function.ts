import { formatAge,parseBytes, parseDurationMs } from '../../util/quantity.js';

import { readyOf } from './conditions.js';
import { MODULE_SOURCE_ANNOTATION, parseModuleRef } from './module-ref.js';
import type { FieldError, KindDefinition, ResourceObject } from './types.js';

const quantity = { anyOf: [{ type: 'string' }, { type: 'integer', minimum: 0 }] };

/** Function: a WASI module served over HTTP with the WAGI convention. */
export const functionKind: KindDefinition = {
  kind: 'Function',
  plural: 'functions',
  singular: 'function',
  shortNames: ['fn'],
  namespaced: true,
  specSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['module'],
    properties: {
      module: { type: 'string', minLength: 1, description: 'blob:sha256:HEX (an uploaded module), an http(s) URL, or an absolute host path / file:// URL inside an --allow-host-dir' },
      digest: { type: 'string', pattern: '^sha256:[0-9a-f]{64}$', description: 'Expected sha256 of the module bytes' },
      args: { type: 'array', items: { type: 'string' } },
      env: { type: 'object', additionalProperties: { type: 'string' } },
      capabilities: {
        type: 'object',
        additionalProperties: false,
        properties: {
          dirs: {
            type: 'array',
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['host', 'guest'],
              properties: { host: { type: 'string', minLength: 1 }, guest: { type: 'string', minLength: 1 }, readOnly: { type: 'boolean' } },
            },
          },
          memfs: { type: 'boolean' },
          env: { type: 'object', additionalProperties: { type: 'string' } },
          clock: { enum: ['real', 'frozen'] },
          random: { anyOf: [{ enum: ['real'] }, { type: 'object', additionalProperties: false, required: ['seed'], properties: { seed: { type: 'integer' } } }] },
        },
      },
      limits: {
        type: 'object',
        additionalProperties: false,
        properties: {
          memory: quantity,
          timeout: quantity,
          concurrency: { type: 'integer', minimum: 1 },
          queue: { type: 'integer', minimum: 0 },
          output: quantity,
        },
      },
    },
  },
  validate(obj: ResourceObject): FieldError[] {
    const errs: FieldError[] = [];
    const spec = obj.spec ?? {};
    if (typeof spec.module === 'string') {
      const ref = parseModuleRef(spec.module);
      if (ref.type === 'invalid') errs.push({ field: 'spec.module', message: ref.message, reason: 'FieldValueNotSupported' });
    }
    const l = spec.limits ?? {};
    if (l.memory !== undefined && parseBytes(l.memory) === undefined) errs.push({ field: 'spec.limits.memory', message: `"${l.memory}" is not a byte quantity (e.g. 64Mi)` });
    if (l.output !== undefined && parseBytes(l.output) === undefined) errs.push({ field: 'spec.limits.output', message: `"${l.output}" is not a byte quantity (e.g. 1Mi)` });
    if (l.timeout !== undefined && parseDurationMs(l.timeout) === undefined) errs.push({ field: 'spec.limits.timeout', message: `"${l.timeout}" is not a duration (e.g. 5s, 250ms)` });
    (spec.capabilities?.dirs ?? []).forEach((d: { guest?: string }, i: number) => {
      if (typeof d.guest === 'string' && !d.guest.startsWith('/')) errs.push({ field: `spec.capabilities.dirs[${i}].guest`, message: 'must be an absolute guest path such as /data' });
    });
    return errs;
  },
  printerColumns: [
    { name: 'READY', value: (o) => readyOf(o) },
    { name: 'DIGEST', description: 'Start of the sha256 digest of the module that runs', value: (o) => (o.status?.digest ? String(o.status.digest).slice(7, 19) : '<none>') },
    { name: 'AGE', type: 'date', value: (o) => formatAge(o.metadata.creationTimestamp) },
    { name: 'SIZE', wide: true, type: 'integer', description: 'Size of the compiled module in bytes', value: (o) => (o.status?.size !== undefined ? String(o.status.size) : '<none>') },
    { name: 'MODULE', wide: true, description: 'Where the module came from (the file skiff apply uploaded, or spec.module)', value: (o) => moduleColumn(o) },
  ],
};

/** moduleColumn shows where a Function's module came from: for an uploaded module, the file `skiff apply` read and the digest. */
function moduleColumn(o: ResourceObject): string {
  const module = String(o.spec?.module ?? '');
  const ref = parseModuleRef(module);
  if (ref.type !== 'blob') return module;
  const source = o.metadata.annotations?.[MODULE_SOURCE_ANNOTATION];
  return source ? `${source} (uploaded ${ref.digest.slice(7, 19)})` : module;
}

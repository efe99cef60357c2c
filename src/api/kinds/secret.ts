import { formatAge } from '../../util/quantity.js';

import { CORE_GROUP, type FieldError, type KindDefinition, type ResourceObject } from './types.js';

/** The Secret type that carries registry credentials (a docker config.json under `.dockerconfigjson`). */
export const DOCKER_CONFIG_JSON_SECRET = 'kubernetes.io/dockerconfigjson';

const KEY = /^[-._a-zA-Z0-9]+$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Secret: Kubernetes' core v1 Secret, the minimum Skiff needs: `type`, `data` (base64 values) and
 * `stringData` (plain values, folded into `data` on every write and never stored as such). Functions
 * name `kubernetes.io/dockerconfigjson` Secrets in `spec.imagePullSecrets` to pull from private
 * registries. The table (`skiff get secrets`) shows the type and the number of keys, never values.
 */
export const secretKind: KindDefinition = {
  group: CORE_GROUP,
  version: 'v1',
  statusSubresource: false,
  kind: 'Secret',
  plural: 'secrets',
  singular: 'secret',
  namespaced: true,
  description: 'Secret holds small pieces of sensitive data, such as registry credentials for spec.imagePullSecrets (type kubernetes.io/dockerconfigjson, key .dockerconfigjson). Values are base64 in data; stringData is accepted on writes and folded into data.',
  specRequired: false,
  specSchema: { type: 'object' },
  rootFields: {
    type: { type: 'string', description: 'What the Secret holds: Opaque (the default) or kubernetes.io/dockerconfigjson (registry credentials under .dockerconfigjson).' },
    data: { type: 'object', additionalProperties: { type: 'string', format: 'byte' }, description: 'The values, base64-encoded, by key.' },
    stringData: { type: 'object', additionalProperties: { type: 'string' }, description: 'Write-only plain values, merged into data (winning over it) when the Secret is written.' },
    immutable: { type: 'boolean', description: 'Accepted for compatibility; Skiff does not enforce it.' },
  },
  normalize(obj: ResourceObject): void {
    obj.type ??= 'Opaque';
    const plain = obj.stringData;
    if (plain && typeof plain === 'object' && !Array.isArray(plain)) {
      const data = (obj.data && typeof obj.data === 'object' ? obj.data : {}) as Record<string, unknown>;
      for (const [k, v] of Object.entries(plain as Record<string, unknown>)) if (typeof v === 'string') data[k] = Buffer.from(v, 'utf8').toString('base64');
      obj.data = data;
      delete obj.stringData;
    }
  },
  validate(obj: ResourceObject): FieldError[] {
    const errs: FieldError[] = [];
    const data = obj.data;
    if (data !== undefined && (typeof data !== 'object' || data === null || Array.isArray(data))) return [{ field: 'data', message: 'must be a map of key to base64 value' }];
    for (const [k, v] of Object.entries((data ?? {}) as Record<string, unknown>)) {
      if (!KEY.test(k)) errs.push({ field: `data[${k}]`, message: 'a key may hold only letters, digits, -, _ and .', reason: 'FieldValueInvalid' });
      if (typeof v !== 'string' || !BASE64.test(v) || v.length % 4 !== 0) errs.push({ field: `data[${k}]`, message: 'must be base64 (put plain text under stringData instead)', reason: 'FieldValueInvalid' });
    }
    if (obj.type === DOCKER_CONFIG_JSON_SECRET) {
      const raw = (data as Record<string, string> | undefined)?.['.dockerconfigjson'];
      if (raw === undefined) errs.push({ field: 'data[.dockerconfigjson]', message: `a ${DOCKER_CONFIG_JSON_SECRET} Secret needs the key .dockerconfigjson (a docker config.json)`, reason: 'FieldValueRequired' });
      else {
        try {
          const doc = JSON.parse(Buffer.from(raw, 'base64').toString('utf8')) as unknown;
          if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new Error('not an object');
        } catch {
          errs.push({ field: 'data[.dockerconfigjson]', message: 'is not a docker config.json (JSON with "auths")', reason: 'FieldValueInvalid' });
        }
      }
    }
    return errs;
  },
  printerColumns: [
    { name: 'TYPE', value: (o) => String(o.type ?? 'Opaque') },
    { name: 'DATA', type: 'integer', description: 'Number of keys (values are never shown)', value: (o) => String(Object.keys((o.data as Record<string, unknown> | undefined) ?? {}).length) },
    { name: 'AGE', type: 'date', value: (o) => formatAge(o.metadata.creationTimestamp) },
  ],
};

/** secretValue decodes one key of a Secret's data (undefined when absent). */
export function secretValue(secret: ResourceObject, key: string): string | undefined {
  const v = (secret.data as Record<string, unknown> | undefined)?.[key];
  return typeof v === 'string' ? Buffer.from(v, 'base64').toString('utf8') : undefined;
}

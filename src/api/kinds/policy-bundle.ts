import { formatAge, parseDurationMs } from '../../util/quantity.js';

import { readyOf } from './conditions.js';
import { replayStatusSchema, rolloutSchema } from './policy-rollout.js';
import type { FieldError, KindDefinition, ResourceObject } from './types.js';

/** MIN_POLLING_MS is the shortest polling interval a PolicyBundle may ask for. */
export const MIN_POLLING_MS = 1000;

function validate(o: ResourceObject): FieldError[] {
  const errs: FieldError[] = [];
  const spec = o.spec ?? {};
  const source = String(spec.source ?? '');
  if (!/^(https?|oci):\/\//.test(source)) errs.push({ field: 'spec.source', message: 'must be an http(s):// URL or an oci://HOST[:PORT]/REPO:TAG|@sha256:DIGEST reference', reason: 'FieldValueInvalid' });
  else if (source.startsWith('oci://') && !/^oci:\/\/[^/\s]+\/[^\s:@]+(:[\w][\w.-]{0,127}|@sha256:[0-9a-f]{64})$/.test(source)) errs.push({ field: 'spec.source', message: 'an OCI reference is oci://HOST[:PORT]/REPO:TAG or oci://HOST[:PORT]/REPO@sha256:<64 hex>', reason: 'FieldValueInvalid' });
  else {
    try {
      if (!source.startsWith('oci://')) new URL(source);
    } catch {
      errs.push({ field: 'spec.source', message: 'is not a valid URL', reason: 'FieldValueInvalid' });
    }
  }
  if (spec.pollingInterval !== undefined) {
    const ms = parseDurationMs(spec.pollingInterval as string);
    if (ms === undefined || ms < MIN_POLLING_MS) errs.push({ field: 'spec.pollingInterval', message: `must be a duration of at least ${MIN_POLLING_MS / 1000}s, such as 30s or 5m`, reason: 'FieldValueInvalid' });
  }
  if (spec.timeout !== undefined) {
    const ms = parseDurationMs(spec.timeout as string);
    if (ms === undefined || ms <= 0 || ms > 300_000) errs.push({ field: 'spec.timeout', message: 'must be a duration above 0 and at most 5m, such as 10s', reason: 'FieldValueInvalid' });
  }
  const v = spec.verification;
  if (v && !v.publicKey === !v.secretRef) errs.push({ field: 'spec.verification', message: 'give exactly one of publicKey (PEM) or secretRef', reason: 'FieldValueInvalid' });
  if (v?.publicKey && !/-----BEGIN (PUBLIC KEY|RSA PUBLIC KEY|CERTIFICATE)-----/.test(String(v.publicKey))) errs.push({ field: 'spec.verification.publicKey', message: 'must be a PEM public key (BEGIN PUBLIC KEY) or certificate', reason: 'FieldValueInvalid' });
  return errs;
}

/**
 * PolicyBundle: policies and data from an OPA bundle served over http(s) or as an OCI artifact,
 * verified, compiled and activated as a whole into the platform's policy engine, where Routes'
 * authz filters query its rules like those of Policy objects. Cluster-scoped: a bundle's roots own
 * part of the one `data` tree every namespace's Routes query.
 *
 * @example
 * apiVersion: skiff.dev/v1
 * kind: PolicyBundle
 * metadata: { name: envoy-authz }
 * spec:
 *   source: https://bundles.example.com/envoy-authz.tar.gz
 *   pollingInterval: 30s
 *   verification: { publicKey: "-----BEGIN PUBLIC KEY-----\n...", keyId: default }
 *   roots: [envoy/authz]
 *   rollout: { maxChangedDecisions: 0 }
 */
export const policyBundleKind: KindDefinition = {
  kind: 'PolicyBundle',
  plural: 'policybundles',
  singular: 'policybundle',
  shortNames: ['pb'],
  namespaced: false,
  description:
    'PolicyBundle loads an OPA bundle (policies and data, as opa build writes it) from an http(s) URL or an OCI registry into the platform\'s policy engine, after verifying its signature, compiling it and replaying recent decisions against it. The previous revision keeps deciding when a new one fails or is held back.',
  specSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['source'],
    properties: {
      source: { type: 'string', minLength: 1, description: 'Where the bundle is: an http(s) URL (polled with If-None-Match) or oci://HOST[:PORT]/REPO:TAG or @sha256:DIGEST (an OCI artifact whose layer is the bundle, as oras pushes it). Reached only where --allow-upstream permits.' },
      pollingInterval: { type: 'string', description: 'How often the source is checked for a new revision (default 60s, at least 1s).' },
      timeout: { type: 'string', description: 'How long one download may take, redirects included (default 30s, at most 5m); a source that stalls fails the poll and the active revision keeps deciding.' },
      verification: {
        type: 'object',
        additionalProperties: false,
        description: 'The key the bundle must be signed with (.signatures.json, as opa build --signing-key writes it).',
        properties: {
          publicKey: { type: 'string', description: 'PEM public key (ECDSA, RSA, Ed25519) or certificate.' },
          secretRef: {
            type: 'object',
            additionalProperties: false,
            required: ['name', 'namespace'],
            description: 'A Secret holding the PEM public key.',
            properties: { name: { type: 'string' }, namespace: { type: 'string' }, key: { type: 'string', description: 'The Secret data key (default publicKey, else the only key).' } },
          },
          keyId: { type: 'string', description: 'The key id the signature must name (JWS kid, else the payload keyid), when it names one; opa build writes "default".' },
          scope: { type: 'string', description: 'The scope the signature must carry (compared exactly; absent means empty, as in OPA).' },
          required: { type: 'boolean', description: 'Refuse bundles without a signature (default true).' },
        },
      },
      roots: { type: 'array', items: { type: 'string' }, 'x-kubernetes-list-type': 'atomic', description: 'Data paths (slash-separated, such as envoy/authz) the bundle may own: each root its manifest declares must lie within one. Default: whatever the manifest declares.' },
      rollout: rolloutSchema('revision'),
    },
  },
  statusSchema: {
    type: 'object',
    description: 'What the bundle controller activated and why a newer revision is not active.',
    properties: {
      revision: { type: 'string', description: 'The manifest revision now deciding.' },
      digest: { type: 'string', description: 'sha256 of the active bundle file.' },
      etag: { type: 'string', description: 'The ETag the http source sent with the active bundle.' },
      sourceDigest: { type: 'string', description: 'The OCI manifest digest the tag resolved to.' },
      lastActivated: { type: 'string', format: 'date-time', description: 'When the active revision went live.' },
      lastChecked: { type: 'string', format: 'date-time', description: 'When the source was last polled.' },
      candidate: { type: 'object', description: 'A newer revision that failed or is held back: revision, digest.', 'x-kubernetes-preserve-unknown-fields': true },
      replay: replayStatusSchema,
      observedGeneration: { type: 'integer' },
      conditions: { type: 'array', items: { $ref: '#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Condition' }, description: 'Ready: the newest revision is active (False with the reason when it failed to download, verify, parse or compile, or is held back). Verified: the newest download carried a valid signature.' },
    },
  },
  validate,
  printerColumns: [
    { name: 'READY', jsonPath: '.status.conditions[?(@.type=="Ready")].status', value: (o) => readyOf(o) },
    { name: 'REVISION', jsonPath: '.status.revision', value: (o) => String(o.status?.revision ?? '<none>') },
    { name: 'SOURCE', wide: true, jsonPath: '.spec.source', value: (o) => String(o.spec?.source ?? '') },
    { name: 'AGE', type: 'date', value: (o) => formatAge(o.metadata.creationTimestamp) },
  ],
};

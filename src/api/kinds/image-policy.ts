import { RE2JS } from 're2js';

import { formatAge } from '../../util/quantity.js';

import type { FieldError, KindDefinition, ResourceObject } from './types.js';

const secretRef = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  description: 'A core/v1 Secret whose data holds the value; namespace defaults to skiff-system.',
  properties: {
    name: { type: 'string', minLength: 1, description: 'The Secret\'s name.' },
    namespace: { type: 'string', description: 'The Secret\'s namespace.' },
    key: { type: 'string', description: 'The data key that holds the value; the Secret\'s only key when absent.' },
  },
};

const regoPolicy = {
  type: 'object',
  additionalProperties: false,
  required: ['type', 'data'],
  description: 'A condition over the verified predicate, in Rego: the module must define `allow` (true admits); `input.predicate` is the attestation\'s predicate, `input.predicateType` its type, `input.digest` the artifact digest.',
  properties: {
    type: { enum: ['rego'], description: 'The policy language; rego is the only one.' },
    data: { type: 'string', minLength: 1, description: 'The Rego module (v1 syntax unless it imports rego.v1 or declares v0 with regoVersion).' },
    regoVersion: { enum: ['v0', 'v1'], description: 'Rego syntax of data (default v1).' },
  },
};

const identity = {
  type: 'object',
  additionalProperties: false,
  description: 'An accepted signer: the certificate\'s OIDC issuer and subject (its SAN), each exact or as a regular expression (RE2 syntax, anchored).',
  properties: {
    issuer: { type: 'string', description: 'The OIDC issuer, exactly (https://accounts.example.com).' },
    subject: { type: 'string', description: 'The certificate identity (an email address or URI SAN), exactly.' },
    issuerRegExp: { type: 'string', description: 'The OIDC issuer as a regular expression.' },
    subjectRegExp: { type: 'string', description: 'The certificate identity as a regular expression.' },
  },
};

const authority = {
  type: 'object',
  additionalProperties: false,
  description: 'Who may have signed a matching artifact: a public key, or keyless signers (a Fulcio-issued certificate for an OIDC identity, logged in Rekor). An artifact passes the authority when it carries a valid signature from it or, when the authority lists attestations, when every listed attestation is signed by it and satisfies its policy (an attestation is itself a signature over the digest).',
  properties: {
    name: { type: 'string', description: 'The authority\'s name in messages and the decision log; authority-N (its index) when absent.' },
    key: {
      type: 'object',
      additionalProperties: false,
      description: 'A public key (PEM: ECDSA P-256/P-384 or Ed25519) that must have signed the artifact, cosign-style (sign --key).',
      properties: {
        data: { type: 'string', description: 'The PEM-encoded public key.' },
        secretRef,
        hashAlgorithm: { enum: ['sha256', 'sha384', 'sha512'], description: 'The signature\'s hash algorithm (sha256 by default).' },
      },
    },
    keyless: {
      type: 'object',
      additionalProperties: false,
      required: ['identities'],
      description: 'Keyless signatures (Sigstore bundles): a short-lived certificate from a Fulcio CA of the trust root, for one of the identities, with its signing time proven by a transparency log or timestamp authority.',
      properties: {
        identities: { type: 'array', minItems: 1, items: identity, description: 'Accepted signers; any one suffices.' },
        trustRootRef: { type: 'string', description: 'The TrustRoot object holding the CAs, transparency logs and timestamp authorities to trust.' },
      },
    },
    attestations: {
      type: 'array',
      description: 'In-toto attestations that must also be attached, signed by this authority, each with an optional Rego condition over its predicate.',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['predicateType'],
        properties: {
          name: { type: 'string', description: 'The attestation\'s name in messages.' },
          predicateType: { type: 'string', minLength: 1, description: 'The predicate type URI (https://slsa.dev/provenance/v1) or a cosign short name (slsaprovenance, spdxjson, cyclonedx, vuln, custom).' },
          policy: regoPolicy,
        },
      },
    },
  },
};

/**
 * ImagePolicy says which artifacts must be signed by whom, in the shape of Sigstore's policy-controller
 * `ClusterImagePolicy`: every policy whose `images` globs match an artifact must be satisfied, and a
 * policy is satisfied by any one of its authorities. Enforced when a Function (or anything else that
 * names an artifact) is admitted, and again when the artifact is pulled.
 *
 * @example
 * apiVersion: skiff.dev/v1
 * kind: ImagePolicy
 * metadata: { name: signed-modules }
 * spec:
 *   images: [{ glob: "registry.example.com/team/**" }]
 *   authorities:
 *     - key: { data: "-----BEGIN PUBLIC KEY-----\n..." }
 */
export const imagePolicyKind: KindDefinition = {
  kind: 'ImagePolicy',
  plural: 'imagepolicies',
  singular: 'imagepolicy',
  shortNames: ['imgpol'],
  namespaced: false,
  categories: ['sigstore'],
  description:
    'ImagePolicy requires artifacts whose reference matches one of its globs to be signed by one of its authorities (keys or keyless identities), optionally with attestations whose predicates satisfy a Rego condition. Every matching ImagePolicy must be satisfied; mode warn reports instead of refusing.',
  specSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['images', 'authorities'],
    properties: {
      images: {
        type: 'array',
        minItems: 1,
        description: 'The artifacts this policy covers.',
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['glob'],
          properties: {
            glob: { type: 'string', minLength: 1, description: 'A glob over REGISTRY/REPOSITORY (tag or digest optional): * matches within one path segment, ** across segments, ? one character. A glob without a registry host means index.docker.io.' },
          },
        },
      },
      authorities: { type: 'array', minItems: 1, items: authority, description: 'Who may have signed; any one authority satisfies the policy.' },
      mode: { enum: ['enforce', 'warn'], description: 'enforce (default) refuses what fails; warn admits it with a warning.' },
    },
  },
  statusSchema: {
    type: 'object',
    properties: {
      observedGeneration: { type: 'integer', description: 'The metadata.generation the status describes.' },
      conditions: { type: 'array', items: { $ref: '#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Condition' }, description: 'Ready: the policy is in force.' },
    },
  },
  validate: validateImagePolicy,
  printerColumns: [
    { name: 'IMAGES', jsonPath: '.spec.images[*].glob', value: (o) => globsOf(o).join(',') },
    { name: 'AUTHORITIES', type: 'integer', jsonPath: '.spec.authorities', value: (o) => String(authoritiesOf(o).length) },
    { name: 'MODE', jsonPath: '.spec.mode', value: (o) => String((o.spec as { mode?: string } | undefined)?.mode ?? 'enforce') },
    { name: 'AGE', type: 'date', value: (o) => formatAge(o.metadata.creationTimestamp) },
  ],
};

/**
 * TrustRoot holds what keyless verification trusts: Fulcio CAs, Rekor transparency logs, CT logs and
 * timestamp authorities, as Sigstore's TrustedRoot document (`trusted_root.json`) states them.
 */
export const trustRootKind: KindDefinition = {
  kind: 'TrustRoot',
  plural: 'trustroots',
  singular: 'trustroot',
  namespaced: false,
  categories: ['sigstore'],
  description: 'TrustRoot is the Sigstore trust material keyless ImagePolicy authorities name: the TrustedRoot JSON document (certificate authorities, transparency logs, CT logs, timestamp authorities).',
  specSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['trustedRoot'],
    properties: {
      trustedRoot: {
        type: 'object',
        description: 'Sigstore\'s TrustedRoot document (mediaType application/vnd.dev.sigstore.trustedroot+json;version=0.1), as in a trusted_root.json file.',
        'x-kubernetes-preserve-unknown-fields': true,
      },
    },
  },
  printerColumns: [{ name: 'AGE', type: 'date', value: (o) => formatAge(o.metadata.creationTimestamp) }],
};

function globsOf(o: ResourceObject): string[] {
  const images = (o.spec as { images?: Array<{ glob?: unknown }> } | undefined)?.images;
  return Array.isArray(images) ? images.map((i) => String(i?.glob ?? '')) : [];
}

function authoritiesOf(o: ResourceObject): unknown[] {
  const a = (o.spec as { authorities?: unknown } | undefined)?.authorities;
  return Array.isArray(a) ? a : [];
}

interface AuthoritySpec {
  name?: string;
  key?: { data?: string; secretRef?: unknown };
  keyless?: { identities?: Array<Record<string, string | undefined>> };
}

/** validateImagePolicy checks what the schema cannot: one kind of authority each, identities complete, regexps compile. */
function validateImagePolicy(obj: ResourceObject): FieldError[] {
  const errors: FieldError[] = [];
  const authorities = authoritiesOf(obj) as AuthoritySpec[];
  const names = new Set<string>();
  authorities.forEach((a, i) => {
    const field = `spec.authorities[${i}]`;
    if (!a || typeof a !== 'object') return;
    if (!!a.key === !!a.keyless) errors.push({ field, message: 'needs exactly one of key or keyless' });
    if (a.key && !!a.key.data === !!a.key.secretRef) errors.push({ field: `${field}.key`, message: 'needs exactly one of data or secretRef' });
    if (a.key?.data && !/-----BEGIN PUBLIC KEY-----[\s\S]+-----END PUBLIC KEY-----/.test(a.key.data)) {
      errors.push({ field: `${field}.key.data`, message: 'must be a PEM public key (-----BEGIN PUBLIC KEY-----)' });
    }
    const name = a.name ?? `authority-${i}`;
    if (names.has(name)) errors.push({ field: `${field}.name`, message: `"${name}" names another authority too; names must be unique` });
    names.add(name);
    a.keyless?.identities?.forEach((id, j) => {
      const f = `${field}.keyless.identities[${j}]`;
      if (!id) return;
      if (id.issuer === undefined && id.issuerRegExp === undefined) errors.push({ field: f, message: 'needs issuer or issuerRegExp' });
      if (id.subject === undefined && id.subjectRegExp === undefined) errors.push({ field: f, message: 'needs subject or subjectRegExp' });
      for (const k of ['issuerRegExp', 'subjectRegExp'] as const) {
        const re = id[k];
        if (re === undefined) continue;
        try {
          RE2JS.compile(re);
        } catch (err) {
          errors.push({ field: `${f}.${k}`, message: `does not compile: ${(err as Error).message}` });
        }
      }
    });
  });
  return errors;
}

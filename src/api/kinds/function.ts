import { formatAge,parseBytes, parseDurationMs } from '../../util/quantity.js';

import { readyOf } from './conditions.js';
import { placementSpecProperties, placementStatusProperties, validatePlacement } from './function-placement.js';
import { replicasColumn, replicaStatusProperties, type ScaleSpecValidator } from './function-scale.js';
import { requiredWorkloadFields, validateWorkload, workloadSpecProperties } from './function-workload.js';
import { MODULE_SOURCE_ANNOTATION, parseModuleRef } from './module-ref.js';
import type { FieldError, KindDefinition, ResourceObject } from './types.js';

const quantity = (description: string) => ({ anyOf: [{ type: 'string' }, { type: 'integer', minimum: 0 }], description });
const stringMap = (description: string) => ({ type: 'object', additionalProperties: { type: 'string' }, description });

/**
 * functionKindWith is the Function kind with the autoscaler's checks of spec.scale connected: the
 * API cannot import the autoscaler (it sits above), so the composition root passes its
 * `validateScaleSpec` here, through `builtinKinds`.
 */
export function functionKindWith(scaleValidator: ScaleSpecValidator | undefined): KindDefinition {
  if (!scaleValidator) return functionKind;
  return {
    ...functionKind,
    validate(obj: ResourceObject): FieldError[] {
      const errs = functionKind.validate!(obj);
      // The one call site of the autoscaler's semantic checks of spec.scale.
      if (obj.spec?.scale !== undefined) errs.push(...scaleValidator(obj));
      return errs;
    },
  };
}

/** Function: a WASI module served over HTTP with the WAGI convention, or a container or VM image serving HTTP on a port. */
export const functionKind: KindDefinition = {
  kind: 'Function',
  plural: 'functions',
  singular: 'function',
  shortNames: ['fn'],
  categories: ['all'],
  namespaced: true,
  description:
    'Function is what a Route sends traffic to. By default (runtimeClassName wasm) it is a WebAssembly (WASI) module that answers HTTP requests with the WAGI convention: the request arrives as CGI-style environment variables and stdin, the response is what the module writes to stdout; the module gets nothing the spec does not grant. With runtimeClassName container or vm it is an OCI image whose process serves HTTP on $PORT, run as isolated replicas.',
  specSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      ...workloadSpecProperties,
      ...placementSpecProperties,
      module: {
        type: 'string',
        minLength: 1,
        description:
          'For wasm Functions (required there): where the module comes from: blob:sha256:HEX (bytes uploaded to the server, what skiff apply sends for a local file), oci://REGISTRY/REPO@sha256:HEX or oci://REGISTRY/REPO:TAG (a Wasm artifact pushed with skiff push; a tag is resolved once and pinned in status.resolvedModule), an http(s) URL the server fetches, or an absolute host path or file:// URL inside a directory the operator granted with --allow-host-dir.',
      },
      imagePullSecrets: {
        type: 'array',
        description: 'Secrets of type kubernetes.io/dockerconfigjson in the Function\'s namespace whose registry credentials are used to pull an oci:// module (the first Secret with an entry for the registry wins).',
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['name'],
        items: { type: 'object', additionalProperties: false, required: ['name'], properties: { name: { type: 'string', minLength: 1, description: 'Name of the Secret.' } } },
      },
      digest: { type: 'string', pattern: '^sha256:[0-9a-f]{64}$', description: 'sha256:HEX the module bytes must have, whatever their source; a module that differs is not loaded (DigestMismatch).' },
      // Ownership (server-side apply): arguments are one ordered value; dirs are keyed by guest path,
      // which no two mounts share, so managers can own mounts one by one.
      args: { type: 'array', items: { type: 'string' }, 'x-kubernetes-list-type': 'atomic', description: 'Arguments the module receives after argv[0].' },
      env: stringMap('Environment variables added to every request\'s environment.'),
      capabilities: {
        type: 'object',
        additionalProperties: false,
        description: 'What the sandbox lets the module reach. Nothing is ambient: a capability left out is not there.',
        properties: {
          dirs: {
            type: 'array',
            description: 'Host directories mounted into the guest filesystem.',
            'x-kubernetes-list-type': 'map',
            'x-kubernetes-list-map-keys': ['guest'],
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['host', 'guest'],
              properties: {
                host: { type: 'string', minLength: 1, description: 'Absolute host directory; it must lie inside a directory the operator granted with --allow-host-dir.' },
                guest: { type: 'string', minLength: 1, description: 'Absolute path the module sees it at, such as /data.' },
                readOnly: { type: 'boolean', description: 'Mount without write access (recommended unless the module writes).' },
              },
            },
          },
          memfs: { type: 'boolean', description: 'Give the module an empty in-memory scratch filesystem, discarded after each request.' },
          env: stringMap('Environment variables granted to the module, on top of spec.env; a request\'s own variables win over them.'),
          clock: { enum: ['real', 'frozen'], description: 'What the module\'s clocks read: real time, or a fixed instant (reproducible runs). Without it the module has no clock.' },
          random: {
            anyOf: [{ enum: ['real'] }, { type: 'object', additionalProperties: false, required: ['seed'], properties: { seed: { type: 'integer', description: 'Seed of the deterministic generator.' } } }],
            description: 'Where random bytes come from: real (the host\'s secure generator) or {seed: N} (the same bytes on every run). Without it the module has no random source.',
          },
        },
      },
      limits: {
        type: 'object',
        additionalProperties: false,
        description: 'Resource limits per request. Each defaults to the server\'s default and may not exceed the maximum the operator set (skiff up --max-function-*).',
        properties: {
          memory: quantity('Largest linear memory the module may grow to, as a byte quantity (64Mi) or a number of bytes. Default 128Mi.'),
          timeout: quantity('Wall-clock deadline of one request, as a duration (2s, 250ms) or milliseconds. Default 10s.'),
          concurrency: { type: 'integer', minimum: 1, description: 'Requests that may run at once. Default 64.' },
          queue: { type: 'integer', minimum: 0, description: 'Requests that may wait beyond concurrency before the gateway answers 503. Default 256.' },
          output: quantity('Largest stdout plus stderr of one request, as a byte quantity (1Mi) or a number of bytes. Default 16Mi.'),
        },
      },
    },
  },
  statusSchema: {
    type: 'object',
    description: 'What the server loaded for this Function, written by the function controller.',
    properties: {
      digest: { type: 'string', description: 'sha256 of the module being served, or of the image manifest for a container or vm Function.' },
      resolvedModule: { type: 'string', description: 'For an oci:// module: the reference spec.module resolved to, pinned by digest (oci://REGISTRY/REPO:TAG@sha256:HEX). Restarts and re-reconciles pull this digest; a tag moved in the registry is picked up only when spec.module changes.' },
      runtimeClassName: { type: 'string', description: 'The runtime class the Function runs as, and its handler (container/bwrap).' },
      resolvedImage: { type: 'string', description: 'For a container or vm Function: the image spec.image resolved to, pinned by digest.' },
      ...replicaStatusProperties,
      ...placementStatusProperties,
      replicaStatuses: {
        type: 'array',
        description: 'Each replica: its state (Starting, Ready, NotReady, Stopping, CrashLoopBackOff), restarts and the last exit.',
        items: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
      },
      resources: {
        type: 'object',
        description: 'For a container or vm Function: the limits each replica runs under, the RuntimeClass overhead included.',
        properties: {
          memory: { type: 'string', description: 'Memory limit per replica (spec.resources.memory plus the class overhead), e.g. 320Mi.' },
          cpu: { type: 'string', description: 'CPU limit per replica in millicores, e.g. 600m; absent when unlimited.' },
          overhead: { type: 'object', additionalProperties: { type: 'string' }, description: "The RuntimeClass's overhead.podFixed that was added." },
        },
      },
      isolation: { type: 'object', description: 'The isolation the replicas actually got: namespaces, capabilities, seccomp, limits mechanism, network.', 'x-kubernetes-preserve-unknown-fields': true },
      size: { type: 'integer', description: 'Size of the module in bytes.' },
      compileMs: { type: 'number', description: 'How long compiling the module took, in milliseconds.' },
      imports: { type: 'array', items: { type: 'string' }, description: 'The host functions the module imports, as MODULE.NAME.' },
      capabilities: { type: 'array', items: { type: 'string' }, description: 'The capabilities the module could possibly use, from its imports.' },
      conditions: { type: 'array', items: { $ref: '#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Condition' }, description: 'Ready: True while the module is served; False with the reason when the latest spec could not be loaded (the previous good module keeps serving).' },
    },
  },
  requiredFields: requiredWorkloadFields,
  validate(obj: ResourceObject): FieldError[] {
    const spec = obj.spec ?? {};
    const errs: FieldError[] = [...validateWorkload(spec), ...validatePlacement(spec)];
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
    { name: 'REPLICAS', description: 'Ready replicas / desired replicas', value: (o) => replicasColumn(o) },
    { name: 'DIGEST', description: 'Start of the sha256 digest of the module that runs', value: (o) => (o.status?.digest ? String(o.status.digest).slice(7, 19) : '<none>') },
    { name: 'AGE', type: 'date', value: (o) => formatAge(o.metadata.creationTimestamp) },
    { name: 'SIZE', wide: true, type: 'integer', description: 'Size of the compiled module in bytes', value: (o) => (o.status?.size !== undefined ? String(o.status.size) : '<none>') },
    { name: 'MODULE', wide: true, description: 'Where the module came from (the file skiff apply uploaded, or spec.module)', value: (o) => moduleColumn(o) },
    { name: 'REASON', wide: true, description: 'Why the autoscaler chose the desired replicas (status.autoscaler.reason)', jsonPath: '.status.autoscaler.reason', value: (o) => (o.status?.autoscaler?.reason !== undefined ? String(o.status.autoscaler.reason) : '<none>') },
    { name: 'CLASS', wide: true, description: 'The runtime class (wasm, container, vm)', value: (o) => String(o.spec?.runtimeClassName ?? 'wasm') },
  ],
};

/** moduleColumn shows where a Function's module came from: for an uploaded module, the file `skiff apply` read and the digest. */
function moduleColumn(o: ResourceObject): string {
  if (o.spec?.image !== undefined) return String(o.status?.resolvedImage ?? o.spec.image);
  const module = String(o.spec?.module ?? '');
  const ref = parseModuleRef(module);
  if (ref.type === 'oci') return String(o.status?.resolvedModule ?? module);
  if (ref.type !== 'blob') return module;
  const source = o.metadata.annotations?.[MODULE_SOURCE_ANNOTATION];
  return source ? `${source} (uploaded ${ref.digest.slice(7, 19)})` : module;
}

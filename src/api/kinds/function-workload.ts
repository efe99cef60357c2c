import { parseBytes } from '../../util/quantity.js';

import { replicasSchema, scaleSpecSchema } from './function-scale.js';
import type { FieldError } from './types.js';

/**
 * The Function fields of the container and vm runtime classes (spec.image and what runs from it),
 * beside the Wasm fields in function.ts. Shapes follow a Kubernetes container where they overlap
 * (command, args, resources, probes), so manifests read the same.
 */

const quantity = (description: string) => ({ anyOf: [{ type: 'string' }, { type: 'integer', minimum: 0 }], description });

const probeSchema = (what: string) => ({
  type: 'object',
  additionalProperties: false,
  description: `${what} An HTTP GET through the replica's port: any answer below 400 passes. Without a probe, a replica is ready once its port answers HTTP at all.`,
  properties: {
    httpGet: {
      type: 'object',
      additionalProperties: false,
      description: 'Probe with an HTTP GET.',
      properties: {
        path: { type: 'string', description: 'Path to request, such as /healthz. Default /.' },
        port: { anyOf: [{ type: 'integer', minimum: 1, maximum: 65535 }, { type: 'string' }], description: 'Accepted for compatibility; the probe always uses spec.port.' },
        httpHeaders: { type: 'array', items: { type: 'object', required: ['name', 'value'], properties: { name: { type: 'string', description: 'Header name.' }, value: { type: 'string', description: 'Header value.' } } }, description: 'Headers sent with the probe.' },
      },
    },
    tcpSocket: { type: 'object', description: 'Probe by opening a connection to the port: it passes when the port accepts (and answers HTTP, since the replica is reached through an HTTP bridge).', 'x-kubernetes-preserve-unknown-fields': true },
    initialDelaySeconds: { type: 'integer', minimum: 0, description: 'Seconds after the start before the first probe. Default 0.' },
    periodSeconds: { type: 'integer', minimum: 1, description: 'Seconds between probes. Default 10 (1 until the replica is first ready).' },
    timeoutSeconds: { type: 'integer', minimum: 1, description: 'Seconds a probe may take. Default 1.' },
    failureThreshold: { type: 'integer', minimum: 1, description: 'Failed probes in a row before the replica counts as failed. Default 3.' },
    successThreshold: { type: 'integer', minimum: 1, description: 'Passed probes in a row before a failed replica counts as ready again. Default 1.' },
  },
});

/** Schema properties of Function.spec for the container and vm classes. */
export const workloadSpecProperties = {
  runtimeClassName: { type: 'string', minLength: 1, description: 'The RuntimeClass that runs this Function: wasm (default; spec.module), container or vm (spec.image), or another RuntimeClass object\'s name.' },
  image: {
    type: 'string',
    minLength: 1,
    description: 'For the container and vm classes: the OCI image to run, oci://REGISTRY/REPO@sha256:HEX (a tag is resolved once and pinned in status.resolvedImage), or the absolute path of a local OCI image layout directory inside a directory the operator granted with --allow-host-dir.',
  },
  command: { type: 'array', items: { type: 'string' }, 'x-kubernetes-list-type': 'atomic', description: 'For container and vm: replaces the image\'s entrypoint. spec.args then replaces its cmd.' },
  port: { type: 'integer', minimum: 1, maximum: 65535, description: 'For container and vm: the TCP port the process serves HTTP on inside its own network; it gets it as $PORT. Default 8080.' },
  workingDir: { type: 'string', description: 'For container and vm: the working directory, instead of the image\'s.' },
  resources: {
    type: 'object',
    additionalProperties: false,
    description: 'For container and vm: what one replica may use (a VM gets this much memory and these CPUs).',
    properties: {
      cpu: quantity('CPU as cores (1, 0.5) or millicores (500m). Default: no limit for containers, 1 vCPU for VMs.'),
      memory: quantity('Memory as a byte quantity (128Mi). Default 256Mi.'),
      pids: { type: 'integer', minimum: 1, description: 'Processes and threads at once. Default 256.' },
    },
  },
  readinessProbe: probeSchema('When a replica receives traffic.'),
  livenessProbe: probeSchema('When a running replica is restarted.'),
  terminationGracePeriodSeconds: { type: 'integer', minimum: 0, description: 'Seconds between SIGTERM and SIGKILL when a replica stops. Default 30.' },
  replicas: replicasSchema,
  scale: scaleSpecSchema,
} as const;

/** parseCpuMillis reads a CPU quantity: 2, 0.5, "1.5", "500m". */
export function parseCpuMillis(q: string | number): number | undefined {
  if (typeof q === 'number') return q > 0 && Number.isFinite(q) ? Math.round(q * 1000) : undefined;
  const m = /^([0-9]+(?:\.[0-9]+)?)(m?)$/.exec(q.trim());
  if (!m) return undefined;
  const v = m[2] ? Number(m[1]) : Number(m[1]) * 1000;
  return v > 0 ? Math.round(v) : undefined;
}

/** The built-in classes that run an image; another class runs whichever of module or image the Function names. */
const IMAGE_CLASSES = new Set(['container', 'vm']);

/**
 * runsImage: a Function runs an image (replicas of a container or VM handler) when it names one or its
 * class is container or vm; otherwise a module in the Wasm sandbox. A RuntimeClass of one's own (handler
 * wasm, bwrap, runc or qemu) goes by what the Function names; its controller checks the handler fits.
 */
export function runsImage(spec: { runtimeClassName?: string; image?: unknown; module?: unknown }): boolean {
  return spec.image !== undefined || IMAGE_CLASSES.has(spec.runtimeClassName ?? 'wasm');
}

/** requiredWorkloadFields: a wasm Function needs spec.module, a container or vm one spec.image, any other class one of them. */
export function requiredWorkloadFields(spec: Record<string, unknown>): FieldError[] {
  const cls = typeof spec.runtimeClassName === 'string' ? spec.runtimeClassName : 'wasm';
  if (cls === 'wasm' && spec.module === undefined) return [{ field: 'spec.module', message: 'Required value: a wasm Function runs a module (or set spec.runtimeClassName: container or vm and spec.image)', reason: 'FieldValueRequired' }];
  if (IMAGE_CLASSES.has(cls) && spec.image === undefined) return [{ field: 'spec.image', message: `Required value: a ${cls} Function runs an image: oci://REGISTRY/REPO@sha256:HEX, or the path of an OCI image layout directory`, reason: 'FieldValueRequired' }];
  if (spec.module === undefined && spec.image === undefined) {
    return [{ field: 'spec.module', message: `Required value: a Function of RuntimeClass ${cls} runs spec.module (when the class's handler is wasm) or spec.image (bwrap, runc or qemu)`, reason: 'FieldValueRequired' }];
  }
  return [];
}

/** validateWorkload checks the container/vm fields beyond the schema. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a spec as stored: any shape, checked field by field
export function validateWorkload(spec: Record<string, any>): FieldError[] {
  const errs: FieldError[] = [];
  const cls = spec.runtimeClassName ?? 'wasm';
  if (cls === 'wasm') {
    if (spec.image !== undefined) errs.push({ field: 'spec.image', message: 'needs spec.runtimeClassName container or vm: a wasm Function runs spec.module', reason: 'FieldValueForbidden' });
  } else if (!IMAGE_CLASSES.has(cls) && spec.image === undefined) {
    // A class of one's own running a module: the wasm fields apply, the image fields do not.
    for (const imageOnly of ['command', 'port', 'readinessProbe', 'livenessProbe']) {
      if (spec[imageOnly] !== undefined) errs.push({ field: `spec.${imageOnly}`, message: `applies to Functions that run spec.image; this one runs spec.module`, reason: 'FieldValueForbidden' });
    }
  } else {
    if (spec.module !== undefined) errs.push({ field: 'spec.module', message: `a ${cls} Function runs spec.image; set one of spec.module and spec.image, not both`, reason: 'FieldValueForbidden' });
    if (typeof spec.image === 'string' && !spec.image.startsWith('oci://') && !spec.image.startsWith('/')) {
      errs.push({ field: 'spec.image', message: `"${spec.image}" must be oci://REGISTRY/REPO@sha256:HEX (or :TAG) or an absolute path of an OCI image layout directory`, reason: 'FieldValueNotSupported' });
    }
    for (const wasmOnly of ['capabilities', 'limits', 'digest']) {
      if (spec[wasmOnly] !== undefined) errs.push({ field: `spec.${wasmOnly}`, message: `applies to wasm Functions only; a ${cls} Function uses spec.resources`, reason: 'FieldValueForbidden' });
    }
  }
  const r = spec.resources ?? {};
  if (r.memory !== undefined && parseBytes(r.memory) === undefined) errs.push({ field: 'spec.resources.memory', message: `"${r.memory}" is not a byte quantity (e.g. 128Mi)` });
  if (r.cpu !== undefined && parseCpuMillis(r.cpu) === undefined) errs.push({ field: 'spec.resources.cpu', message: `"${r.cpu}" is not a CPU quantity (e.g. 500m or 1)` });
  return errs;
}

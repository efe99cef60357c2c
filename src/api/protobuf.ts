import { ApiError, badRequest } from './errors.js';

/**
 * A reader for the protobuf wire format, enough to decode the few Kubernetes messages clients send
 * only as protobuf: client-go's typed clientset (which kubectl uses for `auth can-i` and `auth whoami`)
 * encodes built-in kinds as `application/vnd.kubernetes.protobuf` and has no JSON fallback for a
 * request body. Answers go out as JSON, which such clients accept too.
 */

/** The media type of Kubernetes' protobuf encoding. */
export const PROTOBUF_MEDIA_TYPE = 'application/vnd.kubernetes.protobuf';

/** isProtobuf tells whether a Content-Type header names Kubernetes' protobuf encoding. */
export function isProtobuf(contentType: string | undefined): boolean {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase() === PROTOBUF_MEDIA_TYPE;
}

/** The four bytes that start every Kubernetes protobuf body ("k8s" and a zero). */
const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

/** A decoded message: field number → the values in order (a varint as a bigint, a length-delimited field as bytes). */
export type ProtoFields = Map<number, Array<bigint | Buffer>>;

/** readMessage splits one message into its fields; 400 on a truncated or malformed body. */
export function readMessage(buf: Buffer): ProtoFields {
  const fields: ProtoFields = new Map();
  let pos = 0;
  const varint = (): bigint => {
    let result = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (pos >= buf.length) throw malformed('a varint runs past the end');
      const b = buf[pos++]!;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
    }
    throw malformed('a varint is longer than ten bytes');
  };
  while (pos < buf.length) {
    const key = varint();
    const field = Number(key >> 3n);
    const wire = Number(key & 7n);
    let value: bigint | Buffer;
    switch (wire) {
      case 0:
        value = varint();
        break;
      case 1:
      case 5: {
        const width = wire === 1 ? 8 : 4;
        if (pos + width > buf.length) throw malformed('a fixed-width field runs past the end');
        value = buf.subarray(pos, pos + width);
        pos += width;
        break;
      }
      case 2: {
        const len = Number(varint());
        if (pos + len > buf.length) throw malformed(`field ${field} claims ${len} bytes past the end`);
        value = buf.subarray(pos, pos + len);
        pos += len;
        break;
      }
      default:
        throw malformed(`field ${field} has wire type ${wire}, which Kubernetes messages do not use`);
    }
    if (field === 0) throw malformed('field number 0 is not valid');
    const list = fields.get(field) ?? [];
    list.push(value);
    fields.set(field, list);
  }
  return fields;
}

/** str reads the last occurrence of a string field ('' when absent, as proto2 optional strings default). */
export function str(fields: ProtoFields, n: number): string {
  const v = fields.get(n)?.at(-1);
  return Buffer.isBuffer(v) ? v.toString('utf8') : '';
}

/** msg reads the last occurrence of an embedded message field (undefined when absent). */
export function msg(fields: ProtoFields, n: number): ProtoFields | undefined {
  const v = fields.get(n)?.at(-1);
  return Buffer.isBuffer(v) ? readMessage(v) : undefined;
}

/**
 * unwrapEnvelope checks the "k8s\0" magic and the runtime.Unknown envelope around a Kubernetes
 * protobuf body, and returns its declared apiVersion and kind and the object's own bytes.
 */
export function unwrapEnvelope(body: Buffer): { apiVersion: string; kind: string; raw: Buffer } {
  if (body.length < MAGIC.length || !body.subarray(0, MAGIC.length).equals(MAGIC)) throw malformed('the body does not start with the "k8s\\0" prefix');
  const unknown = readMessage(body.subarray(MAGIC.length));
  const typeMeta = msg(unknown, 1);
  const encoding = str(unknown, 3);
  if (encoding !== '') throw malformed(`content encoding "${encoding}" is not supported`);
  const raw = unknown.get(2)?.at(-1);
  return { apiVersion: typeMeta ? str(typeMeta, 1) : '', kind: typeMeta ? str(typeMeta, 2) : '', raw: Buffer.isBuffer(raw) ? raw : Buffer.alloc(0) };
}

function malformed(why: string) {
  return badRequest(`the protobuf request body is malformed: ${why}`);
}

/** strs reads every occurrence of a repeated string field. */
function strs(fields: ProtoFields, n: number): string[] {
  return (fields.get(n) ?? []).filter(Buffer.isBuffer).map((b) => b.toString('utf8'));
}

/** stringMap reads a map<string, string> field (repeated entries of key 1, value 2). */
function stringMap(fields: ProtoFields, n: number): Record<string, string> | undefined {
  const entries = (fields.get(n) ?? []).filter(Buffer.isBuffer).map((b) => readMessage(b));
  if (!entries.length) return undefined;
  return Object.fromEntries(entries.map((e) => [str(e, 1), str(e, 2)]));
}

/**
 * objectMeta reads the parts of ObjectMeta a client sets when it creates an object (name,
 * generateName, namespace, labels, annotations, finalizers); what the server owns is ignored.
 */
function objectMeta(fields: ProtoFields | undefined): Record<string, unknown> {
  if (!fields) return {};
  const out: Record<string, unknown> = {};
  for (const [key, n] of [['name', 1], ['generateName', 2], ['namespace', 3]] as const) if (str(fields, n)) out[key] = str(fields, n);
  const labels = stringMap(fields, 11);
  const annotations = stringMap(fields, 12);
  const finalizers = strs(fields, 14);
  return { ...out, ...(labels ? { labels } : {}), ...(annotations ? { annotations } : {}), ...(finalizers.length ? { finalizers } : {}) };
}

/**
 * objectFromProtobuf decodes an object client-go's typed clients send as protobuf to one the rest of
 * the API handles as if it came as JSON. Of the kinds Skiff serves only the core group's are built
 * into those clients, and of those only Namespace is created that way (`kubectl create namespace`);
 * anything else is 415.
 */
export function objectFromProtobuf(body: Buffer): Record<string, unknown> {
  const env = unwrapEnvelope(body);
  if (env.apiVersion === 'v1' && env.kind === 'Namespace') {
    const raw = readMessage(env.raw);
    const finalizers = strs(msg(raw, 2) ?? new Map(), 1);
    return { apiVersion: 'v1', kind: 'Namespace', metadata: objectMeta(msg(raw, 1)), ...(finalizers.length ? { spec: { finalizers } } : {}) };
  }
  throw new ApiError(415, 'UnsupportedMediaType', `Kubernetes protobuf is accepted for a v1 Namespace and the self-reviews only, not for ${env.apiVersion || '(no apiVersion)'} ${env.kind || '(no kind)'}; send the object as JSON or YAML`);
}

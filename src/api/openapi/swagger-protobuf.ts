import { stringify as toYaml } from 'yaml';

import type { SchemaObject } from './convert.js';

/**
 * The protobuf form of `/openapi/v2`: the Swagger 2.0 document as gnostic's `openapi.v2.Document`
 * message (OpenAPIv2.proto), which is what kube-apiserver serves for this media type and what
 * kubectl asks for, with no JSON fallback, where it reads the v2 document: `kubectl explain
 * --output plaintext-openapiv2`, and the fallback of its `fieldValidation` check when a kind is
 * missing from the v3 index it fetched earlier (a constraint kind created by a template applied in
 * the same `kubectl apply`). The JSON document is translated field by field; extensions (`x-…`)
 * and the values gnostic keeps as `Any` (default, enum, example) carry their value as YAML text.
 */

/** The media type kubectl sends in Accept for the protobuf v2 document. */
export const SWAGGER_PROTOBUF_MEDIA_TYPE = 'application/com.github.proto-openapi.spec.v2@v1.0+protobuf';

/** isSwaggerProtobuf tells whether a media type names the protobuf v2 document (kube-openapi accepts `.v1.0` for `@v1.0` too). */
export function isSwaggerProtobuf(type: string): boolean {
  return type === SWAGGER_PROTOBUF_MEDIA_TYPE || type === 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf';
}

/** A message being written: fields appended in order, each with its key. */
class Writer {
  private readonly parts: Buffer[] = [];

  bytes(): Buffer {
    return Buffer.concat(this.parts);
  }

  private key(field: number, wire: number): void {
    this.varint(BigInt(field * 8 + wire));
  }

  private varint(v: bigint): void {
    // Negative int64 values go out as their two's complement in ten bytes, as protobuf encodes them.
    let n = v < 0n ? (1n << 64n) + v : v;
    const out: number[] = [];
    while (n >= 0x80n) {
      out.push(Number(n & 0x7fn) | 0x80);
      n >>= 7n;
    }
    out.push(Number(n));
    this.parts.push(Buffer.from(out));
  }

  /** string writes a string field; proto3 leaves the empty string out. */
  string(field: number, v: unknown): void {
    if (typeof v !== 'string' || v === '') return;
    this.message(field, Buffer.from(v, 'utf8'));
  }

  strings(field: number, v: unknown): void {
    if (Array.isArray(v)) for (const s of v) if (typeof s === 'string') this.message(field, Buffer.from(s, 'utf8'));
  }

  bool(field: number, v: unknown): void {
    if (v !== true) return;
    this.key(field, 0);
    this.varint(1n);
  }

  int64(field: number, v: unknown): void {
    if (typeof v !== 'number' || !Number.isInteger(v) || v === 0) return;
    this.key(field, 0);
    this.varint(BigInt(v));
  }

  double(field: number, v: unknown): void {
    if (typeof v !== 'number' || v === 0) return;
    this.key(field, 1);
    const b = Buffer.alloc(8);
    b.writeDoubleLE(v);
    this.parts.push(b);
  }

  /** message writes an embedded message (or raw bytes), even an empty one: presence is meaningful there. */
  message(field: number, body: Buffer | undefined): void {
    if (body === undefined) return;
    this.key(field, 2);
    this.varint(BigInt(body.length));
    this.parts.push(body);
  }
}

const isObj = (v: unknown): v is SchemaObject => v !== null && typeof v === 'object' && !Array.isArray(v);

/** build writes one message with `fill` and returns its bytes. */
function build(fill: (w: Writer) => void): Buffer {
  const w = new Writer();
  fill(w);
  return w.bytes();
}

/** anyOf is gnostic's `Any`: a value kept as YAML text (field 2). */
function anyOf(value: unknown): Buffer {
  return build((w) => w.string(2, toYaml(value)));
}

/** namedAny is a `NamedAny` (name 1, Any 2): one extension or one entry of a free-form map. */
function namedAny(name: string, value: unknown): Buffer {
  return build((w) => {
    w.string(1, name);
    w.message(2, anyOf(value));
  });
}

/** extensions writes an object's `x-…` keys as repeated NamedAny in `field`. */
function extensions(w: Writer, field: number, obj: SchemaObject): void {
  for (const [k, v] of Object.entries(obj)) if (k.startsWith('x-')) w.message(field, namedAny(k, v));
}

/** named writes a map as repeated (name 1, value 2) entries, each value encoded by `encode`. */
function named(w: Writer, field: number, map: unknown, encode: (v: unknown) => Buffer): void {
  if (!isObj(map)) return;
  for (const [k, v] of Object.entries(map)) {
    w.message(
      field,
      build((e) => {
        e.string(1, k);
        e.message(2, encode(v));
      }),
    );
  }
}

/** schema is a `Schema` message. */
function schema(s: unknown): Buffer {
  if (!isObj(s)) return Buffer.alloc(0);
  return build((w) => {
    w.string(1, s.$ref);
    w.string(2, s.format);
    w.string(3, s.title);
    w.string(4, s.description);
    if (s.default !== undefined) w.message(5, anyOf(s.default));
    w.double(6, s.multipleOf);
    w.double(7, s.maximum);
    w.bool(8, s.exclusiveMaximum);
    w.double(9, s.minimum);
    w.bool(10, s.exclusiveMinimum);
    w.int64(11, s.maxLength);
    w.int64(12, s.minLength);
    w.string(13, s.pattern);
    w.int64(14, s.maxItems);
    w.int64(15, s.minItems);
    w.bool(16, s.uniqueItems);
    w.int64(17, s.maxProperties);
    w.int64(18, s.minProperties);
    w.strings(19, s.required);
    if (Array.isArray(s.enum)) for (const v of s.enum) w.message(20, anyOf(v));
    if (typeof s.additionalProperties === 'boolean') w.message(21, build((a) => a.bool(2, s.additionalProperties)));
    else if (isObj(s.additionalProperties)) w.message(21, build((a) => a.message(1, schema(s.additionalProperties))));
    if (s.type !== undefined) w.message(22, build((t) => t.strings(1, Array.isArray(s.type) ? s.type : [s.type])));
    if (s.items !== undefined) w.message(23, build((i) => (Array.isArray(s.items) ? s.items : [s.items]).forEach((x) => i.message(1, schema(x)))));
    if (Array.isArray(s.allOf)) for (const x of s.allOf) w.message(24, schema(x));
    if (isObj(s.properties)) w.message(25, build((p) => named(p, 1, s.properties, schema)));
    w.string(26, s.discriminator);
    w.bool(27, s.readOnly);
    if (s.example !== undefined) w.message(30, anyOf(s.example));
    extensions(w, 31, s);
  });
}

/** parameter is a `ParametersItem`: a body parameter, a query or path parameter, or a `$ref`. */
function parameter(p: unknown): Buffer {
  if (!isObj(p)) return Buffer.alloc(0);
  if (typeof p.$ref === 'string') return build((w) => w.message(2, build((r) => r.string(1, p.$ref))));
  const param =
    p.in === 'body'
      ? build((w) =>
          w.message(
            1,
            build((b) => {
              b.string(1, p.description);
              b.string(2, p.name);
              b.string(3, p.in);
              b.bool(4, p.required);
              b.message(5, schema(p.schema));
              extensions(b, 6, p);
            }),
          ),
        )
      : build((w) => w.message(2, nonBody(p)));
  return build((w) => w.message(1, param));
}

/** nonBody is a `NonBodyParameter`: Skiff's parameters are in the query or the path. */
function nonBody(p: SchemaObject): Buffer {
  const common = (w: Writer) => {
    w.bool(1, p.required);
    w.string(2, p.in);
    w.string(3, p.description);
    w.string(4, p.name);
  };
  if (p.in === 'path') {
    // PathParameterSubSchema: type 5, unique_items 19, extensions 22.
    return build((w) =>
      w.message(
        4,
        build((s) => {
          common(s);
          s.string(5, p.type);
          s.string(6, p.format);
          s.bool(19, p.uniqueItems);
          extensions(s, 22, p);
        }),
      ),
    );
  }
  // QueryParameterSubSchema: type 6, unique_items 20, extensions 23.
  return build((w) =>
    w.message(
      3,
      build((s) => {
        common(s);
        s.bool(5, p.allowEmptyValue);
        s.string(6, p.type);
        s.string(7, p.format);
        s.bool(20, p.uniqueItems);
        extensions(s, 23, p);
      }),
    ),
  );
}

/** response is a `ResponseValue` holding a `Response` (description, schema). */
function response(r: unknown): Buffer {
  if (!isObj(r)) return Buffer.alloc(0);
  const body = build((w) => {
    w.string(1, r.description);
    if (r.schema !== undefined) w.message(2, build((si) => si.message(1, schema(r.schema))));
    extensions(w, 5, r);
  });
  return build((w) => w.message(1, body));
}

/** operation is an `Operation`. */
function operation(op: unknown): Buffer | undefined {
  if (!isObj(op)) return undefined;
  return build((w) => {
    w.strings(1, op.tags);
    w.string(2, op.summary);
    w.string(3, op.description);
    w.string(5, op.operationId);
    w.strings(6, op.produces);
    w.strings(7, op.consumes);
    if (Array.isArray(op.parameters)) for (const p of op.parameters) w.message(8, parameter(p));
    if (isObj(op.responses)) w.message(9, build((r) => named(r, 1, op.responses, response)));
    w.strings(10, op.schemes);
    w.bool(11, op.deprecated);
    extensions(w, 13, op);
  });
}

/** pathItem is a `PathItem`: its operations by method, then the parameters they share. */
function pathItem(item: unknown): Buffer {
  if (!isObj(item)) return Buffer.alloc(0);
  return build((w) => {
    w.string(1, item.$ref);
    for (const [method, field] of [['get', 2], ['put', 3], ['post', 4], ['delete', 5], ['options', 6], ['head', 7], ['patch', 8]] as const) w.message(field, operation(item[method]));
    if (Array.isArray(item.parameters)) for (const p of item.parameters) w.message(9, parameter(p));
    extensions(w, 10, item);
  });
}

/** securityDefinition is a `SecurityDefinitionsItem`; Skiff declares its bearer token as an API key. */
function securityDefinition(d: unknown): Buffer {
  if (!isObj(d) || d.type !== 'apiKey') return Buffer.alloc(0);
  return build((w) =>
    w.message(
      2,
      build((k) => {
        k.string(1, d.type);
        k.string(2, d.name);
        k.string(3, d.in);
        k.string(4, d.description);
        extensions(k, 5, d);
      }),
    ),
  );
}

/** encodeSwagger is the protobuf `openapi.v2.Document` of a Swagger 2.0 document. */
export function encodeSwagger(doc: SchemaObject): Buffer {
  return build((w) => {
    w.string(1, doc.swagger);
    if (isObj(doc.info)) {
      const info = doc.info;
      w.message(
        2,
        build((i) => {
          i.string(1, info.title);
          i.string(2, info.version);
          i.string(3, info.description);
          extensions(i, 7, info);
        }),
      );
    }
    w.string(3, doc.host);
    w.string(4, doc.basePath);
    w.strings(5, doc.schemes);
    w.strings(6, doc.consumes);
    w.strings(7, doc.produces);
    if (isObj(doc.paths)) w.message(8, build((p) => named(p, 2, doc.paths, pathItem)));
    if (isObj(doc.definitions)) w.message(9, build((d) => named(d, 1, doc.definitions, schema)));
    if (Array.isArray(doc.security)) {
      for (const req of doc.security) w.message(12, build((r) => named(r, 1, req, (scopes) => build((a) => a.strings(1, scopes)))));
    }
    if (isObj(doc.securityDefinitions)) w.message(13, build((s) => named(s, 1, doc.securityDefinitions, securityDefinition)));
    extensions(w, 16, doc);
  });
}

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** ReceivedSpan is one span as an OTLP receiver decoded it (ids as lower-case hex, kind as OTLP's number: SERVER 2, CLIENT 3, INTERNAL 1). */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  startNs: bigint;
  endNs: bigint;
  attributes: Record<string, string | number | boolean>;
  status: { code: number; message: string };
  service: string;
}

/** OTLP's span kinds (opentelemetry/proto/trace/v1/trace.proto). */
export const OTLP_KIND = { INTERNAL: 1, SERVER: 2, CLIENT: 3 } as const;

/**
 * A minimal protobuf reader for ExportTraceServiceRequest. The test decodes the wire format itself so
 * that it checks what Skiff actually sent, not what the encoding library thinks it sent.
 */
class Reader {
  pos = 0;
  constructor(private readonly buf: Uint8Array) {}
  get done(): boolean {
    return this.pos >= this.buf.length;
  }
  varint(): bigint {
    let out = 0n;
    let shift = 0n;
    for (;;) {
      const b = this.buf[this.pos++]!;
      out |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return out;
      shift += 7n;
    }
  }
  tag(): { field: number; wire: number } {
    const t = Number(this.varint());
    return { field: t >>> 3, wire: t & 7 };
  }
  bytes(): Uint8Array {
    const n = Number(this.varint());
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  fixed64(): bigint {
    const v = Buffer.from(this.buf.subarray(this.pos, this.pos + 8)).readBigUInt64LE();
    this.pos += 8;
    return v;
  }
  double(): number {
    const v = Buffer.from(this.buf.subarray(this.pos, this.pos + 8)).readDoubleLE();
    this.pos += 8;
    return v;
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.pos += 4;
    else throw new Error(`unexpected wire type ${wire}`);
  }
  /** fields calls fn for each field of the message; fn returns false to have it skipped. */
  fields(fn: (field: number, wire: number, r: Reader) => boolean | void): void {
    while (!this.done) {
      const { field, wire } = this.tag();
      if (fn(field, wire, this) === false) this.skip(wire);
    }
  }
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const text = (b: Uint8Array) => Buffer.from(b).toString('utf8');

function anyValue(b: Uint8Array): string | number | boolean {
  let v: string | number | boolean = '';
  new Reader(b).fields((f, w, r) => {
    if (f === 1 && w === 2) v = text(r.bytes());
    else if (f === 2 && w === 0) v = r.varint() !== 0n;
    else if (f === 3 && w === 0) v = Number(BigInt.asIntN(64, r.varint()));
    else if (f === 4 && w === 1) v = r.double();
    else return false;
  });
  return v;
}

function keyValue(b: Uint8Array): [string, string | number | boolean] {
  let key = '';
  let value: string | number | boolean = '';
  new Reader(b).fields((f, w, r) => {
    if (f === 1 && w === 2) key = text(r.bytes());
    else if (f === 2 && w === 2) value = anyValue(r.bytes());
    else return false;
  });
  return [key, value];
}

function span(b: Uint8Array, service: string): ReceivedSpan {
  const s: ReceivedSpan = { traceId: '', spanId: '', parentSpanId: '', name: '', kind: 0, startNs: 0n, endNs: 0n, attributes: {}, status: { code: 0, message: '' }, service };
  new Reader(b).fields((f, w, r) => {
    if (f === 1 && w === 2) s.traceId = hex(r.bytes());
    else if (f === 2 && w === 2) s.spanId = hex(r.bytes());
    else if (f === 4 && w === 2) s.parentSpanId = hex(r.bytes());
    else if (f === 5 && w === 2) s.name = text(r.bytes());
    else if (f === 6 && w === 0) s.kind = Number(r.varint());
    else if (f === 7 && w === 1) s.startNs = r.fixed64();
    else if (f === 8 && w === 1) s.endNs = r.fixed64();
    else if (f === 9 && w === 2) {
      const [k, v] = keyValue(r.bytes());
      s.attributes[k] = v;
    } else if (f === 15 && w === 2)
      new Reader(r.bytes()).fields((sf, sw, sr) => {
        if (sf === 2 && sw === 2) s.status.message = text(sr.bytes());
        else if (sf === 3 && sw === 0) s.status.code = Number(sr.varint());
        else return false;
      });
    else return false;
  });
  return s;
}

/** decodeTraces decodes an OTLP/HTTP protobuf ExportTraceServiceRequest body. */
export function decodeTraces(body: Uint8Array): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  new Reader(body).fields((f, w, r) => {
    if (f !== 1 || w !== 2) return false;
    const rs = r.bytes();
    let service = '';
    const scopeSpans: Uint8Array[] = [];
    new Reader(rs).fields((rf, rw, rr) => {
      if (rf === 1 && rw === 2)
        new Reader(rr.bytes()).fields((af, aw, ar) => {
          if (af !== 1 || aw !== 2) return false;
          const [k, v] = keyValue(ar.bytes());
          if (k === 'service.name') service = String(v);
        });
      else if (rf === 2 && rw === 2) scopeSpans.push(rr.bytes());
      else return false;
    });
    for (const ss of scopeSpans)
      new Reader(ss).fields((sf, sw, sr) => {
        if (sf === 2 && sw === 2) out.push(span(sr.bytes(), service));
        else return false;
      });
  });
  return out;
}

/** decodeJsonTraces reads an OTLP/HTTP JSON body (ids as hex strings, as the OTLP JSON mapping says). */
export function decodeJsonTraces(body: string): ReceivedSpan[] {
  const doc = JSON.parse(body) as { resourceSpans: Array<{ resource?: { attributes?: JsonKv[] }; scopeSpans: Array<{ spans: JsonSpan[] }> }> };
  const out: ReceivedSpan[] = [];
  for (const rs of doc.resourceSpans) {
    const service = String(jsonAttrs(rs.resource?.attributes)['service.name'] ?? '');
    for (const ss of rs.scopeSpans)
      for (const s of ss.spans)
        out.push({
          traceId: s.traceId,
          spanId: s.spanId,
          parentSpanId: s.parentSpanId ?? '',
          name: s.name,
          kind: s.kind,
          startNs: BigInt(s.startTimeUnixNano),
          endNs: BigInt(s.endTimeUnixNano),
          attributes: jsonAttrs(s.attributes),
          status: { code: s.status?.code ?? 0, message: s.status?.message ?? '' },
          service,
        });
  }
  return out;
}

interface JsonKv {
  key: string;
  value: { stringValue?: string; intValue?: string | number; boolValue?: boolean; doubleValue?: number };
}
interface JsonSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes?: JsonKv[];
  status?: { code?: number; message?: string };
}

function jsonAttrs(list: JsonKv[] | undefined): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const { key, value } of list ?? []) out[key] = value.stringValue ?? value.boolValue ?? (value.intValue !== undefined ? Number(value.intValue) : value.doubleValue ?? '');
  return out;
}

/** OtlpReceiver is a loopback OTLP/HTTP traces endpoint that keeps every span it was sent. */
export interface OtlpReceiver {
  /** The base URL (give it as OTEL_EXPORTER_OTLP_ENDPOINT or --otlp-endpoint). */
  url: string;
  spans: ReceivedSpan[];
  /** Requests received: path, content type, headers. */
  requests: Array<{ path: string; contentType: string; headers: Record<string, string | string[] | undefined> }>;
  close(): Promise<void>;
}

/** startOtlpReceiver listens on 127.0.0.1 (free port) and decodes protobuf or JSON trace exports posted to /v1/traces (or any path). */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const rec: OtlpReceiver = { url: '', spans: [], requests: [], close: async () => undefined };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const contentType = String(req.headers['content-type'] ?? '');
      rec.requests.push({ path: req.url ?? '', contentType, headers: req.headers });
      try {
        rec.spans.push(...(contentType.includes('json') ? decodeJsonTraces(body.toString('utf8')) : decodeTraces(body)));
      } catch (err) {
        res.writeHead(400).end(String(err));
        return;
      }
      res.writeHead(200, { 'content-type': contentType.includes('json') ? 'application/json' : 'application/x-protobuf' });
      res.end(contentType.includes('json') ? '{}' : '');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  rec.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  rec.close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return rec;
}

/* The types write-batch.ts needs from the gateway context, in a leaf so that context.ts can name WriteBatch. */

/** OutgoingHeaders are response or upstream-request headers keyed by lower-case name. */
export type OutgoingHeaders = Record<string, string | string[]>;

/** ResponseWriter is the part of Node's http1/http2 server response the gateway writes through. */
export interface ResponseWriter {
  writeHead(status: number, headers?: OutgoingHeaders): unknown;
  write(chunk: Uint8Array | string): boolean;
  end(chunk?: Uint8Array | string): unknown;
  destroy(err?: Error): unknown;
  readonly headersSent: boolean;
  readonly writableEnded: boolean;
}

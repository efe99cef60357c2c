import type { IncomingMessage } from 'node:http';

/**
 * readBounded reads an HTTP response body of at most `maxBytes`. A body announced larger by its
 * Content-Length, or that turns out larger as it streams, is cut off (the response destroyed) and
 * the error `tooLarge` makes is thrown; it gets the announced length, or undefined when the body
 * ran past the limit. Any other stream error is thrown as it came, for the caller to name.
 */
export async function readBounded(res: IncomingMessage, maxBytes: number, tooLarge: (announced: string | undefined) => Error): Promise<Buffer> {
  if (Number(res.headers['content-length'] ?? NaN) > maxBytes) {
    res.destroy();
    throw tooLarge(String(res.headers['content-length']));
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) {
      res.destroy();
      throw tooLarge(undefined);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

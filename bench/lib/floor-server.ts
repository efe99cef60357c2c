import { type ChildProcess,spawn } from 'node:child_process';

/**
 * startFloorServer runs a bare node:http server in its own process that answers every request with
 * the given body: the floor that a benchmark compares Skiff against. It must be another process,
 * because the load generator blocks the benchmark's own event loop.
 */
export async function startFloorServer(body: Buffer, contentType: string): Promise<{ url: string; stop: () => void; proc: ChildProcess }> {
  const code = `
    const http = require('node:http');
    const body = Buffer.from(process.env.FLOOR_BODY, 'base64');
    const s = http.createServer((q, r) => { r.writeHead(200, { 'content-type': process.env.FLOOR_TYPE, 'content-length': body.length }); r.end(body); });
    s.listen(0, '127.0.0.1', () => process.stdout.write(String(s.address().port) + '\\n'));
  `;
  const proc = spawn(process.execPath, ['-e', code], { env: { ...process.env, FLOOR_BODY: body.toString('base64'), FLOOR_TYPE: contentType }, stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<string>((res) => proc.stdout!.once('data', (d) => res(String(d).trim())));
  return { url: `http://127.0.0.1:${port}`, stop: () => proc.kill(), proc };
}

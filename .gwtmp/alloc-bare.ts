import { Session } from 'node:inspector/promises';
import { createServer } from 'node:http';
import { Pool } from 'undici';
const UP = Number(process.env.UP);
const pool = new Pool(`http://127.0.0.1:${UP}`, { connections: 1024, pipelining: 1 });
const server = createServer((req, res) => {
  const h = req.headers as any;
  h['x-forwarded-for'] = req.socket.remoteAddress; h['x-forwarded-proto'] = 'http';
  h['x-request-id'] = '3f2c1a9e-1234-4abc-8def-0123456789ab'; h.traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
  pool.dispatch({ path: req.url!, method: req.method as 'GET', headers: h }, {
    onRequestStart() {}, onResponseStart(_c, s, rh: any) { delete rh.connection; delete rh['keep-alive']; rh['x-request-id'] = h['x-request-id']; res.writeHead(s, rh); }, onResponseData(_c, d) { res.write(d); }, onResponseEnd() { res.end(); }, onResponseError() { res.destroy(); } });
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const port = (server.address() as any).port;
const run = (d: number) => new Promise<string>((resolve) => { import('node:child_process').then(({ execFile }) => execFile('wrk', ['-t1', '-c50', `-d${d}s`, `http://127.0.0.1:${port}/`], (_e, out) => resolve(out))); });
await run(2);
const s = new Session(); s.connect();
await s.post('HeapProfiler.enable');
await s.post('HeapProfiler.startSampling', { samplingInterval: 256, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true } as any);
const out = await run(3);
const { profile } = (await s.post('HeapProfiler.stopSampling')) as any;
const reqs = Number(/(\d+) requests in/.exec(out)![1]);
let total = 0;
const walk = (n: any) => { total += n.selfSize; for (const c of n.children) walk(c); };
walk(profile.head);
console.log(`requests ${reqs}, sampled bytes/request ${(total / reqs).toFixed(0)}`);
process.exit(0);

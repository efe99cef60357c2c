import { Session } from 'node:inspector/promises';
import { execFileSync } from 'node:child_process';
import { pino } from 'pino';
import { Gateway } from '../src/gateway/index.js';
const UP = Number(process.env.UP);
const gw = new Gateway({ functions: { invoke: async () => ({ status: 500, headers: [], body: new Uint8Array() }) }, logger: pino({ level: 'warn' }) });
gw.update({
  routes: [{ apiVersion: 'skiff.dev/v1', kind: 'Route', metadata: { name: 'bench', namespace: 'default' }, spec: { http: [{ route: [{ destination: { service: 'up' } }] }] } }],
  services: [{ apiVersion: 'skiff.dev/v1', kind: 'Service', metadata: { name: 'up', namespace: 'default' }, spec: { endpoints: [{ address: '127.0.0.1', port: UP }] } }],
});
const { port } = await gw.listen('127.0.0.1', 0);
const run = (d: number) => new Promise<string>((resolve) => { import('node:child_process').then(({ execFile }) => execFile('wrk', ['-t1', '-c50', `-d${d}s`, `http://127.0.0.1:${port}/`], (_e, out) => resolve(out))); });
await run(2);
const s = new Session();
s.connect();
await s.post('HeapProfiler.enable');
await s.post('HeapProfiler.startSampling', { samplingInterval: 256, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true } as any);
const out = await run(3);
const { profile } = (await s.post('HeapProfiler.stopSampling')) as any;
const reqs = Number(/(\d+) requests in/.exec(out)![1]);
const agg = new Map<string, number>();
let total = 0;
const walk = (n: any, stack: string[]) => {
  const cf = n.callFrame;
  const key = `${cf.functionName || '(anon)'}@${cf.url.split('/').pop()}:${cf.lineNumber + 1}`;
  const st = [...stack, key];
  if (n.selfSize) {
    const k = st.slice(-3).reverse().join(' < ');
    agg.set(k, (agg.get(k) ?? 0) + n.selfSize);
    total += n.selfSize;
  }
  for (const c of n.children) walk(c, st);
};
walk(profile.head, []);
console.log(`requests ${reqs}, sampled bytes/request ${(total / reqs).toFixed(0)}`);
for (const [k, v] of [...agg].sort((a, b) => b[1] - a[1]).slice(0, 40)) console.log(`${(v / reqs).toFixed(0).padStart(6)} ${k}`);
await gw.close(100);
process.exit(0);

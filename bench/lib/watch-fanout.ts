// The watch fan-out measurement shared by the core and cluster benchmarks.
import { percentile } from './report.js';

/** An API server and its token. */
export interface ApiEndpoint {
  api: string;
  token: string;
}

/**
 * watchFanoutP99 opens `watchers` watches on Services of a fresh namespace, spread over `watchOn`,
 * makes `changes` creates through `writeTo`, and returns the p99 latency from sending each create to
 * its delivery on every watcher, in ms. One node is `watchOn: [writeTo]`.
 */
export async function watchFanoutP99(writeTo: ApiEndpoint, watchOn: ApiEndpoint[], watchers: number, changes: number): Promise<number> {
  const ns = `fanout-${Math.random().toString(36).slice(2, 7)}`;
  const path = `/apis/skiff.dev/v1/namespaces/${ns}/services`;
  const sentAt = new Map<string, number>();
  const latencies: number[] = [];
  const ctrl = new AbortController();
  let delivered = 0;
  let resolveAll!: () => void;
  const all = new Promise<void>((r) => (resolveAll = r));
  const streams = await Promise.all(Array.from({ length: watchers }, (_, i) => watchOn[i % watchOn.length]!).map((e) => fetch(`${e.api}${path}?watch=true`, { signal: ctrl.signal, headers: { authorization: `Bearer ${e.token}` } })));
  const readers = streams.map(async (res) => {
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    let buf = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buf += dec.decode(value, { stream: true });
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const ev = JSON.parse(buf.slice(0, nl)) as { object: { metadata: { name: string } } };
          buf = buf.slice(nl + 1);
          const t = sentAt.get(ev.object.metadata.name);
          if (t !== undefined) latencies.push(performance.now() - t);
          if (++delivered === watchers * changes) resolveAll();
        }
      }
    } catch {
      // aborted at the end
    }
  });
  for (let i = 0; i < changes; i++) {
    const name = `w-${i}`;
    sentAt.set(name, performance.now());
    const res = await fetch(`${writeTo.api}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${writeTo.token}` }, body: JSON.stringify({ apiVersion: 'skiff.dev/v1', kind: 'Service', metadata: { name }, spec: { endpoints: [{ address: '192.0.2.1', port: 9 }] } }) });
    if (res.status !== 201) throw new Error(`write failed: ${res.status} ${await res.text()}`);
    await res.arrayBuffer();
  }
  await Promise.race([all, new Promise((r) => setTimeout(r, 30_000))]);
  ctrl.abort();
  await Promise.allSettled(readers);
  if (latencies.length < watchers * changes) process.stderr.write(`warning: ${watchers * changes - latencies.length} watch events not delivered in time\n`);
  return percentile(latencies.sort((a, b) => a - b), 99);
}

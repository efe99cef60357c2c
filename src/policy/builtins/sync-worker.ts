import { MessageChannel, receiveMessageOnPort,Worker } from 'node:worker_threads';

/**
 * runSync runs an async job in a worker thread and waits for its answer, because built-ins are
 * synchronous. The worker code receives `workerData.input` and must call `done(result)`.
 */
export function runSync<T>(body: string, input: unknown, timeoutMs: number): T | undefined {
  const code = `
const { workerData } = require('node:worker_threads');
const { port, flag, input } = workerData;
const done = (result) => { port.postMessage(result); Atomics.store(flag, 0, 1); Atomics.notify(flag, 0); };
(async () => { ${body} })().catch((e) => done({ ok: false, error: String(e && e.message || e) }));
`;
  const { port1, port2 } = new MessageChannel();
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const w = new Worker(code, { eval: true, workerData: { port: port2, flag, input }, transferList: [port2] });
  try {
    Atomics.wait(flag, 0, 0, timeoutMs);
    return receiveMessageOnPort(port1)?.message as T | undefined;
  } finally {
    void w.terminate();
    port1.close();
  }
}

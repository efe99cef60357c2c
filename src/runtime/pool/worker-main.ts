import { parentPort } from 'node:worker_threads';

import { type RunSpec,SandboxHost } from '../sandbox.js';
import type { WasmModule } from '../wasm-api.js';

import { LruSet, WORKER_MODULE_CAP } from './lru-set.js';

/** Messages the pool sends to a worker. */
export type ToWorker = InitMessage | RunMessage | DropMessage;

/** Forget the warm instances of a module (its Functions scaled to zero); the compiled module stays. */
export type DropMessage = { type: 'drop'; key: string };

/** The first message: memory shared with the pool, where the worker says which job it is running since when. */
export type InitMessage = { type: 'init'; shared: SharedArrayBuffer };

export type RunMessage = {
  type: 'run';
  id: number;
  key: string;
  /** Sent the first time this worker runs the module; afterwards the worker's copy is used. */
  module?: WasmModule;
  reusable: boolean;
  spec: RunSpec;
};

/**
 * WorkerServer hosts many sandboxes on one worker thread: it keeps the compiled modules it was sent
 * and a SandboxHost with warm instances, and runs one invocation at a time (guest code is synchronous).
 */
class WorkerServer {
  private readonly modules = new Map<string, WasmModule>();
  private readonly lru = new LruSet(WORKER_MODULE_CAP);
  private readonly host = new SandboxHost(2, WORKER_MODULE_CAP);

  /** [0]: the id of the running job, 0 between jobs (see WorkerPool.arm). */
  private state: Int32Array<ArrayBufferLike> = new Int32Array(2);
  private started: Float64Array<ArrayBufferLike> = new Float64Array(1);

  constructor(private readonly port: NonNullable<typeof parentPort>) {
    port.on('message', (msg: ToWorker) => this.onMessage(msg));
    port.postMessage({ type: 'ready' });
  }

  private onMessage(msg: ToWorker): void {
    if (msg.type === 'init') {
      this.state = new Int32Array(msg.shared, 0, 2);
      this.started = new Float64Array(msg.shared, 8, 1);
      return;
    }
    if (msg.type === 'drop') {
      this.host.drop(msg.key);
      return;
    }
    if (msg.type !== 'run') return;
    if (msg.module) this.modules.set(msg.key, msg.module);
    const evicted = this.lru.touch(msg.key);
    if (evicted) {
      this.modules.delete(evicted);
      this.host.drop(evicted);
    }
    const module = this.modules.get(msg.key);
    if (!module) {
      this.port.postMessage({ type: 'result', id: msg.id, outcome: { ok: false, code: 'unknown_module', message: `worker has no module ${msg.key}`, stdout: new Uint8Array(0), stderr: new Uint8Array(0), durationMs: 0 } });
      return;
    }
    this.started[0] = performance.timeOrigin + performance.now();
    Atomics.store(this.state, 0, msg.id);
    const outcome = this.host.run(msg.key, module, msg.reusable, msg.spec);
    Atomics.store(this.state, 0, 0);
    this.port.postMessage({ type: 'result', id: msg.id, outcome });
  }
}

if (parentPort) new WorkerServer(parentPort);

import { parentPort, workerData } from 'node:worker_threads';

import { GatekeeperClient } from '../gatekeeper/client.js';
import { loadPolicies } from '../policies.js';

import { answerReview } from './answer.js';
import type { EvalWorkerConfig } from './eval-pool.js';

/**
 * EvalWorker is one evaluation thread of an EvalPool: it loads the policies itself (each thread
 * holds its own engines; nothing is shared between threads) and answers review bodies by id.
 */
class EvalWorker {
  constructor(port: NonNullable<typeof parentPort>, config: EvalWorkerConfig) {
    let client: GatekeeperClient;
    try {
      client = loadPolicies(config.policies, new GatekeeperClient({ evalTimeoutMs: config.evalTimeoutMs }));
    } catch (e) {
      port.postMessage({ type: 'failed', error: (e as Error).message });
      return;
    }
    port.on('message', (m: { id: number; body: Uint8Array }) => {
      const a = answerReview(client, Buffer.from(m.body.buffer, m.body.byteOffset, m.body.byteLength), config.pss);
      port.postMessage({ type: 'answer', id: m.id, status: a.status, body: a.body });
    });
    port.postMessage({ type: 'ready', templates: client.allTemplates().length, constraints: client.constraints().length, inventory: client.inventory.size });
  }
}

if (parentPort) new EvalWorker(parentPort, ((workerData as { config?: EvalWorkerConfig }).config ?? workerData) as EvalWorkerConfig);

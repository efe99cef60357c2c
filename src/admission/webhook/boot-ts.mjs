// Development only: lets an evaluation worker load the TypeScript sources (under vitest or tsx).
// Built code (dist/) starts eval-worker.js directly and never loads this file.
import { register } from 'tsx/esm/api';
import { workerData } from 'node:worker_threads';

register();
await import(workerData.entry);

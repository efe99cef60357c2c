// Development only: lets a worker thread load the TypeScript sources (under vitest or tsx).
// Built code (dist/) starts the worker's .js file directly and never loads this file; see worker.ts.
import { register } from 'tsx/esm/api';
import { workerData } from 'node:worker_threads';

register();
await import(workerData.tsEntry);

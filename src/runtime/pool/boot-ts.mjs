// Development only: lets a worker thread load the TypeScript sources (under vitest or tsx).
// Built code (dist/) starts worker-main.js directly and never loads this file.
import { register } from 'tsx/esm/api';
import { workerData } from 'node:worker_threads';

register();
await import(workerData.entry);

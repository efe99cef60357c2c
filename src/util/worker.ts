import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * startWorker starts the worker module `name` that sits beside the module `base` (its
 * `import.meta.url`). Built code runs `NAME.js` directly; under vitest or tsx, where `base` is a `.ts`
 * file, a small loader registers tsx in the thread first and then imports `NAME.ts`. `workerData`
 * reaches the worker unchanged either way (plus a `tsEntry` key in development).
 */
export function startWorker(base: string, name: string, workerData: Record<string, unknown> = {}, options: Omit<WorkerOptions, 'workerData'> = {}): Worker {
  if (base.endsWith('.ts')) {
    return new Worker(new URL('./boot-ts.mjs', import.meta.url), { ...options, workerData: { ...workerData, tsEntry: new URL(`./${name}.ts`, base).href } });
  }
  return new Worker(new URL(`./${name}.js`, base), { ...options, workerData });
}

export { Controller, type ControllerOptions, type ReconcileResult } from './controller.js';
export { Informer, cacheKey, type InformerHandlers } from './informer.js';
export { WorkQueue } from './work-queue.js';
export { EventRecorder, type EventType } from './events.js';

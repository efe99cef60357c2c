export { Controller, type ControllerOptions, type ReconcileResult } from './controller.js';
// The informer is a client of the API (admission uses it too), so it lives there; controllers get it here.
export { Informer, cacheKey, type InformerHandlers } from '../../api/informer.js';
export { WorkQueue } from './work-queue.js';
export { EventRecorder, type EventType } from './events.js';
export { writeStatus } from './status.js';

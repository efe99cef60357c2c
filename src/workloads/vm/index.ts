export { QemuHandler, type QemuHandlerOptions } from './qemu-handler.js';

/**
 * WouldBlock unwinds a guest that would block, or hold for long, a thread that serves others (a run
 * on the caller's own thread, see inline.ts): it asked to sleep, or moved more bytes through the host
 * than such a run may. The caller runs it again where that is allowed.
 */
export class WouldBlock {}

/**
 * LruSet remembers up to `cap` keys, forgetting the least recently touched. The pool and each worker
 * keep one per worker with the same cap and see the same sequence of touches, so the pool always
 * knows whether a worker still holds a module without asking it.
 */
export class LruSet {
  private readonly keys = new Set<string>();
  constructor(private readonly cap: number) {}

  get size(): number {
    return this.keys.size;
  }

  has(key: string): boolean {
    return this.keys.has(key);
  }

  /** touch marks `key` as just used and returns the key evicted to make room, if any. */
  touch(key: string): string | undefined {
    this.keys.delete(key);
    this.keys.add(key);
    if (this.keys.size <= this.cap) return undefined;
    const oldest = this.keys.values().next().value!;
    this.keys.delete(oldest);
    return oldest;
  }
}

/** Modules a worker keeps compiled and warm; beyond this the least recently used are dropped. */
export const WORKER_MODULE_CAP = 256;

/**
 * Clock is where the autoscaler's algorithms get the time, in milliseconds. It is always injected:
 * tests drive a ManualClock through scale windows in microseconds, and the benchmark replays days of
 * traffic on a compressed clock through the real gateway.
 */
export interface Clock {
  now(): number;
}

/** systemClock is wall-clock time. */
export const systemClock: Clock = { now: () => Date.now() };

/** ManualClock moves only when told to. */
export class ManualClock implements Clock {
  constructor(private t = 0) {}

  now(): number {
    return this.t;
  }

  /** advance moves the clock forward by ms (never backward). */
  advance(ms: number): number {
    if (!(ms >= 0)) throw new RangeError(`ManualClock.advance: ${ms} is not a non-negative number of milliseconds`);
    this.t += ms;
    return this.t;
  }

  /** set moves the clock to an absolute time, which may not be earlier than now. */
  set(t: number): void {
    if (t < this.t) throw new RangeError(`ManualClock.set: ${t} is earlier than the current time ${this.t}`);
    this.t = t;
  }
}

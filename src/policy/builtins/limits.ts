import { type BuiltinContext, builtinErr, type BuiltinLimits } from './types.js';

/** DEFAULT_BUILTIN_LIMITS: far beyond what a policy decision needs, well within what one process survives. */
export const DEFAULT_BUILTIN_LIMITS: Readonly<BuiltinLimits> = Object.freeze({
  maxElements: 1_000_000,
  maxStringLength: 8 * 1024 * 1024,
});

/**
 * pace asks the evaluation whether it may go on (deadline, cancellation) once every 1024 iterations of
 * a built-in's loop: reading the clock on every iteration would cost more than most iterations.
 */
export function pace(ctx: BuiltinContext, i: number): void {
  if ((i & 1023) === 0) ctx.check();
}

/** capElements refuses a result of n elements when it is over the engine's limit. */
export function capElements(name: string, n: number, ctx: BuiltinContext): void {
  const max = ctx.limits.maxElements;
  if (n > max) throw builtinErr(name, `result would have ${n} elements; the limit is ${max} per built-in call`);
}

/** capString refuses a string result of n code units when it is over the engine's limit. */
export function capString(name: string, n: number, ctx: BuiltinContext): void {
  const max = ctx.limits.maxStringLength;
  if (n > max) throw builtinErr(name, `result would be ${n} characters long; the limit is ${max} per built-in call`);
}

/**
 * Meter counts the work of a built-in that builds its result piece by piece (walk, graph paths, JSON
 * edits): `step()` per unit of work paces the deadline check, `grow(n)` counts produced elements
 * against the limit.
 */
export class Meter {
  private work = 0;
  private nextCheck = 1024;
  private produced = 0;
  constructor(
    private readonly name: string,
    private readonly ctx: BuiltinContext,
    /** how many elements the result may hold, as a multiple of the engine's maxElements */
    private readonly factor = 1,
  ) {}

  /** step counts n units of work (say, elements copied), asking for the deadline every 1024 units. */
  step(n = 1): void {
    this.work += n;
    if (this.work >= this.nextCheck) {
      this.nextCheck = this.work + 1024;
      this.ctx.check();
    }
  }

  /** grow counts n produced elements (each also a unit of work) against the limit. */
  grow(n = 1): void {
    this.produced += n;
    const max = this.ctx.limits.maxElements * this.factor;
    if (this.produced > max) throw builtinErr(this.name, `result would have more than ${max} elements; the limit is ${max} per built-in call`);
    this.step(n);
  }
}

import type { UpstreamGuard } from '../../security/index.js';
import { DEFAULT_BUILTIN_LIMITS } from '../builtins/limits.js';
import type { BuiltinContext, BuiltinLimits, ExternalDataAnswer } from '../builtins/types.js';
import { isObject, objGet, objKeys, RDecimal, RSet, type Value } from '../value.js';

import type { EvalEngine } from './types.js';

/** EvalBuiltinContext is what built-ins see of one evaluation (a class: no closures per evaluation). */
export class EvalBuiltinContext implements BuiltinContext {
  private now: bigint | undefined;
  private memoMap: Map<string, Value> | undefined;
  private sharedMap: Map<string, unknown> | undefined;
  constructor(private readonly ev: EvalEngine) {}
  /** reset forgets what one evaluation kept (its time, memo, and the options' shared memo). */
  reset(): void {
    this.now = undefined;
    this.memoMap = undefined;
    this.sharedMap = undefined;
  }
  get httpAllow(): string[] {
    return this.ev.opts.httpAllow ?? [];
  }
  get upstreams(): UpstreamGuard | undefined {
    return this.ev.opts.upstreams;
  }
  get limits(): BuiltinLimits {
    return this.ev.opts.limits ?? DEFAULT_BUILTIN_LIMITS;
  }
  externalData(provider: string, keys: unknown[]): ExternalDataAnswer | undefined {
    return this.ev.opts.externalData?.(provider, keys);
  }
  check(): void {
    this.ev.checkDeadline();
  }
  remainingMs(): number {
    return this.ev.remainingMs();
  }
  get shared(): Map<string, unknown> {
    return (this.sharedMap ??= this.ev.opts.shared ?? new Map());
  }
  /** the evaluation's start time, stable within the query */
  get nowNs(): bigint {
    return (this.now ??= BigInt(this.ev.startMs) * 1000000n);
  }
  get memo(): Map<string, Value> {
    return (this.memoMap ??= new Map());
  }
  print(m: string): void {
    const o = this.ev.opts;
    if (m.startsWith('trace: ') && o.tracer) o.tracer({ op: 'note', loc: { file: '', row: 0, col: 0 }, text: m.slice(7) });
    if (o.print) o.print(m);
    else process.stderr.write(m + '\n');
  }
  metadata(): { rule: Value; chain: Value } {
    return this.ev.rules.metadata(this.ev.currentRule);
  }
}

/** index returns v[key] for arrays, objects and sets. */
export function index(v: Value, key: Value): Value | undefined {
  if (Array.isArray(v)) {
    if (typeof key !== 'number' || !Number.isInteger(key) || key < 0 || key >= v.length) return undefined;
    return v[key];
  }
  if (v === null || typeof v !== 'object' || v instanceof RDecimal) return undefined;
  if (v instanceof RSet) return v.has(key) ? key : undefined;
  return objGet(v, key);
}


const NO_KEYS: readonly Value[] = [];

/**
 * iterKeys gives the keys a ref iterates over in a value, in the general evaluator's order: null
 * for an array (its indexes), a set's elements, an object's keys (sorted), none for anything else.
 */
export function iterKeys(v: Value): readonly Value[] | null {
  if (Array.isArray(v)) return null;
  if (v instanceof RSet) return v.values();
  if (isObject(v)) return objKeys(v);
  return NO_KEYS;
}

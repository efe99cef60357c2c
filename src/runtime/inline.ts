/**
 * Runs short guests on the caller's own thread. Handing an invocation to a worker thread and back
 * (post, wake, answer, resolve) costs several times what a small WAGI function takes to run (figures
 * in README.md, "Speed"); under load that hand-off, not the guest, bounds how many
 * requests a node serves.
 *
 * The caller's thread serves everyone else, so a guest may run here only while it provably stays
 * short: the module is fuel-metered (meter.ts) and gets a budget of loop iterations and calls; it may
 * not sleep; and it may not touch host directories (a host file can block, and its writes could not be
 * taken back). Anything other than a clean, quick finish — fuel exhausted, a sleep, a trap, too much
 * output — throws the run away and the invocation runs again on a worker, where the deadline, the
 * real limits and the full host apply. The guest's output and state from the discarded run are dropped
 * (its instance included), so the retry is indistinguishable from a first run. A function that needs
 * the retry, or whose runs cost much fuel, goes to the workers for a while (doubling each time); and
 * while the calling thread itself is saturated, functions whose runs cost more than a hand-off go to
 * the workers (see offloadCost and callerBusy).
 */
import type { ModuleCache, Variant } from './module-cache.js';
import { type RunOutcome, type RunSpec,SandboxHost } from './sandbox.js';

/** Tuning; the defaults keep one inline run under about a millisecond of the caller's thread. */
export interface InlineOptions {
  /** Fuel per run: loop iterations plus calls, plus a unit per 16 bytes moved in bulk (default 1,000,000: a few ms at worst). */
  fuel?: number;
  /**
   * Average cost per run, in fuel units (a moving average over about the last 8 runs, starting from
   * zero), above which a function goes to the workers for a while (default 20,000: a few tens of µs
   * of guest work, about what handing a run to a worker costs this thread; the demo costs ~140).
   * Judged on fuel rather than time: time also counts GC pauses and compilation on this thread, and
   * would send quick functions away at random.
   */
  averageCost?: number;
  /** First cool-down on the workers, doubled on every further strike up to maxCooldownMs (default 1,000). */
  cooldownMs?: number;
  maxCooldownMs?: number;
  /**
   * Average cost per run (fuel units) above which a function goes to the workers while the calling
   * thread is saturated (default 5,000: roughly what handing a run to a worker and taking its answer
   * back costs this thread). Below it, running the guest here costs this thread less than handing it
   * over would, so offloading would only lower throughput.
   */
  offloadCost?: number;
  /**
   * The calling thread counts as saturated once its event loop was busy more than `busyAbove` of the
   * last sample (50 ms), and as free again below `busyBelow` (defaults 0.9 and 0.5; see callerBusy).
   */
  busyAbove?: number;
  busyBelow?: number;
}

const DEFAULTS: Required<InlineOptions> = { fuel: 1_000_000, averageCost: 20_000, offloadCost: 5_000, cooldownMs: 1_000, maxCooldownMs: 60_000, busyAbove: 0.9, busyBelow: 0.5 };
const ELU_SAMPLE_MS = 50;
const EMPTY = new Uint8Array(0);

/** How a function has fared inline. */
interface Standing {
  /** Inline runs are not tried before this time (ms, Date.now()). */
  until: number;
  strikes: number;
  /** Exponential moving average of the cost of its inline runs (fuel units). */
  avgCost: number;
}

/** Counters for diagnostics and tests. */
export interface InlineStats {
  runs: number;
  retries: number;
}

export class InlineRunner {
  private readonly host = new SandboxHost(2, 256);
  private readonly standing = new Map<string, Standing>();
  private readonly opts: Required<InlineOptions>;
  readonly stats: InlineStats = { runs: 0, retries: 0 };

  private busy = false;
  private eluAt = 0;
  private elu = performance.eventLoopUtilization();

  constructor(
    private readonly cache: ModuleCache,
    opts: InlineOptions = {},
    private readonly logger?: { warn(obj: object, msg?: string): void },
  ) {
    this.opts = { ...DEFAULTS, ...opts };
  }

  /**
   * callerBusy: whether the calling thread's event loop has been close to saturated lately. An inline
   * run saves the hand-off but spends this thread's time. While the thread has time to spare, inline
   * runs cut latency for a lone request. Once it is saturated, a run that costs more than the hand-off
   * is better spent on a worker's core; a cheaper one is not (README.md has the measurements). The two
   * thresholds keep it from flipping on every sample: on the workers this
   * thread's load drops somewhat, and that alone must not send it back.
   */
  callerBusy(): boolean {
    const now = performance.now();
    if (now - this.eluAt >= ELU_SAMPLE_MS) {
      const cur = performance.eventLoopUtilization();
      const u = performance.eventLoopUtilization(cur, this.elu).utilization;
      this.busy = this.busy ? u > this.opts.busyBelow : u > this.opts.busyAbove;
      this.elu = cur;
      this.eluAt = now;
    }
    return this.busy;
  }

  /**
   * prewarm keeps n instances of the variant's metered build warm on this thread (0 drops them); it
   * answers undefined while that build is still being compiled, and 0 for a module that cannot be metered.
   */
  prewarm(variant: Variant, n: number): number | undefined {
    if (n <= 0) {
      this.host.drop(variant.key);
      return 0;
    }
    const module = this.cache.metered(variant, this.opts.fuel);
    if (module === undefined) return undefined;
    if (module === null) return 0;
    return this.host.prewarm(variant.key, module, variant.reusable, n);
  }

  /** warmCount is how many instances of the variant wait warm on this thread. */
  warmCount(variant: Variant): number {
    return this.host.warmCount(variant.key);
  }

  /** prepare starts the metered build of a variant (compiled in the background) before its first inline attempt. */
  prepare(variant: Variant): void {
    this.cache.metered(variant, this.opts.fuel);
  }

  /**
   * tryRun runs the invocation here and returns its outcome, which is always a clean finish, or
   * returns undefined when it must run on a worker instead (not metered yet, on a cool-down, or the
   * inline run did not finish cleanly). It never throws. The caller has checked that the invocation
   * may run here at all: no host directories, no direct stdio, no tracing.
   */
  tryRun(variant: Variant, spec: RunSpec, poolKey: string): RunOutcome | undefined {
    const st = this.standing.get(poolKey);
    if (st && st.until > Date.now()) return undefined;
    // A function that has not run here yet (no standing) is tried: its cost is not known until then.
    if (st && st.avgCost > this.opts.offloadCost && this.callerBusy()) return undefined;
    const module = this.cache.metered(variant, this.opts.fuel);
    if (!module) return undefined;
    let out: RunOutcome;
    try {
      out = this.host.run(variant.key, module, variant.reusable, spec, this.opts.fuel);
    } catch (err) {
      // A throw out of the sandbox is a bug of this host: its warm instances are suspect, and the
      // worker's run, on a host of its own, decides the answer.
      this.host.drop(variant.key);
      this.logger?.warn({ poolKey, err }, 'inline run failed in the host; retrying on a worker');
      out = { ok: false, code: 'host_error', message: String(err), stdout: EMPTY, stderr: EMPTY, durationMs: 0 };
    }
    if (!out.ok) {
      if (out.code === 'host_error') this.logger?.warn({ poolKey, message: out.message }, 'inline run hit a host error; retrying on a worker');
      this.stats.retries++;
      this.strike(poolKey, st);
      return undefined;
    }
    this.stats.runs++;
    const now = st ?? this.track(poolKey);
    now.avgCost += ((out.cost ?? 0) - now.avgCost) / 8;
    if (now.avgCost > this.opts.averageCost) this.strike(poolKey, now);
    return out;
  }

  private strike(poolKey: string, st: Standing | undefined): void {
    const s = st ?? this.track(poolKey);
    s.strikes++;
    s.until = Date.now() + Math.min(this.opts.maxCooldownMs, this.opts.cooldownMs * 2 ** (s.strikes - 1));
    // Start the average afresh: the next trial should be judged on its own runs.
    s.avgCost = 0;
  }

  /** track starts a function's record; the oldest goes past 4,096 functions (function names come from users). */
  private track(poolKey: string): Standing {
    const s: Standing = { until: 0, strikes: 0, avgCost: 0 };
    this.standing.set(poolKey, s);
    if (this.standing.size > 4096) this.standing.delete(this.standing.keys().next().value!);
    return s;
  }
}

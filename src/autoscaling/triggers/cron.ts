import { CronError, type CronField, TriggerError } from './errors.js';

/**
 * Cron schedules for the KEDA-style cron trigger. Written here rather than taken from a cron
 * package because the trigger needs `prev` as well as `next`, in any IANA zone, with one stated rule
 * for the hour a DST change skips or repeats, and within a bound on the work a user's expression can
 * cause; the packages at hand offer some of these, not all.
 *
 * DST: a wall-clock time the change skips fires at the instant of the change (the clock jumps over
 * it, so that is the first moment it has passed); a wall-clock time that happens twice fires at its
 * first occurrence only.
 */

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;
/** How far the wall-clock search looks before it decides a schedule never fires (a leap day on a given weekday repeats within 28 years). */
const SEARCH_YEARS = 30;
/** Upper bound on search steps; each step skips at least a minute, and month and day steps skip far more. */
const MAX_STEPS = 200_000;

interface FieldSpec {
  name: Exclude<CronField, 'expression' | 'timezone'>;
  min: number;
  max: number;
  names?: readonly string[];
}

const FIELDS: readonly FieldSpec[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day-of-month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'] },
  // 7 is Sunday too; folded onto 0 after parsing.
  { name: 'day-of-week', min: 0, max: 7, names: ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] },
];

const MACROS: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

/** CronSchedule is a parsed 5-field cron expression. */
export interface CronSchedule {
  /** The expression as given. */
  readonly source: string;
  /** The first scheduled instant strictly after `afterMs`, in `timeZone` (IANA, default UTC); undefined if it never fires. */
  next(afterMs: number, timeZone?: string): number | undefined;
  /** The last scheduled instant at or before `beforeOrAtMs`; undefined if there was none within the search bound. */
  prev(beforeOrAtMs: number, timeZone?: string): number | undefined;
}

/**
 * parseCron reads a standard 5-field expression (minute hour day-of-month month day-of-week): `*`,
 * lists, ranges, steps (`*\/15`, `1-30/5`, `10/20`), month and weekday names, 0 and 7 for Sunday,
 * `?` as `*` in the day fields, and the `@daily`-style macros. When both day fields are restricted
 * (neither starts with `*`), a day matches if either does, as in Vixie cron.
 * @example
 * const s = parseCron('0 8 * * mon-fri');
 * s.next(Date.parse('2026-03-06T09:00:00Z'), 'Europe/Paris'); // Monday 08:00 Paris time
 */
export function parseCron(expr: string): CronSchedule {
  if (typeof expr !== 'string') throw new CronError('cron_syntax', 'expression', 'a cron expression must be a string such as "0 8 * * 1-5"');
  const text = expr.trim();
  const expanded = text.startsWith('@') ? MACROS[text.toLowerCase()] : text;
  if (expanded === undefined) throw new CronError('cron_syntax', 'expression', `"${text}" is not a known macro; use @yearly, @monthly, @weekly, @daily or @hourly, or 5 fields`);
  const parts = expanded.split(/\s+/).filter((p) => p !== '');
  if (parts.length !== 5) throw new CronError('cron_field_count', 'expression', `"${text}" has ${parts.length} field${parts.length === 1 ? '' : 's'}; a cron expression has 5: minute hour day-of-month month day-of-week (e.g. "0 8 * * 1-5")`);
  const sets = FIELDS.map((f, i) => parseField(parts[i]!, f));
  const dow = sets[4]!;
  if (dow[7]) dow[0] = true;
  const domStar = /^[*?]/.test(parts[2]!);
  const dowStar = /^[*?]/.test(parts[4]!);
  return new Schedule(expr, sets[0]!, sets[1]!, sets[2]!, sets[3]!, dow, domStar, dowStar);
}

function parseField(text: string, f: FieldSpec): boolean[] {
  const set = new Array<boolean>(f.max + 1).fill(false);
  const bad = (code: 'cron_syntax' | 'cron_range', why: string) => new CronError(code, f.name, `${f.name} field "${text}": ${why}`);
  for (const item of text.split(',')) {
    const m = /^(\*|\?|[0-9a-z]+(?:-[0-9a-z]+)?)(?:\/([0-9]+))?$/i.exec(item);
    if (!m) throw bad('cron_syntax', `"${item}" is not a value, a range (1-5), a list (1,3) or a step (*/15)`);
    if (m[1] === '?' && f.name !== 'day-of-month' && f.name !== 'day-of-week') throw bad('cron_syntax', '"?" is allowed in the day fields only');
    const step = m[2] === undefined ? 1 : Number(m[2]);
    if (step < 1) throw bad('cron_range', 'a step must be 1 or more');
    let lo: number;
    let hi: number;
    if (m[1] === '*' || m[1] === '?') {
      lo = f.min;
      hi = f.name === 'day-of-week' ? 6 : f.max;
    } else {
      const [a, b] = m[1]!.split('-');
      lo = value(a!, f, bad);
      // A single value with a step runs to the end of the field (10/20 in minutes: 10, 30, 50).
      hi = b !== undefined ? value(b, f, bad) : m[2] !== undefined ? (f.name === 'day-of-week' ? 6 : f.max) : lo;
      if (hi < lo) throw bad('cron_range', `the range ${m[1]} runs backwards; write it low-high`);
    }
    for (let v = lo; v <= hi; v += step) set[v] = true;
  }
  return set;
}

function value(token: string, f: FieldSpec, bad: (code: 'cron_syntax' | 'cron_range', why: string) => CronError): number {
  let v: number;
  if (/^[0-9]+$/.test(token)) v = Number(token);
  else {
    const i = f.names?.indexOf(token.toLowerCase()) ?? -1;
    if (i < 0) throw bad('cron_syntax', `"${token}" is not a number${f.names ? ` or a name (${f.names.join(', ')})` : ''}`);
    v = i + (f.name === 'month' ? 1 : 0);
  }
  if (v < f.min || v > f.max) throw bad('cron_range', `${v} is outside ${f.min}-${f.max}`);
  return v;
}

/** Zone converts between instants and wall-clock times of one IANA zone (a wall time is its fields read as UTC). */
class Zone {
  private readonly fmt: Intl.DateTimeFormat;

  constructor(readonly name: string) {
    try {
      this.fmt = new Intl.DateTimeFormat('en-US', { timeZone: name, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
    } catch {
      throw new CronError('cron_time_zone', 'timezone', `"${name}" is not an IANA time zone (such as Europe/Paris or UTC)`);
    }
  }

  /** offset is wall time minus the instant at `t`, in ms. */
  offset(t: number): number {
    const p: Record<string, number> = {};
    for (const part of this.fmt.formatToParts(t)) if (part.type !== 'literal') p[part.type] = Number(part.value);
    const wall = Date.UTC(p.year!, p.month! - 1, p.day!, p.hour!, p.minute!, p.second!);
    return wall - Math.floor(t / 1000) * 1000;
  }

  wall(t: number): number {
    return t + this.offset(t);
  }

  /**
   * instant maps a wall time to the instant it happens: its first occurrence when it happens twice,
   * and the instant of the change when a DST change skips it.
   */
  instant(w: number): number {
    const before = this.offset(w - DAY_MS);
    const after = this.offset(w + DAY_MS);
    const candidates = [w - before, w - after].filter((t) => this.wall(t) === w).sort((a, b) => a - b);
    if (candidates.length) return candidates[0]!;
    // Skipped: the change lies between the instants the wall time would have had under either offset.
    let lo = Math.min(w - before, w - after);
    let hi = Math.max(w - before, w - after);
    for (let i = 0; i < 64 && hi - lo > 1000; i++) {
      const mid = Math.floor((lo + hi) / 2000) * 1000;
      if (this.wall(mid) >= w) hi = mid;
      else lo = mid;
    }
    return hi;
  }
}

class Schedule implements CronSchedule {
  private readonly zones = new Map<string, Zone>();

  constructor(
    readonly source: string,
    private readonly minutes: boolean[],
    private readonly hours: boolean[],
    private readonly doms: boolean[],
    private readonly months: boolean[],
    private readonly dows: boolean[],
    private readonly domStar: boolean,
    private readonly dowStar: boolean,
  ) {}

  private zone(name: string): Zone {
    let z = this.zones.get(name);
    if (!z) {
      z = new Zone(name);
      this.zones.set(name, z);
    }
    return z;
  }

  private dayMatches(d: Date): boolean {
    const dom = this.doms[d.getUTCDate()]!;
    const dow = this.dows[d.getUTCDay()]!;
    if (this.domStar || this.dowStar) return dom && dow;
    return dom || dow;
  }

  /** nextWall finds the first matching wall time at or after `w` (a whole minute). */
  private nextWall(w: number, limit: number, budget: { steps: number }): number | undefined {
    const d = new Date(w);
    while (d.getTime() <= limit && budget.steps-- > 0) {
      if (!this.months[d.getUTCMonth() + 1]) {
        d.setUTCMonth(d.getUTCMonth() + 1, 1);
        d.setUTCHours(0, 0, 0, 0);
      } else if (!this.dayMatches(d)) {
        d.setUTCDate(d.getUTCDate() + 1);
        d.setUTCHours(0, 0, 0, 0);
      } else if (!this.hours[d.getUTCHours()]) {
        d.setUTCHours(d.getUTCHours() + 1, 0, 0, 0);
      } else if (!this.minutes[d.getUTCMinutes()]) {
        d.setUTCMinutes(d.getUTCMinutes() + 1, 0, 0);
      } else return d.getTime();
    }
    return undefined;
  }

  /** prevWall finds the last matching wall time at or before `w` (a whole minute). */
  private prevWall(w: number, limit: number, budget: { steps: number }): number | undefined {
    const d = new Date(w);
    while (d.getTime() >= limit && budget.steps-- > 0) {
      if (!this.months[d.getUTCMonth() + 1]) {
        d.setUTCDate(1);
        d.setUTCHours(0, -1, 0, 0);
      } else if (!this.dayMatches(d)) {
        d.setUTCHours(0, -1, 0, 0);
      } else if (!this.hours[d.getUTCHours()]) {
        d.setUTCMinutes(-1, 0, 0);
      } else if (!this.minutes[d.getUTCMinutes()]) {
        d.setUTCMinutes(d.getUTCMinutes() - 1, 0, 0);
      } else return d.getTime();
    }
    return undefined;
  }

  next(afterMs: number, timeZone = 'UTC'): number | undefined {
    const z = this.zone(timeZone);
    const t = Math.floor(afterMs / MINUTE_MS) * MINUTE_MS + MINUTE_MS;
    // From the earlier of the two readings a repeated hour gives, so no first occurrence is missed.
    let w = Math.min(z.wall(t), t + z.offset(t - DAY_MS / 2));
    w = Math.floor(w / MINUTE_MS) * MINUTE_MS;
    const limit = w + SEARCH_YEARS * 366 * DAY_MS;
    const budget = { steps: MAX_STEPS };
    for (;;) {
      const found = this.nextWall(w, limit, budget);
      if (found === undefined) return undefined;
      const at = z.instant(found);
      if (at >= t) return at;
      w = found + MINUTE_MS;
    }
  }

  prev(beforeOrAtMs: number, timeZone = 'UTC'): number | undefined {
    const z = this.zone(timeZone);
    const t = Math.floor(beforeOrAtMs / MINUTE_MS) * MINUTE_MS;
    // From the later of the two readings a repeated hour gives: its first occurrence may lie before t.
    let w = Math.max(z.wall(t), t + z.offset(t - DAY_MS / 2));
    w = Math.floor(w / MINUTE_MS) * MINUTE_MS;
    const limit = w - SEARCH_YEARS * 366 * DAY_MS;
    const budget = { steps: MAX_STEPS };
    for (;;) {
      const found = this.prevWall(w, limit, budget);
      if (found === undefined) return undefined;
      const at = z.instant(found);
      if (at <= t) return at;
      w = found - MINUTE_MS;
    }
  }
}

/** The cron trigger's metadata, strings as in a KEDA ScaledObject. */
export interface CronTriggerMetadata {
  /** IANA zone the schedules are read in; default UTC. */
  timezone?: string;
  /** When the desired count starts to apply (5-field cron). */
  start: string;
  /** When it stops applying (5-field cron). */
  end: string;
  /** The replicas wanted while active: a whole number, 0 or more. */
  desiredReplicas: string | number;
}

/** What the cron trigger asks for at one moment. */
export interface CronDesired {
  /** Whether the window is open: the latest start is later than the latest end. */
  active: boolean;
  /** desiredReplicas while active, 0 otherwise. */
  desired: number;
  /** When `active` next changes (the next end while active, the next start otherwise); Infinity if never. */
  nextChange: number;
}

/**
 * cronDesired evaluates KEDA's cron trigger at `now`: active when the most recent `start` is later
 * than the most recent `end` (so at the start minute exactly it is active, at the end minute it is not).
 * Throws TriggerError (with `field`) for bad metadata.
 * @example
 * cronDesired({ timezone: 'Europe/Paris', start: '0 8 * * 1-5', end: '0 18 * * 1-5', desiredReplicas: '3' }, clock.now());
 */
export function cronDesired(meta: CronTriggerMetadata, now: number): CronDesired {
  const desired = Number(meta.desiredReplicas);
  if (!(typeof meta.desiredReplicas === 'number' || /^\s*\d+\s*$/.test(String(meta.desiredReplicas ?? ''))) || !Number.isSafeInteger(desired) || desired < 0) {
    throw new TriggerError('trigger_metadata', `desiredReplicas "${String(meta.desiredReplicas)}" is not a whole number of replicas (such as "3")`, 'desiredReplicas');
  }
  const zone = meta.timezone === undefined || meta.timezone === '' ? 'UTC' : meta.timezone;
  const schedule = (field: 'start' | 'end') => {
    try {
      return parseCron(meta[field]);
    } catch (err) {
      if (err instanceof CronError) throw new TriggerError('trigger_metadata', `${field}: ${err.message}`, field, { cause: err });
      throw err;
    }
  };
  const start = schedule('start');
  const end = schedule('end');
  try {
    const lastStart = start.prev(now, zone) ?? -Infinity;
    const lastEnd = end.prev(now, zone) ?? -Infinity;
    const active = lastStart > lastEnd;
    const nextChange = (active ? end.next(now, zone) : start.next(now, zone)) ?? Infinity;
    return { active, desired: active ? desired : 0, nextChange };
  } catch (err) {
    if (err instanceof CronError) throw new TriggerError('trigger_metadata', `timezone: ${err.message}`, 'timezone', { cause: err });
    throw err;
  }
}

import { describe, expect, it } from 'vitest';

import { ManualClock } from '../../src/autoscaling/clock.js';
import { cronDesired, CronError, parseCron, TriggerError } from '../../src/autoscaling/triggers/index.js';

const at = (iso: string) => Date.parse(iso);
const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString().replace('.000Z', 'Z'));
const PARIS = 'Europe/Paris';

function cronError(fn: () => unknown): CronError {
  try {
    fn();
  } catch (err) {
    if (err instanceof CronError) return err;
    throw err;
  }
  throw new Error('expected a CronError');
}

describe('parseCron', () => {
  it('finds the next and previous weekday run in a time zone', () => {
    const s = parseCron('0 8 * * 1-5');
    // Friday 10:00 in Paris (CET, UTC+1): the next run is Monday 08:00 Paris.
    expect(iso(s.next(at('2026-03-06T09:00:00Z'), PARIS))).toBe('2026-03-09T07:00:00Z');
    expect(iso(s.prev(at('2026-03-08T12:00:00Z'), PARIS))).toBe('2026-03-06T07:00:00Z');
    expect(iso(s.next(at('2026-03-06T09:00:00Z')))).toBe('2026-03-09T08:00:00Z');
  });

  it('treats the scheduled minute exactly as past for next and as the run for prev', () => {
    const s = parseCron('0 8 * * mon-fri');
    const monday = at('2026-03-09T07:00:00Z');
    expect(iso(s.prev(monday, PARIS))).toBe('2026-03-09T07:00:00Z');
    expect(iso(s.prev(monday + 59_999, PARIS))).toBe('2026-03-09T07:00:00Z');
    expect(iso(s.prev(monday - 1, PARIS))).toBe('2026-03-06T07:00:00Z');
    expect(iso(s.next(monday, PARIS))).toBe('2026-03-10T07:00:00Z');
    expect(iso(s.next(monday - 1, PARIS))).toBe('2026-03-09T07:00:00Z');
  });

  it('keeps local time across the Europe/Paris DST changes', () => {
    const eight = parseCron('0 8 * * *');
    expect(iso(eight.next(at('2026-03-28T08:00:00Z'), PARIS))).toBe('2026-03-29T06:00:00Z');
    expect(iso(eight.prev(at('2026-03-29T05:59:00Z'), PARIS))).toBe('2026-03-28T07:00:00Z');
    expect(iso(eight.next(at('2026-10-25T06:00:00Z'), PARIS))).toBe('2026-10-25T07:00:00Z');
    // 02:30 does not exist on 29 March (02:00 CET jumps to 03:00 CEST): it fires at the jump.
    const half = parseCron('30 2 * * *');
    expect(iso(half.next(at('2026-03-28T12:00:00Z'), PARIS))).toBe('2026-03-29T01:00:00Z');
    expect(iso(half.next(at('2026-03-29T01:00:00Z'), PARIS))).toBe('2026-03-30T00:30:00Z');
    expect(iso(half.prev(at('2026-03-29T03:00:00Z'), PARIS))).toBe('2026-03-29T01:00:00Z');
    // 02:30 happens twice on 25 October (03:00 CEST falls back to 02:00 CET): only the first fires.
    expect(iso(half.next(at('2026-10-24T12:00:00Z'), PARIS))).toBe('2026-10-25T00:30:00Z');
    expect(iso(half.next(at('2026-10-25T00:30:00Z'), PARIS))).toBe('2026-10-26T01:30:00Z');
    expect(iso(half.prev(at('2026-10-25T01:45:00Z'), PARIS))).toBe('2026-10-25T00:30:00Z');
    // Every 15 minutes through the repeated hour: each wall-clock time once.
    const quarter = parseCron('*/15 2 25 10 *');
    const runs: string[] = [];
    for (let t: number | undefined = at('2026-10-24T23:59:00Z'); runs.length < 5; ) {
      t = quarter.next(t!, PARIS);
      runs.push(iso(t)!);
    }
    expect(runs).toEqual(['2026-10-25T00:00:00Z', '2026-10-25T00:15:00Z', '2026-10-25T00:30:00Z', '2026-10-25T00:45:00Z', '2027-10-25T00:00:00Z']);
  });

  it('reads lists, ranges, steps, names, 7 as Sunday and the day-of-month/day-of-week OR rule', () => {
    expect(iso(parseCron('*/15 * * * *').next(at('2026-01-01T10:07:30Z')))).toBe('2026-01-01T10:15:00Z');
    const tens = parseCron('10/20 9-10 * * *');
    expect(iso(tens.next(at('2026-01-01T09:30:00Z')))).toBe('2026-01-01T09:50:00Z');
    expect(iso(tens.next(at('2026-01-01T10:50:00Z')))).toBe('2026-01-02T09:10:00Z');
    expect(iso(parseCron('5,35 1-3/2 * * *').next(at('2026-01-01T01:35:00Z')))).toBe('2026-01-01T03:05:00Z');
    const sunday = at('2026-02-01T00:00:00Z');
    expect(parseCron('0 0 * * 7').next(sunday)).toBe(parseCron('0 0 * * SUN').next(sunday));
    expect(iso(parseCron('0 0 * * 5-7').next(at('2026-02-01T00:00:00Z')))).toBe('2026-02-06T00:00:00Z');
    expect(iso(parseCron('15 10 * JAN,jul sun').next(at('2026-02-01T00:00:00Z')))).toBe('2026-07-05T10:15:00Z');
    // Both day fields restricted: the 13th or a Friday.
    const either = parseCron('0 0 13 * 5');
    const days: string[] = [];
    for (let t: number | undefined = at('2026-02-01T00:00:00Z'); days.length < 4; ) {
      t = either.next(t!);
      days.push(iso(t)!.slice(0, 10));
    }
    expect(days).toEqual(['2026-02-06', '2026-02-13', '2026-02-20', '2026-02-27']);
    // One restricted, the other *: both must hold.
    expect(iso(parseCron('0 0 13 * *').next(at('2026-02-01T00:00:00Z')))).toBe('2026-02-13T00:00:00Z');
    expect(iso(parseCron('0 0 */10 * 1').next(at('2026-01-01T00:00:00Z')))).toBe('2026-05-11T00:00:00Z');
    expect(iso(parseCron('@daily').next(at('2026-01-01T10:00:00Z')))).toBe('2026-01-02T00:00:00Z');
    expect(iso(parseCron('0 12 29 2 *').next(at('2026-01-01T00:00:00Z')))).toBe('2028-02-29T12:00:00Z');
  });

  it('refuses bad expressions with a code and the field at fault', () => {
    const cases: Array<[string, string, string]> = [
      ['* * * *', 'cron_field_count', 'expression'],
      ['* * * * * *', 'cron_field_count', 'expression'],
      ['x * * * *', 'cron_syntax', 'minute'],
      ['60 * * * *', 'cron_range', 'minute'],
      ['* 5-2 * * *', 'cron_range', 'hour'],
      ['* * 0 * *', 'cron_range', 'day-of-month'],
      ['* * * 13 *', 'cron_range', 'month'],
      ['* * * foo *', 'cron_syntax', 'month'],
      ['* * * * 8', 'cron_range', 'day-of-week'],
      ['*/0 * * * *', 'cron_range', 'minute'],
      ['? * * * *', 'cron_syntax', 'minute'],
      ['1,,2 * * * *', 'cron_syntax', 'minute'],
      ['@often', 'cron_syntax', 'expression'],
    ];
    for (const [expr, code, field] of cases) {
      const err = cronError(() => parseCron(expr));
      expect({ expr, code: err.code, field: err.field }).toEqual({ expr, code, field });
      expect(err.message.length).toBeGreaterThan(10);
    }
    const zone = cronError(() => parseCron('0 8 * * *').next(0, 'Mars/Olympus'));
    expect(zone.code).toBe('cron_time_zone');
    expect(zone.field).toBe('timezone');
  });

  it('gives up on a schedule that never fires within its bound', () => {
    const never = parseCron('0 0 30 2 *');
    const t0 = performance.now();
    expect(never.next(at('2026-01-01T00:00:00Z'))).toBeUndefined();
    expect(never.prev(at('2026-01-01T00:00:00Z'), PARIS)).toBeUndefined();
    expect(performance.now() - t0).toBeLessThan(2000);
  });
});

describe('cronDesired', () => {
  const office = { timezone: PARIS, start: '0 8 * * 1-5', end: '0 18 * * 1-5', desiredReplicas: '3' };

  it('is active from the start minute until the end minute, with the next change', () => {
    const clock = new ManualClock(at('2026-03-09T06:59:00Z'));
    expect(cronDesired(office, clock.now())).toEqual({ active: false, desired: 0, nextChange: at('2026-03-09T07:00:00Z') });
    clock.advance(60_000);
    expect(cronDesired(office, clock.now())).toEqual({ active: true, desired: 3, nextChange: at('2026-03-09T17:00:00Z') });
    clock.set(at('2026-03-09T16:59:59Z'));
    expect(cronDesired(office, clock.now()).active).toBe(true);
    clock.set(at('2026-03-09T17:00:00Z'));
    expect(cronDesired(office, clock.now())).toEqual({ active: false, desired: 0, nextChange: at('2026-03-10T07:00:00Z') });
    clock.set(at('2026-03-14T12:00:00Z'));
    expect(cronDesired(office, clock.now())).toEqual({ active: false, desired: 0, nextChange: at('2026-03-16T07:00:00Z') });
    // After the change to summer time, 08:00 in Paris is 06:00 UTC.
    clock.set(at('2026-03-30T06:00:00Z'));
    expect(cronDesired(office, clock.now())).toEqual({ active: true, desired: 3, nextChange: at('2026-03-30T16:00:00Z') });
  });

  it('defaults to UTC and spans midnight when end comes before start in the day', () => {
    const night = { start: '0 22 * * *', end: '0 6 * * *', desiredReplicas: 2 };
    expect(cronDesired(night, at('2026-05-01T23:00:00Z'))).toMatchObject({ active: true, desired: 2, nextChange: at('2026-05-02T06:00:00Z') });
    expect(cronDesired(night, at('2026-05-02T03:00:00Z'))).toMatchObject({ active: true });
    expect(cronDesired(night, at('2026-05-02T12:00:00Z'))).toMatchObject({ active: false, desired: 0 });
  });

  it('names the metadata field at fault', () => {
    const field = (meta: Record<string, unknown>) => {
      try {
        cronDesired({ ...office, ...meta } as typeof office, 0);
      } catch (err) {
        expect(err).toBeInstanceOf(TriggerError);
        return [(err as TriggerError).code, (err as TriggerError).field];
      }
      return undefined;
    };
    expect(field({ desiredReplicas: '-1' })).toEqual(['trigger_metadata', 'desiredReplicas']);
    expect(field({ desiredReplicas: 'three' })).toEqual(['trigger_metadata', 'desiredReplicas']);
    expect(field({ desiredReplicas: '1.5' })).toEqual(['trigger_metadata', 'desiredReplicas']);
    expect(field({ start: '0 25 * * *' })).toEqual(['trigger_metadata', 'start']);
    expect(field({ end: 'soon' })).toEqual(['trigger_metadata', 'end']);
    expect(field({ timezone: 'Nowhere/Land' })).toEqual(['trigger_metadata', 'timezone']);
  });
});

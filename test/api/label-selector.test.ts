import { describe, expect,it } from 'vitest';

import { parseLabelSelector } from '../../src/api/label-selector.js';

describe('label selectors', () => {
  const l = { app: 'web', tier: 'front', 'example.com/team': 'a' };
  it.each([
    ['', true],
    ['app=web', true],
    ['app==web', true],
    ['app!=web', false],
    ['app in (web, api)', true],
    ['app notin (web)', false],
    ['tier', true],
    ['!tier', false],
    ['!missing', true],
    ['app=web,tier=back', false],
    ['example.com/team=a', true],
    ['missing!=x', true],
  ])('%s → %s', (sel, want) => {
    expect(parseLabelSelector(sel).matches(l)).toBe(want);
  });
  it('rejects malformed selectors with a position', () => {
    expect(() => parseLabelSelector('app in web')).toThrow(/labelSelector/);
    expect(() => parseLabelSelector('a=b c')).toThrow(/position/);
  });
});

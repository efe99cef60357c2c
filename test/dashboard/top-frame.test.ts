import { describe, expect, it } from 'vitest';

import { frame } from '../../src/cli/commands/top.js';
import type { Summary } from '../../src/dashboard/index.js';

const route: Summary = { kind: 'route', name: 'default/api', rps: 12, requests: 120, errors: 0, errorRate: 0, p99Ms: 2.5 };

describe('skiff top frame', () => {
  it('adds REPLICAS (ready/desired) and REASON when the server reports a Function\'s replicas', () => {
    const series: Summary[] = [
      route,
      { kind: 'function', name: 'default/hot', rps: 10, requests: 100, errors: 1, errorRate: 0.01, p99Ms: 4, replicas: 5, ready: 3, desired: 5, panic: true, reason: 'reactive' },
      { kind: 'function', name: 'default/idle', rps: 0, requests: 0, errors: 0, errorRate: 0, p99Ms: null, replicas: 0, ready: 0, desired: 0, panic: false, reason: 'minScale' },
    ];
    const lines = frame('http://x', { intervalMs: 1000, windowMs: 10_000, series }).split('\n');
    expect(lines[2]).toMatch(/^KIND\s+NAME\s+RPS\s+ERRORS\s+ERR%\s+P99\s+REPLICAS\s+REASON$/);
    expect(lines[3]).toMatch(/^route\s+default\/api\s+.*\s+-\s+-$/);
    expect(lines[4]).toMatch(/\s3\/5\s+reactive \(panic\)$/);
    expect(lines[5]).toMatch(/\s0\/0\s+minScale$/);
  });

  it('keeps the old columns when the server sends no replicas', () => {
    const lines = frame('http://x', { intervalMs: 1000, windowMs: 10_000, series: [route] }).split('\n');
    expect(lines[2]).toMatch(/^KIND\s+NAME\s+RPS\s+ERRORS\s+ERR%\s+P99$/);
  });
});

import { describe, expect, it } from 'vitest';

import type { LogLine } from '../../src/api/server.js';
import { FunctionLogs } from '../../src/functions/logs.js';

const enc = (s: string) => new TextEncoder().encode(s);

describe('FunctionLogs', () => {
  it('splits stderr into lines with their request id, dropping CRs and empty lines, and keeps system notes', () => {
    const logs = new FunctionLogs();
    logs.appendOutput('ns', 'f', 'r1', enc('first\r\nsecond\n\nthird without newline'));
    logs.append('ns', 'f', { stream: 'system', requestId: 'r1', line: 'trap: unreachable' });
    const lines = logs.tail('ns', 'f', 10);
    expect(lines.map((l) => [l.stream, l.requestId, l.line])).toEqual([
      ['stderr', 'r1', 'first'],
      ['stderr', 'r1', 'second'],
      ['stderr', 'r1', 'third without newline'],
      ['system', 'r1', 'trap: unreachable'],
    ]);
    expect(Date.parse(lines[0]!.time)).toBeGreaterThan(Date.now() - 5000);
    expect(logs.tail('ns', 'other', 10)).toEqual([]);
    expect(logs.tail('ns', 'f', 2).map((l) => l.line)).toEqual(['third without newline', 'trap: unreachable']);
  });

  it('keeps the newest lines past the line cap, whatever their size, and text that wraps around stays whole', () => {
    const logs = new FunctionLogs(50);
    for (let i = 0; i < 5000; i++) logs.appendOutput('ns', 'f', `r${i}`, enc(`line ${i} ${'é'.repeat(i % 97)}\n`));
    const lines = logs.tail('ns', 'f', 1000);
    expect(lines).toHaveLength(50);
    lines.forEach((l, k) => {
      const i = 4950 + k;
      expect(l.line).toBe(`line ${i} ${'é'.repeat(i % 97)}`);
      expect(l.requestId).toBe(`r${i}`);
    });
  });

  it('drops the oldest lines when their bytes pass the per-function text cap, and cuts a huge line', () => {
    const logs = new FunctionLogs(1000);
    for (let i = 0; i < 100; i++) logs.appendOutput('ns', 'f', 'r', enc(`${String(i).padStart(3, '0')}${'x'.repeat(10_000)}\n`));
    const lines = logs.tail('ns', 'f', 1000);
    expect(lines.length).toBeLessThan(100);
    expect(lines.length).toBeGreaterThan(10);
    expect(lines.at(-1)!.line.startsWith('099')).toBe(true);
    for (const l of lines) expect(l.line).toHaveLength(10_003);
    logs.appendOutput('ns', 'g', 'r', enc('y'.repeat(100_000)));
    expect(logs.tail('ns', 'g', 1)[0]!.line).toHaveLength(16 * 1024);
  });

  it('hands new lines to followers until they stop following, and forgets a function', () => {
    const logs = new FunctionLogs();
    const seen: LogLine[] = [];
    const stop = logs.follow('ns', 'f', (l) => seen.push(l));
    logs.appendOutput('ns', 'f', 'r1', enc('a\nb\n'));
    stop();
    logs.appendOutput('ns', 'f', 'r2', enc('c\n'));
    expect(seen.map((l) => l.line)).toEqual(['a', 'b']);
    logs.forget('ns', 'f');
    expect(logs.tail('ns', 'f', 10)).toEqual([]);
  });
});

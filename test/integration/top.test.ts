import { spawn } from 'node:child_process';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { BIN, cli, type RunningSkiff, startSkiff } from '../helpers/skiff-process.js';

describe('skiff top', () => {
  let s: RunningSkiff;
  beforeAll(async () => {
    s = await startSkiff({ demo: true });
  });
  afterAll(async () => {
    await s?.stop();
  });

  it('prints one frame of requests/s, errors and p99 per Route and Function with --once, busiest first', async () => {
    expect(s.readyLine).toMatch(/^skiff ready /);
    for (let i = 0; i < 20; i++) expect((await fetch(`${s.gateway}/hello`)).status).toBe(200);
    expect((await fetch(`${s.gateway}/nowhere`)).status).toBe(404);
    let out = '';
    // The ring samples once a second: wait (bounded) until the requests are in a reading.
    await expect
      .poll(
        async () => {
          const r = await cli(['top', '--once'], { skiff: s });
          expect(r.code).toBe(0);
          out = r.stdout;
          return /route\s+default\/hello\s+\d+\.\d\s+0\s+0\.0%\s+\S+/.test(out);
        },
        { timeout: 15_000, interval: 300 },
      )
      .toBe(true);
    const lines = out.trim().split('\n');
    expect(lines[0]).toMatch(new RegExp(`^skiff top\\s+${s.api.replace(/[.:/]/g, '\\$&')}\\s+\\d\\d:\\d\\d:\\d\\d\\s+rates over the last 10s$`));
    expect(lines[2]).toMatch(/^KIND\s+NAME\s+RPS\s+ERRORS\s+ERR%\s+P99\s+REPLICAS\s+REASON$/);
    expect(out).toMatch(/function\s+default\/hello\s+\d+\.\d\s+0\s+0\.0%\s+\d+(µs|ms)/);
    const only = await cli(['top', '--once', '--kind', 'function'], { skiff: s });
    expect(only.stdout).not.toMatch(/^route/m);
    expect((await cli(['top', '--once', '--kind', 'pods'], { skiff: s })).code).toBe(2);
    const refused = await cli(['top', '--once', '--token', 'wrong'], { skiff: s });
    expect([refused.code, refused.stderr]).toEqual([1, expect.stringMatching(/refused the token/)]);
  });

  it('refreshes until SIGINT or SIGTERM, then exits 0', async () => {
    const child = spawn(process.execPath, [BIN, 'top', '--interval', '0.2', '--server', s.api, '--token', s.token], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      await expect.poll(() => out.split('skiff top ').length - 1, { timeout: 10_000 }).toBeGreaterThanOrEqual(3);
      // Not a terminal: frames follow each other, with no screen-switching escapes.
      expect(out).not.toContain('\x1b[');
      child.kill('SIGINT');
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('says clearly when the server is gone', async () => {
    const api = s.api;
    expect(await s.stop()).toBe(0);
    const r = await cli(['top', '--once'], { server: api, env: { SKIFF_TOKEN: 'x' } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/cannot reach the Skiff API at http:\/\/127\.0\.0\.1:\d+ \(connection refused\); is `skiff up` running\?/);
  });
});

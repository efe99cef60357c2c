import { describe, expect,it } from 'vitest';

import { cli,startSkiff } from '../helpers/skiff-process.js';

describe('quick start: skiff up --demo', () => {
  it('serves /hello, restarts on the same data dir, and exits 0 on SIGTERM', async () => {
    const t0 = Date.now();
    const s = await startSkiff({ demo: true });
    const startupMs = Date.now() - t0;
    try {
      expect(s.api).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const res = await fetch(`${s.gateway}/hello`);
      expect(res.status).toBe(200);
      const body = await res.text();
      expect(body).toContain('Hello');
      expect(body).toContain('method: GET');
      expect(res.headers.get('x-request-id')).toBeTruthy();
      const get = await cli(['get', 'functions'], { skiff: s });
      expect(get.code).toBe(0);
      expect(get.stdout).toMatch(/^NAME\s+READY\s+REPLICAS\s+DIGEST\s+AGE\nhello\s+True\s+\d+\/\d+\s+[0-9a-f]{12}\s+\d+s\n$/);
      // Generous bound: this guards against a hang at start, the benchmark reports the real figure.
      expect(startupMs).toBeLessThan(15_000);
    } finally {
      expect(await s.stop('SIGTERM')).toBe(0);
    }
    const again = await startSkiff({ demo: true, dataDir: s.dataDir });
    try {
      expect((await fetch(`${again.gateway}/hello`)).status).toBe(200);
    } finally {
      expect(await again.stop('SIGINT')).toBe(0);
    }
  });
});

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect,it } from 'vitest';

import { cli, startSkiff, waitFor } from '../helpers/skiff-process.js';

describe('platform decision logs', () => {
  it('record every gateway authorization with masked input, and skiff policy decisions filters them', async () => {
    const s = await startSkiff({ demo: true, args: ['--decision-log', '--decision-log-mask', 'attributes.request.http.headers.authorization'] });
    try {
      const dir = mkdtempSync(join(tmpdir(), 'skiff-dl-'));
      writeFileSync(
        join(dir, 'p.yaml'),
        `apiVersion: skiff.dev/v1
kind: Policy
metadata: { name: only-get }
spec:
  rego: |
    package dl
    default allow := false
    allow if input.attributes.request.http.method == "GET"
---
apiVersion: skiff.dev/v1
kind: Route
metadata: { name: hello }
spec:
  filters: [{ authz: { policy: data.dl.allow } }]
  http:
    - match: [{ uri: { prefix: /hello } }]
      route: [{ destination: { function: hello } }]
`,
      );
      expect((await cli(['apply', '-f', join(dir, 'p.yaml')], { skiff: s })).code).toBe(0);
      await waitFor(async () => (await fetch(`${s.gateway}/hello`, { method: 'POST' })).status === 403, 'policy in force');
      expect((await fetch(`${s.gateway}/hello`, { headers: { authorization: 'Bearer hunter2' } })).status).toBe(200);
      const log = join(s.dataDir, 'decisions.log');
      const all = (await waitFor(async () => {
        const r = await cli(['policy', 'decisions', '--log', log, '--query', 'data.dl.allow', '-o', 'json']);
        const ds = r.code === 0 ? (JSON.parse(r.stdout) as Array<Record<string, any>>) : [];
        return ds.some((d) => d.result === true) ? ds : undefined;
      }, 'decisions in the log'))!;
      const allowed = all.find((d) => d.result === true)!;
      expect(allowed.decision_id).toMatch(/^[0-9a-f-]{36}$/);
      expect(allowed.input.attributes.request.http.headers.authorization).toBe('**REDACTED**');
      expect(allowed.duration_us).toBeGreaterThan(0);
      expect(all.some((d) => d.result === false)).toBe(true);
      expect(JSON.stringify(all)).not.toContain('hunter2');
    } finally {
      await s.stop();
    }
  });
});

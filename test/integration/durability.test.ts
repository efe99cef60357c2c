import { describe, expect,it } from 'vitest';

import { apiFetch, startSkiff } from '../helpers/skiff-process.js';

const N = 200;

describe('durability', () => {
  it('keeps every acknowledged write across kill -9', async () => {
    // The Services name loopback endpoints (never called), which only --allow-upstream admits.
    const grant = ['--allow-upstream', '127.0.0.0/8'];
    const s = await startSkiff({ args: grant });
    const SVC = '/apis/skiff.dev/v1/namespaces/default/services';
    let acked = 0;
    try {
      // Ten writers at once, so acknowledgements interleave with commits as they would under load.
      await Promise.all(
        Array.from({ length: 10 }, async (_, w) => {
          for (let i = w; i < N; i += 10) {
            const res = await apiFetch(s, SVC, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ apiVersion: 'skiff.dev/v1', kind: 'Service', metadata: { name: `svc-${i}` }, spec: { endpoints: [{ address: '127.0.0.1', port: 10000 + i }] } }),
            });
            expect(res.status).toBe(201);
            acked++;
          }
        }),
      );
    } finally {
      await s.stop('SIGKILL');
    }
    expect(acked).toBe(N);
    const again = await startSkiff({ dataDir: s.dataDir, args: grant });
    try {
      const list = (await (await apiFetch(again, SVC)).json()) as { items: Array<{ metadata: { name: string } }> };
      const names = new Set(list.items.map((i) => i.metadata.name));
      for (let i = 0; i < N; i++) expect(names.has(`svc-${i}`)).toBe(true);
      // And the store keeps accepting writes with revisions that continue upwards.
      const res = await apiFetch(again, SVC, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ apiVersion: 'skiff.dev/v1', kind: 'Service', metadata: { name: 'after' }, spec: { endpoints: [{ address: '127.0.0.1', port: 9 }] } }) });
      expect(res.status).toBe(201);
    } finally {
      await again.stop();
    }
  });
});

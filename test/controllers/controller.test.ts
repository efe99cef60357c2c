import pino from 'pino';
import { describe, expect,it } from 'vitest';

import { builtinKinds } from '../../src/api/kinds/index.js';
import { ResourceService } from '../../src/api/resources.js';
import { cacheKey,Controller, Informer } from '../../src/controllers/runtime/index.js';
import { MemoryStore } from '../../src/store/index.js';

const logger = pino({ level: 'silent' });
const svc = (name: string, port = 9) => ({ apiVersion: 'skiff.dev/v1', kind: 'Service', metadata: { name }, spec: { endpoints: [{ address: '127.0.0.1', port }] } });

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('controller runtime', () => {
  it('reconciles what exists at start, every change after, and retries failures with backoff', async () => {
    const resources = new ResourceService(new MemoryStore(), builtinKinds());
    const def = resources.kind('Service');
    await resources.create(def, 'default', svc('before'));
    const informer = new Informer(resources, def, logger);
    const seen: string[] = [];
    const attempts = new Map<string, number>();
    const ctl = new Controller({
      name: 'test',
      logger,
      keys: () => informer.list().map(cacheKey),
      resyncMs: 60_000,
      reconcile: async (key) => {
        const n = (attempts.get(key) ?? 0) + 1;
        attempts.set(key, n);
        // "flaky" fails twice before it succeeds.
        if (key === 'default/flaky' && n < 3) throw new Error('not yet');
        seen.push(`${key}${informer.get(key) ? '' : ' (gone)'}`);
      },
    });
    informer.addHandlers({ onAdd: (o) => ctl.enqueue(cacheKey(o)), onUpdate: (_a, b) => ctl.enqueue(cacheKey(b)), onDelete: (o) => ctl.enqueue(cacheKey(o)) });
    await informer.start();
    expect(informer.hasSynced).toBe(true);
    ctl.start();
    await until(() => seen.includes('default/before'));
    await resources.create(def, 'default', svc('later'));
    await until(() => seen.includes('default/later'));
    await resources.patch(def, 'default', 'later', { spec: { endpoints: [{ address: '127.0.0.1', port: 10 }] } });
    await until(() => seen.filter((s) => s === 'default/later').length >= 2);
    expect(informer.get('default/later')!.spec.endpoints[0].port).toBe(10);
    await resources.delete(def, 'default', 'later');
    await until(() => seen.includes('default/later (gone)'));
    const t0 = Date.now();
    await resources.create(def, 'default', svc('flaky'));
    await until(() => seen.includes('default/flaky'));
    expect(attempts.get('default/flaky')).toBe(3);
    // Two failures: waits of 50 ms and 100 ms before the third attempt.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    await ctl.stop();
    informer.stop();
  });
});

import pino from 'pino';
import { describe, expect,it } from 'vitest';

import { builtinKinds } from '../../src/api/kinds/index.js';
import { ResourceService } from '../../src/api/resources.js';
import { EventGarbageCollector } from '../../src/controllers/event-gc.js';
import { EventRecorder } from '../../src/controllers/runtime/index.js';
import { MemoryStore } from '../../src/store/index.js';

describe('events', () => {
  it('are counted when repeated and collected once older than the retention', async () => {
    const logger = pino({ level: 'silent' });
    const resources = new ResourceService(new MemoryStore(), builtinKinds());
    const fnDef = resources.kind('Function');
    const { object: fn } = await resources.create(fnDef, 'default', { apiVersion: 'skiff.dev/v1', kind: 'Function', metadata: { name: 'f' }, spec: { module: '/f.wasm' } });
    const rec = new EventRecorder(resources, 'test', logger);
    await rec.record(fn, 'Warning', 'ModuleNotFound', 'gone');
    await rec.record(fn, 'Warning', 'ModuleNotFound', 'gone');
    await rec.record(fn, 'Normal', 'ModuleLoaded', 'ok');
    const evDef = resources.kind('Event');
    const events = (await resources.list(evDef, 'default')).items;
    expect(events).toHaveLength(2);
    expect(events.find((e) => e.reason === 'ModuleNotFound')!.count).toBe(2);
    const gc = new EventGarbageCollector(resources, logger, 60_000);
    expect(await gc.sweep(Date.now())).toBe(0);
    expect(await gc.sweep(Date.now() + 61_000)).toBe(2);
    expect((await resources.list(evDef, 'default')).items).toHaveLength(0);
  });
});

import { createHash } from 'node:crypto';
import { mkdtempSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import pino from 'pino';
import { describe, expect,it } from 'vitest';

import { blobRef, builtinKinds } from '../../src/api/kinds/index.js';
import { ResourceService } from '../../src/api/resources.js';
import { BlobGarbageCollector } from '../../src/controllers/blob-gc.js';
import { BlobStore, MemoryStore } from '../../src/store/index.js';

describe('uploaded modules', () => {
  it('are removed once no Function names them and the grace period has passed, in any namespace', async () => {
    const resources = new ResourceService(new MemoryStore(), builtinKinds());
    const blobs = new BlobStore({ dir: join(mkdtempSync(join(tmpdir(), 'skiff-blobgc-')), 'blobs') });
    const put = async (text: string) => {
      const hex = createHash('sha256').update(text).digest('hex');
      await blobs.put(hex, Buffer.from(text));
      const old = new Date(Date.now() - 3 * 3600_000);
      utimesSync(blobs.pathOf(hex), old, old);
      return hex;
    };
    const [used, usedElsewhere, orphan] = [await put('v2 in default'), await put('v1 in team-a'), await put('v1 in default, replaced')];
    await resources.create(resources.kind('Namespace'), undefined, { apiVersion: 'skiff.dev/v1', kind: 'Namespace', metadata: { name: 'team-a' } });
    const fn = (ns: string, name: string, hex: string) => resources.create(resources.kind('Function'), ns, { apiVersion: 'skiff.dev/v1', kind: 'Function', metadata: { name }, spec: { module: blobRef(hex) } });
    await fn('default', 'a', used);
    await fn('team-a', 'b', usedElsewhere);
    await resources.create(resources.kind('Function'), 'default', { apiVersion: 'skiff.dev/v1', kind: 'Function', metadata: { name: 'c' }, spec: { module: 'https://example.test/m.wasm' } });
    const gc = new BlobGarbageCollector(resources, blobs, pino({ level: 'silent' }), 3600_000);
    expect(await gc.sweep()).toEqual([orphan]);
    expect((await blobs.list()).sort()).toEqual([used, usedElsewhere].sort());
    await resources.delete(resources.kind('Function'), 'team-a', 'b');
    expect(await gc.sweep()).toEqual([usedElsewhere]);
    expect(await blobs.list()).toEqual([used]);
  });
});

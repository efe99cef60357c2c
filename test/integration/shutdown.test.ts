import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect,it } from 'vitest';

import { cli, startSkiff, waitFor } from '../helpers/skiff-process.js';
import { wat } from '../helpers/wat.js';

// A function that sleeps 600 ms (a poll_oneoff clock subscription), then answers.
const SLEEPER = `(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 1024) "Content-Type: text/plain\\n\\nslept\\n")
  (func (export "_start")
    (i32.store8 (i32.const 264) (i32.const 0))
    (i32.store (i32.const 272) (i32.const 1))
    (i64.store (i32.const 280) (i64.const 600000000))
    (drop (call $poll (i32.const 256) (i32.const 512) (i32.const 1) (i32.const 600)))
    (i32.store (i32.const 0) (i32.const 1024))
    (i32.store (i32.const 4) (i32.const 32))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))))`;

describe('graceful shutdown', () => {
  it('finishes in-flight requests on SIGTERM, then exits 0 with the store closed cleanly', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'skiff-drain-'));
    writeFileSync(join(dir, 'sleep.wasm'), await wat(SLEEPER));
    writeFileSync(
      join(dir, 'sleep.yaml'),
      `apiVersion: skiff.dev/v1\nkind: Function\nmetadata: { name: sleeper }\nspec: { module: ./sleep.wasm }\n---\napiVersion: skiff.dev/v1\nkind: Route\nmetadata: { name: sleeper }\nspec:\n  http:\n    - match: [{ uri: { prefix: /sleep } }]\n      route: [{ destination: { function: sleeper } }]\n`,
    );
    const s = await startSkiff();
    expect((await cli(['apply', '-f', join(dir, 'sleep.yaml')], { skiff: s })).code).toBe(0);
    await waitFor(async () => JSON.parse((await cli(['get', 'fn', 'sleeper', '-o', 'json'], { skiff: s })).stdout).status?.conditions?.[0]?.status === 'True', 'sleeper ready');
    const inflight = fetch(`${s.gateway}/sleep`);
    await new Promise((r) => setTimeout(r, 150));
    const exited = s.stop('SIGTERM');
    const res = await inflight;
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('slept\n');
    expect(await exited).toBe(0);
    // The data is intact for the next start.
    const again = await startSkiff({ dataDir: s.dataDir });
    expect((await cli(['get', 'fn', 'sleeper'], { skiff: again })).code).toBe(0);
    expect(await again.stop()).toBe(0);
  });
});

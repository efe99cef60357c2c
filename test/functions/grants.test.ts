import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import pino from 'pino';
import { describe, expect, it } from 'vitest';

import { DEFAULT_LIMITS, FunctionInvoker, FunctionLogs, grantProblems, resolveLimits } from '../../src/functions/index.js';
import { DEFAULT_FUNCTION_MAXIMA, HostDirs } from '../../src/security/index.js';

describe('function grants', () => {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-fn-grants-'));
  const grants = { hostDirs: HostDirs.from([dir]), maxima: { ...DEFAULT_FUNCTION_MAXIMA, memoryBytes: 64 * 2 ** 20, timeoutMs: 5000 } };

  it('gives unset limits their defaults clamped to the maxima', () => {
    expect(resolveLimits({}, DEFAULT_FUNCTION_MAXIMA)).toEqual(DEFAULT_LIMITS);
    expect(resolveLimits({}, grants.maxima)).toMatchObject({ memoryBytes: 64 * 2 ** 20, timeoutMs: 5000, maxOutputBytes: DEFAULT_LIMITS.maxOutputBytes });
    expect(resolveLimits({ limits: { memory: '8Mi', timeout: 250 } }, grants.maxima)).toMatchObject({ memoryBytes: 8 * 2 ** 20, timeoutMs: 250 });
    expect(() => resolveLimits({ limits: { memory: '65Mi' } }, grants.maxima)).toThrow(/spec\.limits\.memory: 65Mi is above this server's maximum of 64Mi.*--max-function-memory/);
  });

  it('names every directory and limit the grants refuse', () => {
    const problems = grantProblems({ capabilities: { dirs: [{ host: dir, guest: '/a' }, { host: '/', guest: '/b' }, { host: `${dir}/../x`, guest: '/c' }, { host: 'rel', guest: '/d' }] }, limits: { timeout: '10s', queue: 5 } }, grants);
    expect(problems.map((p) => p.field)).toEqual(['spec.capabilities.dirs[1].host', 'spec.capabilities.dirs[2].host', 'spec.capabilities.dirs[3].host', 'spec.limits.timeout']);
    for (const p of problems.slice(0, 3)) expect(p.message).toContain('--allow-host-dir');
    expect(problems[3]!.message).toContain('--max-function-timeout');
  });

  it('the invoker refuses to serve a Function its grants do not cover', () => {
    const result = { exitCode: 0, stdout: new Uint8Array(), stderr: new Uint8Array(), durationMs: 0 };
    const inv = new FunctionInvoker({ tryInline: () => result, invoke: async () => result }, new FunctionLogs(), pino({ level: 'silent' }), { name: 'x', port: '1' }, grants);
    expect(() => inv.set({ namespace: 'default', name: 'f', digest: 'sha256:aa', spec: { module: '/f.wasm', capabilities: { dirs: [{ host: '/etc', guest: '/etc' }] } } })).toThrow(/--allow-host-dir/);
    expect(inv.has('default', 'f')).toBe(false);
    expect(inv.tryInline('default', 'f', { method: 'GET', path: '/', rawQuery: '', headers: {}, body: new Uint8Array(), remoteAddress: '', requestId: 'r' })).toMatchObject({ code: 'not_ready', message: expect.stringMatching(/not ready.*--allow-host-dir/) });
    inv.set({ namespace: 'default', name: 'g', digest: 'sha256:aa', spec: { module: '/f.wasm', capabilities: { dirs: [{ host: dir, guest: '/d' }] } } });
    expect(inv.has('default', 'g')).toBe(true);
  });
});

import { describe, it, expect } from 'vitest';
import pino from 'pino';
import { FunctionInvoker, FunctionLogs, type FunctionRuntime } from '../../src/functions/index.js';

const enc = (s: string) => new TextEncoder().encode(s);
const req = { method: 'GET', path: '/x', rawQuery: '', headers: {}, body: new Uint8Array(), remoteAddress: '127.0.0.1', requestId: 'r1' };

function setup(behaviour: FunctionRuntime['run']) {
  const logs = new FunctionLogs();
  const inv = new FunctionInvoker({ run: behaviour }, logs, pino({ level: 'silent' }), { name: '127.0.0.1', port: '8080' });
  inv.set({ namespace: 'default', name: 'f', digest: 'sha256:aa', spec: { module: '/f.wasm', limits: { timeout: '250ms', memory: '8Mi' } } });
  return { inv, logs };
}

describe('FunctionInvoker', () => {
  it('passes limits, parses output and records stderr lines with the request id', async () => {
    let seen: any;
    const { inv, logs } = setup(async (_d, r) => {
      seen = r;
      return { exitCode: 0, stdout: enc('Content-Type: text/plain\n\nok'), stderr: enc('line one\nline two\n'), durationMs: 1 };
    });
    const res = await inv.invoke('default', 'f', req);
    expect(res.status).toBe(200);
    expect(seen.limits).toMatchObject({ timeoutMs: 250, memoryBytes: 8 * 1024 * 1024 });
    expect(seen.poolKey).toBe('default/f');
    expect(logs.tail('default', 'f', 10).map((l) => [l.requestId, l.line])).toEqual([['r1', 'line one'], ['r1', 'line two']]);
  });

  it.each([
    ['trap', 'trap', /trap: unreachable/],
    ['timeout', 'timeout', /deadline exceeded/],
    ['overloaded', 'overloaded', /overloaded/],
    ['output_limit', 'bad_gateway', /output limit/],
  ])('maps runtime error %s to %s and logs it', async (code, want, logLine) => {
    const { inv, logs } = setup(async () => {
      throw Object.assign(new Error('unreachable executed'), { code });
    });
    await expect(inv.invoke('default', 'f', req)).rejects.toMatchObject({ code: want });
    expect(logs.tail('default', 'f', 1)[0]!.line).toMatch(logLine);
  });

  it('answers bad_gateway with a log line for malformed output', async () => {
    const { inv, logs } = setup(async () => ({ exitCode: 0, stdout: enc('garbage'), stderr: new Uint8Array(), durationMs: 1 }));
    await expect(inv.invoke('default', 'f', req)).rejects.toMatchObject({ code: 'bad_gateway' });
    expect(logs.tail('default', 'f', 1)[0]!.line).toMatch(/bad output: .*no blank line/);
  });

  it('distinguishes a missing function from one that is not ready', async () => {
    const { inv } = setup(async () => ({ exitCode: 0, stdout: new Uint8Array(), stderr: new Uint8Array(), durationMs: 0 }));
    await expect(inv.invoke('default', 'nope', req)).rejects.toMatchObject({ code: 'function_not_found' });
    inv.markNotReady('default', 'later', 'module file /x.wasm does not exist');
    await expect(inv.invoke('default', 'later', req)).rejects.toMatchObject({ code: 'not_ready', message: expect.stringMatching(/does not exist/) });
  });

  it('answers at once, without a promise, when the runtime ran the guest on this thread, and throws its failures at once', () => {
    const { inv, logs } = setup(() => ({ exitCode: 0, stdout: enc('Content-Type: text/plain\n\nnow'), stderr: enc('said\n'), durationMs: 0 }));
    const res = inv.call('default', 'f', req);
    expect(res).not.toBeInstanceOf(Promise);
    expect(new TextDecoder().decode((res as { body: Uint8Array }).body)).toBe('now');
    expect(logs.tail('default', 'f', 1)[0]!.line).toBe('said');
    const failing = setup(() => {
      throw Object.assign(new Error('unreachable executed'), { code: 'trap' });
    });
    expect(() => failing.inv.call('default', 'f', req)).toThrow(expect.objectContaining({ code: 'trap' }));
    expect(failing.logs.tail('default', 'f', 1)[0]!.line).toMatch(/trap: unreachable/);
    // The promise-returning form reports the same failure as a rejection.
    return expect(failing.inv.invoke('default', 'f', req)).rejects.toMatchObject({ code: 'trap' });
  });
});

import pino from 'pino';
import { describe, expect,it } from 'vitest';

import { FunctionError, FunctionInvoker, FunctionLogs, type FunctionRuntime } from '../../src/functions/index.js';
import { type InvokeRequest, type InvokeResult,RuntimeError } from '../../src/runtime/index.js';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const req = { method: 'GET', path: '/x', rawQuery: '', headers: {}, body: new Uint8Array(), remoteAddress: '127.0.0.1', requestId: 'r1' };
const ok = (stdout: string, stderr = ''): InvokeResult => ({ exitCode: 0, stdout: enc(stdout), stderr: enc(stderr), durationMs: 0 });

/** setup builds an invoker over a fake runtime: `later` is its worker entry point, `now` its inline one (declines by default). */
function setup(later: FunctionRuntime['invoke'], now: FunctionRuntime['tryInline'] = () => undefined) {
  const logs = new FunctionLogs();
  const inv = new FunctionInvoker({ tryInline: now, invoke: later }, logs, pino({ level: 'silent' }), { name: '127.0.0.1', port: '8080' });
  inv.set({ namespace: 'default', name: 'f', digest: 'sha256:aa', spec: { module: '/f.wasm', limits: { timeout: '250ms', memory: '8Mi' } } });
  return { inv, logs };
}

const never = async (): Promise<InvokeResult> => {
  throw new Error('invoke must not be called');
};

describe('FunctionInvoker.invoke (on a worker)', () => {
  it('passes limits, parses output and records stderr lines with the request id', async () => {
    let seen: InvokeRequest | undefined;
    const { inv, logs } = setup(async (_d, r) => {
      seen = r;
      return ok('Content-Type: text/plain\n\nok', 'line one\nline two\n');
    });
    const res = await inv.invoke('default', 'f', req);
    expect(res.status).toBe(200);
    expect(seen!.limits).toMatchObject({ timeoutMs: 250, memoryBytes: 8 * 1024 * 1024 });
    expect(seen!.poolKey).toBe('default/f');
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
    const { inv, logs } = setup(async () => ok('garbage'));
    await expect(inv.invoke('default', 'f', req)).rejects.toMatchObject({ code: 'bad_gateway' });
    expect(logs.tail('default', 'f', 1)[0]!.line).toMatch(/bad output: .*no blank line/);
  });

  it('distinguishes a missing function from one that is not ready', async () => {
    const { inv } = setup(async () => ok(''));
    await expect(inv.invoke('default', 'nope', req)).rejects.toMatchObject({ code: 'function_not_found' });
    inv.markNotReady('default', 'later', 'module file /x.wasm does not exist');
    await expect(inv.invoke('default', 'later', req)).rejects.toMatchObject({ code: 'not_ready', message: expect.stringMatching(/does not exist/) });
  });

  it('never tries the inline entry point', async () => {
    const { inv } = setup(async () => ok('Content-Type: text/plain\n\nlater'), () => {
      throw new Error('tryInline must not be called by invoke');
    });
    expect(dec((await inv.invoke('default', 'f', req)).body)).toBe('later');
  });
});

describe('FunctionInvoker.tryInline (on this thread)', () => {
  it('answers at once, without a promise, when the runtime ran the guest here, and keeps its stderr lines', () => {
    const { inv, logs } = setup(never, () => ok('Content-Type: text/plain\n\nnow', 'said\n'));
    const res = inv.tryInline('default', 'f', req);
    expect(res).not.toBeInstanceOf(Promise);
    expect(res).not.toBeInstanceOf(Error);
    expect(dec((res as { body: Uint8Array }).body)).toBe('now');
    expect(logs.tail('default', 'f', 1)[0]!.line).toBe('said');
  });

  it('returns failures as FunctionError values, never throwing, mapped as invoke maps them', async () => {
    const cases: Array<[string, FunctionRuntime['tryInline'], string, RegExp | undefined]> = [
      ['a trap reported by the runtime', () => new RuntimeError('trap', 'unreachable executed', { stderr: enc('last words\n') }), 'trap', /trap: unreachable/],
      ['a request the runtime refuses', () => new RuntimeError('invalid_options', 'limits.memoryBytes must be a positive number'), 'internal', /failed: limits/],
      ['a host error', () => new RuntimeError('host_error', 'host error in fd_write: TypeError: bug'), 'internal', /failed: host error in fd_write/],
      ['malformed output', () => ok('garbage'), 'bad_gateway', /bad output/],
      ['a guest that exits non-zero without a response', () => ({ ...ok(''), exitCode: 3 }), 'function_failed', /exited with code 3/],
      [
        'a runtime that throws although it must not',
        () => {
          throw new TypeError('broken runtime');
        },
        'internal',
        /failed: broken runtime/,
      ],
    ];
    for (const [what, now, code, logLine] of cases) {
      const { inv, logs } = setup(never, now);
      let res: unknown;
      expect(() => (res = inv.tryInline('default', 'f', req)), what).not.toThrow();
      expect(res, what).toBeInstanceOf(FunctionError);
      expect(res, what).toMatchObject({ code });
      if (logLine) expect(logs.tail('default', 'f', 5).map((l) => l.line).join('\n'), what).toMatch(logLine);
    }
  });

  it('returns a missing or not-ready function as a value too', () => {
    const { inv } = setup(never, () => ok('Content-Type: text/plain\n\nnow'));
    expect(inv.tryInline('default', 'nope', req)).toMatchObject({ code: 'function_not_found' });
    inv.markNotReady('default', 'later', 'module file /x.wasm does not exist');
    expect(inv.tryInline('default', 'later', req)).toMatchObject({ code: 'not_ready', message: expect.stringMatching(/does not exist/) });
  });

  it('returns undefined when the runtime declines, and invoke then reuses the invocation it prepared', async () => {
    const seen: InvokeRequest[] = [];
    const { inv } = setup(
      async (_d, r) => {
        seen.push(r);
        return ok('Content-Type: text/plain\n\nlater');
      },
      (_d, r) => {
        seen.push(r);
        return undefined;
      },
    );
    expect(inv.tryInline('default', 'f', req)).toBeUndefined();
    expect(dec((await inv.invoke('default', 'f', req)).body)).toBe('later');
    expect(seen).toHaveLength(2);
    expect(seen[1]).toBe(seen[0]);
    // A second invoke of the same request object prepares its own invocation.
    await inv.invoke('default', 'f', req);
    expect(seen[2]).not.toBe(seen[0]);
    expect(seen[2]).toEqual(seen[0]);
  });

  it('does not reuse an invocation prepared for a function that was replaced in between', async () => {
    const seen: InvokeRequest[] = [];
    const { inv } = setup(
      async (_d, r) => {
        seen.push(r);
        return ok('Content-Type: text/plain\n\nlater');
      },
      () => undefined,
    );
    expect(inv.tryInline('default', 'f', req)).toBeUndefined();
    inv.set({ namespace: 'default', name: 'f', digest: 'sha256:bb', spec: { module: '/f.wasm', limits: { timeout: '1s' } } });
    await inv.invoke('default', 'f', req);
    expect(seen[0]!.limits).toMatchObject({ timeoutMs: 1000 });
  });
});

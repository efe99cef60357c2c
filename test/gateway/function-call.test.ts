import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Gateway, type FunctionInvoker, type FunctionResponse, type GatewayRequest } from '../../src/gateway/index.js';
import { route } from './helpers.js';

/**
 * CallInvoker has the request-path form `call`: it answers synchronously, throws synchronously, or
 * returns a promise, as the test sets it; `invoke` must never be used when `call` exists.
 */
class CallInvoker implements FunctionInvoker {
  readonly ignoresSignal = true;
  calls = 0;
  answer: (req: GatewayRequest) => FunctionResponse | Promise<FunctionResponse> = (req) => ({
    status: 200,
    headers: [['content-type', 'text/plain']],
    body: Buffer.from(`now ${req.method} ${req.path} ${Buffer.from(req.body).toString()}`),
  });
  call(_ns: string, _name: string, req: GatewayRequest): FunctionResponse | Promise<FunctionResponse> {
    this.calls++;
    return this.answer(req);
  }
  invoke(): Promise<FunctionResponse> {
    throw new Error('invoke used although call exists');
  }
}

let gw: Gateway | undefined;
afterEach(async () => {
  await gw?.close(500);
  gw = undefined;
});

async function start(inv: CallInvoker, timeout?: string): Promise<string> {
  gw = new Gateway({ functions: inv, logger: pino({ level: 'silent' }) });
  const problems = gw.update({ routes: [route('r', { http: [{ ...(timeout ? { timeout } : {}), route: [{ destination: { function: 'f' } }] }] })], services: [] });
  expect(problems).toEqual([]);
  const { port } = await gw.listen('127.0.0.1', 0);
  return `http://127.0.0.1:${port}`;
}

describe('functions that answer at once', () => {
  it('serves a synchronous answer, with and without a request body', async () => {
    const inv = new CallInvoker();
    const url = await start(inv);
    const get = await fetch(`${url}/a`);
    expect(get.status).toBe(200);
    expect(await get.text()).toBe('now GET /a ');
    const post = await fetch(`${url}/b`, { method: 'POST', body: 'payload' });
    expect(await post.text()).toBe('now POST /b payload');
    expect(inv.calls).toBe(2);
    // The metrics count them like any other answer.
    expect(gw!.metrics().upstreams['fn:default/f']?.requests).toBe(2);
  });

  it('maps a failure thrown at once like one that rejects', async () => {
    const inv = new CallInvoker();
    inv.answer = () => {
      throw Object.assign(new Error('trapped'), { code: 'trap' });
    };
    const url = await start(inv);
    const res = await fetch(`${url}/x`);
    expect(res.status).toBe(500);
    inv.answer = () => Promise.reject(Object.assign(new Error('trapped later'), { code: 'trap' }));
    expect((await fetch(`${url}/x`)).status).toBe(500);
    inv.answer = () => {
      throw Object.assign(new Error('full'), { code: 'overloaded' });
    };
    expect((await fetch(`${url}/x`)).status).toBe(503);
  });

  it('answers 504 at the route deadline when the answer comes later, without waiting for it', async () => {
    const inv = new CallInvoker();
    inv.answer = () => new Promise((r) => setTimeout(() => r({ status: 200, headers: [['content-type', 'text/plain']], body: Buffer.from('late') }), 600));
    const url = await start(inv, '150ms');
    const t0 = performance.now();
    const res = await fetch(`${url}/slow`);
    expect(res.status).toBe(504);
    expect(performance.now() - t0).toBeLessThan(550);
  });
});

import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';

import { type Cancellation, type FunctionInvoker, type FunctionResponse, Gateway, type GatewayRequest } from '../../src/gateway/index.js';

import { rawExchange, route } from './helpers.js';

const text = (s: string): FunctionResponse => ({ status: 200, headers: [['content-type', 'text/plain']], body: Buffer.from(s) });

/**
 * TwoWayInvoker answers through whichever entry point the test chooses: `now` is tryInline's answer
 * (a response, an Error value, or undefined to decline), `later` is invoke's. It records which entry
 * points saw which request objects.
 */
class TwoWayInvoker implements FunctionInvoker {
  inline: GatewayRequest[] = [];
  invoked: Array<{ req: GatewayRequest; signal: AbortSignal }> = [];
  now: (req: GatewayRequest) => FunctionResponse | Error | undefined = (req) => text(`now ${req.method} ${req.path} ${Buffer.from(req.body).toString()}`);
  later: (req: GatewayRequest) => Promise<FunctionResponse> = async () => {
    throw new Error('invoke used although tryInline answered');
  };
  tryInline(_ns: string, _name: string, req: GatewayRequest): FunctionResponse | Error | undefined {
    this.inline.push(req);
    return this.now(req);
  }
  invoke(_ns: string, _name: string, req: GatewayRequest, cancel: Cancellation): Promise<FunctionResponse> {
    this.invoked.push({ req, signal: cancel.signal });
    return this.later(req);
  }
}

let gw: Gateway | undefined;
afterEach(async () => {
  await gw?.close(500);
  gw = undefined;
});

async function start(inv: FunctionInvoker, rule: Record<string, unknown> = {}): Promise<{ url: string; port: number }> {
  gw = new Gateway({ functions: inv, logger: pino({ level: 'silent' }) });
  const problems = gw.update({ routes: [route('r', { http: [{ ...rule, route: [{ destination: { function: 'f' } }] }] })], services: [] });
  expect(problems).toEqual([]);
  const { port } = await gw.listen('127.0.0.1', 0);
  return { url: `http://127.0.0.1:${port}`, port };
}

describe('functions that answer at once (tryInline)', () => {
  it('serves the answer, with and without a request body, and never calls invoke', async () => {
    const inv = new TwoWayInvoker();
    const { url } = await start(inv);
    const get = await fetch(`${url}/a`);
    expect(get.status).toBe(200);
    expect(await get.text()).toBe('now GET /a ');
    const post = await fetch(`${url}/b`, { method: 'POST', body: 'payload' });
    expect(await post.text()).toBe('now POST /b payload');
    expect(inv.inline).toHaveLength(2);
    expect(inv.invoked).toHaveLength(0);
    // The metrics count them like any other answer.
    expect(gw!.metrics().upstreams['fn:default/f']?.requests).toBe(2);
  });

  it('serves the answer behind a filter chain too', async () => {
    const inv = new TwoWayInvoker();
    const { url } = await start(inv, { headers: { response: { set: { 'x-filtered': 'yes' } } }, timeout: '2s' });
    const res = await fetch(`${url}/f`);
    expect(await res.text()).toBe('now GET /f ');
    expect(res.headers.get('x-filtered')).toBe('yes');
    expect(inv.invoked).toHaveLength(0);
  });

  it('maps a failure returned at once like one that rejects later', async () => {
    const inv = new TwoWayInvoker();
    const { url } = await start(inv);
    const cases: Array<[string, number]> = [['trap', 500], ['overloaded', 503], ['timeout', 504], ['bad_gateway', 502], ['function_not_found', 503]];
    for (const [code, status] of cases) {
      inv.now = () => Object.assign(new Error('secret detail'), { code });
      const now = await fetch(`${url}/x`);
      expect(now.status, `${code} at once`).toBe(status);
      expect(await now.text()).not.toContain('secret');
      inv.now = () => undefined;
      inv.later = () => Promise.reject(Object.assign(new Error('secret detail'), { code }));
      expect((await fetch(`${url}/x`)).status, `${code} later`).toBe(status);
    }
  });

  it('answers 500 for an invoker that throws from tryInline although it must not', async () => {
    const inv = new TwoWayInvoker();
    inv.now = () => {
      throw new TypeError('broken invoker');
    };
    const { url } = await start(inv);
    const res = await fetch(`${url}/x`);
    expect(res.status).toBe(500);
    expect(await res.text()).toBe('internal error\n');
    expect(inv.invoked).toHaveLength(0);
  });
});

describe('functions that answer later (invoke)', () => {
  it('calls invoke with the request object tryInline declined, and a live signal', async () => {
    const inv = new TwoWayInvoker();
    inv.now = () => undefined;
    inv.later = async (req) => text(`later ${req.path}`);
    const { url } = await start(inv);
    const res = await fetch(`${url}/l`);
    expect(await res.text()).toBe('later /l');
    expect(inv.invoked).toHaveLength(1);
    expect(inv.invoked[0]!.req).toBe(inv.inline[0]);
    expect(inv.invoked[0]!.signal.aborted).toBe(false);
  });

  it('answers 504 at the route deadline without waiting for the answer, and aborts the signal', async () => {
    const inv = new TwoWayInvoker();
    inv.now = () => undefined;
    inv.later = () => new Promise((r) => setTimeout(() => r(text('late')), 600));
    const { url } = await start(inv, { timeout: '150ms' });
    const t0 = performance.now();
    const res = await fetch(`${url}/slow`);
    expect(res.status).toBe(504);
    expect(performance.now() - t0).toBeLessThan(550);
    expect(inv.invoked[0]!.signal.aborted).toBe(true);
  });

  it('keeps pipelined answers in request order when answers at once and later are mixed', async () => {
    const inv = new TwoWayInvoker();
    // /a comes later and last, /b at once, /c later but at once after a timer.
    inv.now = (req) => (req.path === '/b' ? text(`answer ${req.path}\n`) : undefined);
    inv.later = (req) => new Promise((r) => setTimeout(() => r(text(`answer ${req.path}\n`)), req.path === '/a' ? 60 : 0));
    const { port } = await start(inv);
    const r = await rawExchange(port, 'GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\nGET /c HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n', 3000);
    expect(r.data.match(/answer \/[abc]/g)).toEqual(['answer /a', 'answer /b', 'answer /c']);
    expect(r.closed).toBe(true);
  });
});

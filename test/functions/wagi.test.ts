import { describe, expect,it } from 'vitest';

import { parseWagiOutput, wagiArgs, wagiEnv, WagiOutputError } from '../../src/functions/wagi.js';

const enc = (s: string) => new TextEncoder().encode(s);
const req = {
  method: 'POST',
  path: '/hello/x',
  rawQuery: 'a=1&b=two%20words',
  headers: { host: 'example.test', 'content-type': 'text/plain', 'x-custom': 'v', authorization: 'Bearer secret', cookie: 'c=1' },
  body: enc('body!'),
  remoteAddress: '127.0.0.1',
  requestId: 'req-1',
};

describe('WAGI request mapping', () => {
  it('maps the request to CGI variables and hides credentials', () => {
    const env = wagiEnv(req, { name: 'hello', serverName: '127.0.0.1', serverPort: '8080', env: { FROM_SPEC: '1', REQUEST_METHOD: 'spoof' } });
    expect(env).toMatchObject({
      REQUEST_METHOD: 'POST',
      PATH_INFO: '/hello/x',
      QUERY_STRING: 'a=1&b=two%20words',
      CONTENT_LENGTH: '5',
      CONTENT_TYPE: 'text/plain',
      HTTP_X_CUSTOM: 'v',
      HTTP_HOST: 'example.test',
      X_FULL_URL: 'http://example.test/hello/x?a=1&b=two%20words',
      SERVER_PORT: '8080',
      GATEWAY_INTERFACE: 'CGI/1.1',
      FROM_SPEC: '1',
    });
    expect(env.HTTP_AUTHORIZATION).toBeUndefined();
    expect(env.HTTP_COOKIE).toBeUndefined();
  });
  it('passes the query parameters as arguments after the name', () => {
    expect(wagiArgs(req, { name: 'hello', serverName: '', serverPort: '', args: ['--x'] })).toEqual(['hello', '--x', 'a=1', 'b=two words']);
  });
});

describe('WAGI output parsing', () => {
  it('reads headers, status and body', () => {
    const r = parseWagiOutput(enc('Content-Type: text/plain\r\nStatus: 201 Created\r\nX-A: b\r\n\r\nhi\n\nthere'));
    expect(r.status).toBe(201);
    expect(r.headers).toEqual([['Content-Type', 'text/plain'], ['X-A', 'b']]);
    expect(new TextDecoder().decode(r.body)).toBe('hi\n\nthere');
  });
  it('treats Location without Status as a redirect', () => {
    expect(parseWagiOutput(enc('Location: /elsewhere\n\n')).status).toBe(302);
  });
  it('drops framing headers a guest tries to set', () => {
    const r = parseWagiOutput(enc('Content-Type: a/b\nContent-Length: 999\nTransfer-Encoding: chunked\n\nx'));
    expect(r.headers).toEqual([['Content-Type', 'a/b']]);
  });
  it.each([
    ['', /wrote nothing/],
    ['Content-Type: text/plain\nno blank line', /no blank line/],
    ['just text\n\nbody', /malformed header line/],
    ['Status: 999\nContent-Type: a/b\n\n', /invalid Status/],
    ['X-Only: 1\n\nbody', /neither a Content-Type nor a Location/],
    ['Bad Name: 1\nContent-Type: a/b\n\n', /invalid header name/],
  ])('refuses malformed output %j', (out, msg) => {
    expect(() => parseWagiOutput(enc(out))).toThrow(WagiOutputError);
    expect(() => parseWagiOutput(enc(out))).toThrow(msg);
  });
});

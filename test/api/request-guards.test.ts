import type http from 'node:http';

import { describe, expect,it } from 'vitest';
import { parse as parseYaml } from 'yaml';

import { TokenAuthenticator } from '../../src/api/authn.js';
import { ApiError } from '../../src/api/errors.js';
import { jsonNestingExceeds, MAX_NESTING, valueNestingExceeds, yamlNestingBoundExceeds } from '../../src/api/nesting.js';
import { applyMergePatch } from '../../src/api/patch/merge-patch.js';
import { bodyMediaType, decodeBody, objectMediaType, patchMediaType } from '../../src/api/request-body.js';
import { checkCrossSite, checkHost, isLoopbackHost } from '../../src/api/request-origin.js';
import { parseRequestUrl } from '../../src/api/request-url.js';

/** statusOf runs fn and returns the HTTP status of the ApiError it throws (0 when it does not throw). */
function statusOf(fn: () => unknown): number {
  try {
    fn();
    return 0;
  } catch (err) {
    if (err instanceof ApiError) return err.httpStatus;
    throw err;
  }
}

const fakeReq = (headers: Record<string, string>) => ({ headers }) as unknown as http.IncomingMessage;

describe('parseRequestUrl', () => {
  it('splits and decodes segments and keeps the query', () => {
    const u = parseRequestUrl('/apis/skiff.dev/v1/namespaces/default/functions/a%2Db?watch=true&labelSelector=a%3Db');
    expect(u.segments).toEqual(['apis', 'skiff.dev', 'v1', 'namespaces', 'default', 'functions', 'a-b']);
    expect(u.query.get('watch')).toBe('true');
    expect(u.query.get('labelSelector')).toBe('a=b');
    expect(u.path).toBe('/apis/skiff.dev/v1/namespaces/default/functions/a%2Db');
  });

  it('drops trailing slashes and treats / as the root', () => {
    expect(parseRequestUrl('/apis/').path).toBe('/apis');
    expect(parseRequestUrl('/apis//').segments).toEqual(['apis']);
    expect(parseRequestUrl('/').segments).toEqual([]);
    expect(parseRequestUrl('/?x=1').path).toBe('/');
  });

  it.each([
    ['/apis/skiff.dev/v1/namespaces/default/functions/..', /"\." or "\.\."/],
    ['/apis/skiff.dev/v1/namespaces/default/functions/.', /"\." or "\.\."/],
    ['/apis/skiff.dev/v1/namespaces/default/functions/%2e%2e', /"\." or "\.\."/],
    ['/apis/skiff.dev/v1/namespaces/default/functions/%2e%2E', /"\." or "\.\."/],
    ['/apis/skiff.dev/v1/namespaces/default/functions/.%2e', /"\." or "\.\."/],
    ['/apis/skiff.dev/v1/namespaces/default/functions/%2E.', /"\." or "\.\."/],
    ['/apis/skiff.dev/v1/namespaces/default/functions/%2E', /"\." or "\.\."/],
    ['/apis/skiff.dev/v1/namespaces/%zz/functions', /malformed percent escape "%zz"/],
    ['/apis/skiff.dev/v1/namespaces/default/functions/a%', /malformed percent escape/],
    ['/apis/skiff.dev/v1/namespaces/default/functions/a%2', /malformed percent escape/],
    ['/apis/skiff.dev/v1/namespaces/default/functions?x=%zz', /query string has a malformed/],
    ['/apis/skiff.dev/v1/namespaces//functions', /empty segment/],
    ['//apis', /empty segment/],
    ['/apis/skiff.dev/v1/namespaces/a%2Fb/functions', /encodes "\/"/],
    ['/apis/skiff.dev/v1/namespaces/a%2fb/functions', /encodes "\/"/],
    ['/apis/skiff.dev/v1/namespaces/a%5Cb/functions', /encodes "\/" or "\\"/],
    ['/apis/skiff.dev/v1/namespaces/a\\b/functions', /must not contain "\\"/],
    ['/apis/skiff.dev/v1/namespaces/a%00b/functions', /control character/],
    ['/apis/skiff.dev/v1/namespaces/a%0Ab/functions', /control character/],
    ['/apis/skiff.dev/v1/namespaces/%ff/functions', /not valid UTF-8/],
    ['/apis/ä', /printable ASCII/],
    ['/apis/a b', /printable ASCII/],
    ['http://evil.example/apis', /must be a path/],
    ['*', /must be a path/],
    ['/apis#x', /"#"/],
  ])('refuses %s with 400', (raw, message) => {
    let err: unknown;
    try {
      parseRequestUrl(raw);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).httpStatus).toBe(400);
    expect((err as ApiError).reason).toBe('BadRequest');
    expect((err as ApiError).message).toMatch(message);
  });

  it('accepts dots inside names and multi-byte UTF-8 escapes', () => {
    expect(parseRequestUrl('/a/..b/c.d/...').segments).toEqual(['a', '..b', 'c.d', '...']);
    expect(parseRequestUrl('/a/%C3%A4').segments).toEqual(['a', 'ä']);
  });
});

describe('nesting limits', () => {
  const nested = (open: string, close: string, n: number, inner = '1') => open.repeat(n) + inner + close.repeat(n);

  it('finds JSON nested past the limit in one linear pass, ignoring brackets inside strings', () => {
    expect(jsonNestingExceeds(Buffer.from(nested('[', ']', MAX_NESTING)), MAX_NESTING)).toBe(false);
    expect(jsonNestingExceeds(Buffer.from(nested('[', ']', MAX_NESTING + 1)), MAX_NESTING)).toBe(true);
    expect(jsonNestingExceeds(Buffer.from(nested('{"a":', '}', MAX_NESTING + 1)), MAX_NESTING)).toBe(true);
    expect(jsonNestingExceeds(Buffer.from(nested('[', ']', 200_000)), MAX_NESTING)).toBe(true);
    const inString = JSON.stringify({ s: '['.repeat(1000), t: 'a\\"[[[' });
    expect(jsonNestingExceeds(Buffer.from(inString), MAX_NESTING)).toBe(false);
    // Closing brackets inside strings do not lower the count either.
    const hidden = '['.repeat(60) + '"]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",' + '['.repeat(60);
    expect(jsonNestingExceeds(Buffer.from(hidden), MAX_NESTING)).toBe(true);
  });

  it('bounds YAML nesting from the lexer for flow and block collections', () => {
    expect(yamlNestingBoundExceeds(nested('[', ']', 50), MAX_NESTING)).toBe(false);
    expect(yamlNestingBoundExceeds(nested('[', ']', 200), MAX_NESTING)).toBe(true);
    expect(yamlNestingBoundExceeds('['.repeat(1_000_000), MAX_NESTING)).toBe(true);
    expect(yamlNestingBoundExceeds('- '.repeat(1_000_000) + 'x', MAX_NESTING)).toBe(true);
    expect(yamlNestingBoundExceeds('a: "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["\n', MAX_NESTING)).toBe(false);
    // A block scalar's content may be indented without counting as nesting.
    expect(yamlNestingBoundExceeds(`a: |\n${' '.repeat(400)}text\nb: 1\n`, MAX_NESTING)).toBe(false);
    // A plain scalar inside a flow sequence cannot hide brackets from the count: quotes there start no string.
    expect(yamlNestingBoundExceeds(`[don't, ${'['.repeat(150)}]`, MAX_NESTING)).toBe(true);
  });

  it('the YAML bound is never below the real depth', () => {
    const docs = [
      'a:\n  b:\n    - c: [1, {d: [2]}]\n    - - - x\n',
      'a:\n- b:\n  - c\n',
      '- - - - - [[{a: [b]}]]\n',
      '- ? a\n  : - b\n',
    ];
    for (const doc of docs) {
      const depth = depthOf(parseYaml(doc));
      expect(yamlNestingBoundExceeds(doc, depth - 1)).toBe(true);
    }
  });

  it('walks parsed values without recursion, through shared and cyclic aliases', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(valueNestingExceeds(deep, MAX_NESTING)).toBe(true);
    expect(valueNestingExceeds({ a: [{ b: 1 }] }, 3)).toBe(false);
    expect(valueNestingExceeds({ a: [{ b: {} }] }, 3)).toBe(true);
    const cyclic = parseYaml('&a [*a]');
    expect(valueNestingExceeds(cyclic, MAX_NESTING)).toBe(true);
    // Sharing (a DAG) is walked once per depth, not once per path.
    const shared = parseYaml('a: &a [1, 2]\nb: &b [*a, *a, *a]\nc: &c [*b, *b, *b]\nd: [*c, *c, *c]\n');
    expect(valueNestingExceeds(shared, 5)).toBe(false);
  });
});

function depthOf(v: unknown): number {
  if (v === null || typeof v !== 'object') return 0;
  return 1 + Math.max(0, ...(Array.isArray(v) ? v : Object.values(v)).map(depthOf));
}

describe('body media types', () => {
  it('accepts JSON, YAML, their +json/+yaml forms and UTF-8 charsets', () => {
    expect(bodyMediaType('application/json')).toEqual({ essence: 'application/json', format: 'json' });
    expect(bodyMediaType('Application/JSON; charset=UTF-8')).toMatchObject({ format: 'json' });
    expect(bodyMediaType('application/vnd.example+json')).toMatchObject({ format: 'json' });
    expect(bodyMediaType('application/yaml;charset="utf-8"')).toMatchObject({ format: 'yaml' });
    expect(bodyMediaType('application/vnd.example+yaml')).toMatchObject({ format: 'yaml' });
    expect(bodyMediaType('application/merge-patch+json')).toMatchObject({ format: 'json', patch: 'merge' });
    expect(bodyMediaType('application/strategic-merge-patch+json')).toMatchObject({ format: 'json', patch: 'strategic' });
    expect(bodyMediaType('application/json-patch+json')).toMatchObject({ format: 'json', patch: 'json' });
    expect(bodyMediaType('application/apply-patch+yaml')).toMatchObject({ format: 'yaml', patch: 'apply' });
  });

  it.each([undefined, '', 'text/plain', 'text/plain;charset=UTF-8', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'text/json', 'application/jsonx', 'application/json; charset=latin1', 'application/octet-stream'])('refuses %s with 415', (ct) => {
    expect(statusOf(() => bodyMediaType(ct))).toBe(415);
  });

  it('keeps patches for PATCH and objects for POST and PUT', () => {
    expect(statusOf(() => objectMediaType('application/merge-patch+json', 'POST'))).toBe(415);
    expect(objectMediaType('application/yaml', 'PUT').format).toBe('yaml');
    expect(patchMediaType('application/json').patch).toBe('merge');
    expect(statusOf(() => patchMediaType('application/yaml'))).toBe(415);
  });

  it('decodes within the nesting limit and names the limit beyond it', () => {
    expect(decodeBody(Buffer.from('a: [1, {b: 2}]\n'), bodyMediaType('application/yaml'))).toEqual({ a: [1, { b: 2 }] });
    for (const [text, ct] of [
      ['['.repeat(200_000) + ']'.repeat(200_000), 'application/json'],
      ['['.repeat(200_000), 'application/yaml'],
      ['x: ' + '['.repeat(101) + ']'.repeat(101), 'application/yaml'],
      ['- '.repeat(101) + 'x', 'application/yaml'],
    ] as const) {
      let err: ApiError | undefined;
      try {
        decodeBody(Buffer.from(text), bodyMediaType(ct));
      } catch (e) {
        err = e as ApiError;
      }
      expect(err?.httpStatus).toBe(400);
      expect(err?.message).toMatch(/deeper than the limit of 100 levels/);
    }
  });
});

describe('cross-site and rebinding checks', () => {
  it('knows loopback names', () => {
    for (const h of ['localhost', 'localhost:7070', 'LOCALHOST:1', 'app.localhost:80', 'a.b.localhost', '127.0.0.1', '127.0.0.1:7070', '127.1.2.3:9', '[::1]', '[::1]:7070']) expect(isLoopbackHost(h)).toBe(true);
    for (const h of ['rebind.evil.example', 'rebind.evil.example:7070', 'localhost.evil.example', 'evillocalhost', '127.0.0.1.evil.example', '0x7f.0.0.1', '127.1', '127.000.0.1', '128.0.0.1', '[::2]', '[::1]x', 'localhost:abc', '', 'localhost.']) expect(isLoopbackHost(h)).toBe(false);
  });

  it('checks Host only when listening on loopback', () => {
    expect(statusOf(() => checkHost(fakeReq({ host: 'rebind.evil.example:7070' }), true))).toBe(403);
    expect(statusOf(() => checkHost(fakeReq({}), true))).toBe(403);
    expect(statusOf(() => checkHost(fakeReq({ host: '127.0.0.1:7070' }), true))).toBe(0);
    expect(statusOf(() => checkHost(fakeReq({ host: 'rebind.evil.example:7070' }), false))).toBe(0);
  });

  it('refuses foreign origins and cross-site fetches', () => {
    expect(statusOf(() => checkCrossSite(fakeReq({ host: '127.0.0.1:7070', origin: 'http://evil.example' })))).toBe(403);
    expect(statusOf(() => checkCrossSite(fakeReq({ host: '127.0.0.1:7070', origin: 'null' })))).toBe(403);
    expect(statusOf(() => checkCrossSite(fakeReq({ host: '127.0.0.1:7070', origin: 'http://127.0.0.1:8080' })))).toBe(403);
    expect(statusOf(() => checkCrossSite(fakeReq({ host: '127.0.0.1:7070', 'sec-fetch-site': 'cross-site' })))).toBe(403);
    expect(statusOf(() => checkCrossSite(fakeReq({ host: '127.0.0.1:7070', 'sec-fetch-site': 'same-site' })))).toBe(403);
    expect(statusOf(() => checkCrossSite(fakeReq({ host: '127.0.0.1:7070', origin: 'http://127.0.0.1:7070', 'sec-fetch-site': 'same-origin' })))).toBe(0);
    expect(statusOf(() => checkCrossSite(fakeReq({ host: '127.0.0.1:7070' })))).toBe(0);
  });
});

describe('TokenAuthenticator', () => {
  const authn = new TokenAuthenticator('user-secret', 'controller-secret');
  const who = (authorization?: string) => authn.authenticate(fakeReq(authorization === undefined ? {} : { authorization }));

  it('tells the user from the controller', () => {
    expect(who('Bearer user-secret')).toBe('user');
    expect(who('bearer controller-secret')).toBe('controller');
  });

  it.each([undefined, '', 'Bearer', 'Bearer ', 'Basic dXNlcjpwYXNz', 'Bearer user-secretx', 'Bearer user-secre', 'Bearer user-secret extra', 'user-secret'])('refuses %s with 401 saying where the token is', (h) => {
    let err: ApiError | undefined;
    try {
      who(h);
    } catch (e) {
      err = e as ApiError;
    }
    expect(err?.httpStatus).toBe(401);
    expect(err?.reason).toBe('Unauthorized');
    expect(err?.message).toMatch(/DATA_DIR\/token.*SKIFF_TOKEN/);
  });
});

describe('applyMergePatch', () => {
  it('treats a __proto__ key from JSON as data, never as the prototype', () => {
    const out = applyMergePatch({ spec: { a: 1 } }, JSON.parse('{"spec": {"__proto__": {"capabilities": {"dirs": [{"host": "/"}]}}}}')) as { spec: Record<string, unknown> };
    expect(Object.getPrototypeOf(out.spec)).toBe(Object.prototype);
    expect(out.spec.capabilities).toBeUndefined();
    expect(Object.keys(out.spec)).toEqual(['a', '__proto__']);
    expect(applyMergePatch({ a: 1, b: 2 }, { a: null, c: { d: 1 } })).toEqual({ b: 2, c: { d: 1 } });
  });
});

import { describe, expect, it } from 'vitest';

import { BadPathError, DEFAULT_PATH_OPTIONS, isNormalPath, MAX_PATH_LENGTH, normalizePath, originForm, type PathOptions,PathRedirect } from './request-path.js';

const run = (p: string, opts: Partial<PathOptions> = {}) => {
  const r = normalizePath(p, { ...DEFAULT_PATH_OPTIONS, ...opts });
  return r instanceof BadPathError ? `400 ${r.publicMessage.trim()}` : r instanceof PathRedirect ? `redirect ${r.path}` : r;
};

describe('normalizePath with the defaults (Envoy/Istio)', () => {
  it.each([
    // already normal: returned unchanged
    ['/', '/'],
    ['/hello', '/hello'],
    ['/a/b/', '/a/b/'],
    ['/a.b/.c/..d/c..', '/a.b/.c/..d/c..'],
    ['/a/.../b', '/a/.../b'],
    // dot segments (RFC 3986 §5.2.4)
    ['/public/../apis/x', '/apis/x'],
    ['/public/./../apis/x', '/apis/x'],
    ['/a/b/c/./../../g', '/a/g'],
    ['/a/../b', '/b'],
    ['/public/a/../b', '/public/b'],
    ['/..', '/'],
    ['/../..', '/'],
    ['/../a', '/a'],
    ['/a/..', '/'],
    ['/a/b/..', '/a/'],
    ['/a/.', '/a/'],
    ['/.', '/'],
    ['/./a', '/a'],
    // escapes of unreserved characters are decoded, then take part in dot segments
    ['/public/%2e%2e/apis/x', '/apis/x'],
    ['/public/%2E%2e/apis/x', '/apis/x'],
    ['/public/.%2e/apis/x', '/apis/x'],
    ['/public/%2e/x', '/public/x'],
    ['/%7Euser/%41%62%2d%5f', '/~user/Ab-_'],
    ['/a%2e%2eb', '/a..b'],
    // other escapes stay escaped, hex upper-cased; nothing is decoded twice
    ['/a%20b', '/a%20b'],
    ['/a%7e%3f', '/a~%3F'],
    ['/a%3ab', '/a%3Ab'],
    ['/%252e%252e/x', '/%252e%252e/x'],
    ['/a%00b', '/a%00b'],
    // repeated slashes merged
    ['//apis/x', '/apis/x'],
    ['/a//b///c', '/a/b/c'],
    ['/a//', '/a/'],
    ['//', '/'],
    ['/a//../b', '/a/b'],
  ])('%s → %s', (input, want) => {
    expect(run(input)).toBe(want);
  });

  it.each([
    ['/public/..%2fapis/x', 'escaped slash'],
    ['/public%2F..%2Fapis', 'escaped slash'],
    ['/a%5cb', 'escaped slash'],
    ['/a%5Cb', 'escaped slash'],
    ['/public\\..\\apis', 'backslash'],
    ['/a%zz', 'malformed'],
    ['/a%', 'malformed'],
    ['/a%2', 'malformed'],
    ['/a%g0', 'malformed'],
    ['/a#frag', 'fragment'],
    ['/a\u0000b', 'control'],
    ['/a b', 'control'],
    ['/a\u007fb', 'control'],
    ['', 'starting with /'],
    ['apis', 'starting with /'],
    ['*', 'starting with /'],
  ])('%j → 400 (%s)', (input, why) => {
    const r = run(input);
    expect(r.startsWith('400 ')).toBe(true);
    expect(r).toContain(why);
  });

  it('returns the very same string for a path that is already normal', () => {
    const p = ['/api', 'v1', 'users', String(Date.now())].join('/');
    expect(normalizePath(p, DEFAULT_PATH_OPTIONS)).toBe(p);
    expect(isNormalPath(p, true)).toBe(true);
  });

  it('refuses paths over MAX_PATH_LENGTH with 414, normal or not, and accepts one at the limit', () => {
    const atLimit = '/' + 'a'.repeat(MAX_PATH_LENGTH - 1);
    expect(normalizePath(atLimit, DEFAULT_PATH_OPTIONS)).toBe(atLimit);
    for (const p of [atLimit + 'a', '/x/%2e%2e' + atLimit]) {
      const r = normalizePath(p, DEFAULT_PATH_OPTIONS);
      expect(r).toBeInstanceOf(BadPathError);
      expect((r as BadPathError).status).toBe(414);
      expect((r as BadPathError).publicMessage).toMatch(/^URI too long: the path is longer than 8192 characters/);
    }
  });
});

describe('normalizePath options', () => {
  it('keeps repeated slashes when merging is off, still removing dot segments', () => {
    expect(run('//apis/x', { mergeSlashes: false })).toBe('//apis/x');
    expect(run('/a//b/', { mergeSlashes: false })).toBe('/a//b/');
    expect(run('/a//../b', { mergeSlashes: false })).toBe('/a/b');
    expect(run('//..', { mergeSlashes: false })).toBe('/');
    expect(isNormalPath('/a//b', false)).toBe(true);
    expect(isNormalPath('/a//b', true)).toBe(false);
  });

  it('keep: escaped slashes stay escaped and are not separators; a raw backslash is a separator', () => {
    expect(run('/public/..%2fapis/x', { escapedSlashes: 'keep' })).toBe('/public/..%2Fapis/x');
    expect(run('/public%2F..%2Fapis', { escapedSlashes: 'keep' })).toBe('/public%2F..%2Fapis');
    expect(run('/a%5cb', { escapedSlashes: 'keep' })).toBe('/a%5Cb');
    expect(run('/public\\..\\apis', { escapedSlashes: 'keep' })).toBe('/apis');
  });

  it('unescape-and-forward: escaped slashes become separators before dot segments are removed', () => {
    expect(run('/public/..%2fapis/x', { escapedSlashes: 'unescape-and-forward' })).toBe('/apis/x');
    expect(run('/public%2F..%2Fapis', { escapedSlashes: 'unescape-and-forward' })).toBe('/apis');
    expect(run('/a%5Cb', { escapedSlashes: 'unescape-and-forward' })).toBe('/a/b');
    expect(run('/a%2F%2Fb', { escapedSlashes: 'unescape-and-forward' })).toBe('/a/b');
  });

  it('unescape-and-redirect: redirects only when escaped slashes were decoded', () => {
    expect(run('/public%2F..%2Fapis', { escapedSlashes: 'unescape-and-redirect' })).toBe('redirect /apis');
    expect(run('/a/%2e%2e/b', { escapedSlashes: 'unescape-and-redirect' })).toBe('/b');
    expect(run('/a\\b', { escapedSlashes: 'unescape-and-redirect' })).toBe('/a/b');
  });

  it('malformed escapes are refused whatever the options', () => {
    for (const escapedSlashes of ['keep', 'unescape-and-forward', 'unescape-and-redirect'] as const) {
      expect(run('/a%zz', { escapedSlashes })).toMatch(/^400 .*malformed/);
      expect(run('/a%', { escapedSlashes, mergeSlashes: false })).toMatch(/^400 .*malformed/);
    }
  });
});

describe('originForm', () => {
  it('passes a path through', () => {
    expect(originForm('/a/b')).toEqual({ path: '/a/b' });
  });

  it('takes the path and host of an absolute http URL', () => {
    expect(originForm('http://x/apis')).toEqual({ path: '/apis', authority: 'x' });
    expect(originForm('HTTPS://api.example.com:8443/a/../b')).toEqual({ path: '/a/../b', authority: 'api.example.com:8443' });
    expect(originForm('http://[::1]:80')).toEqual({ path: '/', authority: '[::1]:80' });
  });

  it.each(['*', 'x:80', 'ftp://x/a', 'http://', 'http://user@x/a', 'http://x y/a', 'http:/x/a', 'mailto:a@b'])('refuses %j', (t) => {
    expect(originForm(t)).toBeInstanceOf(BadPathError);
  });
});

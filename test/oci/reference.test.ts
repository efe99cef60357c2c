import { describe, expect, it } from 'vitest';

import { DockerConfig, formatReference, normaliseRegistryKey, parseReference } from '../../src/oci/index.js';

const D = `sha256:${'ab'.repeat(32)}`;

describe('parseReference', () => {
  it('reads host, port, repository, tag and digest, with or without oci://', () => {
    expect(parseReference('oci://127.0.0.1:5000/team/app:v1')).toEqual({ registry: '127.0.0.1:5000', repository: 'team/app', tag: 'v1' });
    expect(parseReference(`ghcr.io/a/b/c@${D}`)).toEqual({ registry: 'ghcr.io', repository: 'a/b/c', digest: D });
    expect(parseReference(`localhost:5000/app:1.0@${D}`)).toEqual({ registry: 'localhost:5000', repository: 'app', tag: '1.0', digest: D });
    expect(parseReference('[::1]:5000/app')).toEqual({ registry: '[::1]:5000', repository: 'app' });
    expect(parseReference('example.com/app', { defaultTag: 'latest' })).toEqual({ registry: 'example.com', repository: 'app', tag: 'latest' });
  });

  it('round-trips through formatReference', () => {
    for (const text of ['127.0.0.1:5000/team/app:v1', `ghcr.io/a/b@${D}`, `localhost:5000/app:1.0@${D}`]) {
      expect(formatReference(parseReference(text))).toBe(text);
      expect(formatReference(parseReference(text), { scheme: true })).toBe(`oci://${text}`);
    }
  });

  it.each([
    ['', 'empty'],
    ['app:v1', 'no registry host'],
    ['library/app:v1', 'does not look like a registry host'],
    ['127.0.0.1:5000/', 'names no repository'],
    ['127.0.0.1:5000/App', 'is not valid'],
    ['127.0.0.1:5000/app:-bad', 'the tag'],
    ['127.0.0.1:5000/app@sha256:abc', 'the digest'],
    ['127.0.0.1:99999/app', 'is not a registry HOST[:PORT]'],
    ['https://ghcr.io/app', 'only the oci:// scheme'],
  ])('refuses %j with a coded error (%s)', (text, why) => {
    expect(() => parseReference(text)).toThrow(expect.objectContaining({ code: 'oci_reference_invalid', message: expect.stringContaining(why) }));
  });
});

describe('DockerConfig', () => {
  it('reads auth, username/password and identitytoken entries under any key form', () => {
    const cfg = DockerConfig.parse(
      JSON.stringify({
        auths: {
          'https://index.docker.io/v1/': { auth: Buffer.from('hub:pw:with:colons').toString('base64') },
          'http://127.0.0.1:5000': { username: 'u', password: 'p' },
          'ghcr.io': { identitytoken: 'refresh' },
          'empty.example': {},
        },
        credsStore: 'desktop',
      }),
      'cfg',
    );
    expect(cfg.get('docker.io')).toMatchObject({ username: 'hub', password: 'pw:with:colons' });
    expect(cfg.get('127.0.0.1:5000')).toMatchObject({ username: 'u', password: 'p' });
    expect(cfg.get('ghcr.io')).toMatchObject({ identityToken: 'refresh' });
    expect(cfg.get('empty.example')).toBeUndefined();
    expect(cfg.size).toBe(3);
  });

  it('says which file is wrong, without echoing it', () => {
    expect(() => DockerConfig.parse('{"auths": {"h": {"auth": "bm9jb2xvbg=="}}}', '/x/config.json')).toThrow(/\/x\/config.json: auths\["h"\].auth is not base64 of USER:PASSWORD/);
    expect(() => DockerConfig.parse('not json secret', 'Secret default/reg')).toThrow(expect.objectContaining({ code: 'oci_credentials_invalid', message: expect.not.stringContaining('secret') }));
  });

  it('normalises registry keys', () => {
    expect(normaliseRegistryKey('https://Registry.Example:5000/v2/')).toBe('registry.example:5000');
    expect(normaliseRegistryKey('registry-1.docker.io')).toBe('docker.io');
  });
});

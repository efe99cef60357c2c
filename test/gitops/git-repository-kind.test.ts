import { describe, expect, it } from 'vitest';

import { builtinKinds } from '../../src/api/kinds/index.js';
import type { ResourceObject } from '../../src/api/kinds/types.js';

const def = builtinKinds().lookup('gitrepositories')!;

function errors(spec: Record<string, unknown>): string[] {
  const obj: ResourceObject = { apiVersion: 'skiff.dev/v1', kind: 'GitRepository', metadata: { name: 'app', namespace: 'default' }, spec };
  return (def.validate?.(obj) ?? []).map((e) => `${e.field}: ${e.message}`);
}

describe('GitRepository validation', () => {
  it('accepts every supported URL form and ref', () => {
    for (const url of ['https://git.example.com/a.git', 'http://127.0.0.1:8080/app.git', 'ssh://git@github.com/o/r.git', 'git@github.com:o/r.git', 'file:///srv/git/app', '/srv/git/app']) {
      expect(errors({ url }), url).toEqual([]);
    }
    expect(errors({ url: '/r', ref: { semver: '>=1.0.0 <2.0.0' }, interval: '2s', timeout: '1m30s' })).toEqual([]);
    expect(errors({ url: '/r', ref: { commit: 'a'.repeat(40) } })).toEqual([]);
  });

  it('refuses command-like, option-like and credential-carrying URLs, naming spec.url', () => {
    expect(errors({ url: 'ext::sh -c touch% /tmp/x' })[0]).toMatch(/^spec\.url: .*ext::/);
    expect(errors({ url: 'fd::17' })[0]).toMatch(/^spec\.url: remote helpers/);
    expect(errors({ url: '--upload-pack=touch /tmp/x' })[0]).toMatch(/^spec\.url: /);
    expect(errors({ url: '-oProxyCommand=x' })[0]).toMatch(/must not start with "-"/);
    expect(errors({ url: 'https://user:pw@git.example.com/a.git' })[0]).toMatch(/use secretRef|spec\.secretRef/);
    expect(errors({ url: 'https://token@git.example.com/a.git' })[0]).toMatch(/credentials/);
    expect(errors({ url: 'ftp://x/y' })[0]).toMatch(/scheme ftp/);
    expect(errors({ url: 'relative/path' })[0]).toMatch(/^spec\.url: /);
  });

  it('wants exactly one ref, a full commit sha, a valid semver range and durations', () => {
    expect(errors({ url: '/r', ref: { branch: 'main', tag: 'v1' } })).toEqual(['spec.ref: give exactly one of branch, tag, semver or commit (found branch, tag)']);
    expect(errors({ url: '/r', ref: {} })[0]).toMatch(/found none/);
    expect(errors({ url: '/r', ref: { commit: 'abc123' } })).toEqual(['spec.ref.commit: must be a full 40-character lowercase hex commit sha']);
    expect(errors({ url: '/r', ref: { semver: 'not a range!' } })[0]).toMatch(/^spec\.ref\.semver: .*not a valid semver range/);
    expect(errors({ url: '/r', ref: { branch: '-x' } })[0]).toMatch(/^spec\.ref\.branch: /);
    expect(errors({ url: '/r', interval: '10 minutes' })[0]).toMatch(/^spec\.interval: must be a duration/);
    expect(errors({ url: '/r', interval: '500ms' })[0]).toMatch(/^spec\.interval: .*at least 1s/);
    expect(errors({ url: '/r', timeout: '1h' })[0]).toMatch(/^spec\.timeout: .*at most 10m/);
  });

  it('prints URL, REVISION, READY and AGE', () => {
    expect(def.printerColumns.map((c) => c.name)).toEqual(['URL', 'REVISION', 'READY', 'AGE']);
    expect(def.shortNames).toEqual(['gitrepo']);
    expect(def.plural).toBe('gitrepositories');
  });
});

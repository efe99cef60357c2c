import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

import { cli, type RunningSkiff,startSkiff } from '../helpers/skiff-process.js';

let s: RunningSkiff;
beforeAll(async () => {
  s = await startSkiff();
});
afterAll(async () => {
  await s?.stop();
});

describe('the kubeconfig skiff up writes', () => {
  it('points at the API with the token, in a 0600 file, and skiff kubeconfig prints it', async () => {
    const path = join(s.dataDir, 'kubeconfig');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const text = readFileSync(path, 'utf8');
    const cfg = parse(text);
    expect(cfg['current-context']).toBe('skiff');
    expect(cfg.clusters[0].cluster.server).toBe(s.api);
    expect(cfg.users[0].user.token).toBe(readFileSync(join(s.dataDir, 'token'), 'utf8').trim());
    expect(cfg.contexts[0]).toEqual({ name: 'skiff', context: { cluster: 'skiff', user: 'skiff', namespace: 'default' } });
    // The token it holds opens the API.
    const res = await fetch(`${cfg.clusters[0].cluster.server}/apis/skiff.dev/v1/namespaces`, { headers: { authorization: `Bearer ${cfg.users[0].user.token}` } });
    expect(res.status).toBe(200);

    const byFlag = cli(['kubeconfig', '--data-dir', s.dataDir]);
    expect(byFlag.code).toBe(0);
    expect(byFlag.stdout).toBe(text);
    expect(cli(['kubeconfig'], { env: { SKIFF_DATA_DIR: s.dataDir } }).stdout).toBe(text);
  });

  it('says where it looked when there is none', () => {
    const empty = mkdtempSync(join(tmpdir(), 'skiff-nokube-'));
    const r = cli(['kubeconfig', '--data-dir', empty]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no kubeconfig at .*kubeconfig: start skiff up/);
  });
});

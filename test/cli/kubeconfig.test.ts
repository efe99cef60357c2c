import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import https from 'node:https';
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
    // The HTTPS side of the API's port: kubectl sends a bearer token over TLS only.
    expect(cfg.clusters[0].cluster.server).toBe(s.api.replace('http:', 'https:'));
    const ca = Buffer.from(cfg.clusters[0].cluster['certificate-authority-data'], 'base64').toString();
    expect(ca).toBe(readFileSync(join(s.dataDir, 'ca', 'ca.crt'), 'utf8'));
    expect(cfg.users[0].user.token).toBe(readFileSync(join(s.dataDir, 'token'), 'utf8').trim());
    expect(cfg.contexts[0]).toEqual({ name: 'skiff', context: { cluster: 'skiff', user: 'skiff', namespace: 'default' } });
    // The token it holds opens the API.
    const res = await httpsGet(`${cfg.clusters[0].cluster.server}/apis/skiff.dev/v1/namespaces`, ca, cfg.users[0].user.token);
    expect(res.status).toBe(200);

    const byFlag = await cli(['kubeconfig', '--data-dir', s.dataDir]);
    expect(byFlag.code).toBe(0);
    expect(byFlag.stdout).toBe(text);
    expect((await cli(['kubeconfig'], { env: { SKIFF_DATA_DIR: s.dataDir } })).stdout).toBe(text);
  });

  it('says where it looked when there is none', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'skiff-nokube-'));
    const r = await cli(['kubeconfig', '--data-dir', empty]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no kubeconfig at .*kubeconfig: start skiff up/);
  });
});

/** httpsGet fetches over TLS trusting only `ca`, as kubectl does with the kubeconfig's CA data. */
function httpsGet(url: string, ca: string, token: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca, headers: { authorization: `Bearer ${token}` }, timeout: 10_000 }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timed out')));
  });
}

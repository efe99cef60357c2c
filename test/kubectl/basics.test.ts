import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { hasKubectl, type Kubectl, kubectlFor } from '../helpers/kubectl.js';
import { type RunningSkiff, startSkiff } from '../helpers/skiff-process.js';

const run = hasKubectl();
let s: RunningSkiff;
let kubectl: Kubectl;

beforeAll(async () => {
  s = await startSkiff();
  kubectl = kubectlFor(s);
});
afterAll(async () => {
  await s?.stop();
});

describe('the API port speaks HTTP and HTTPS', () => {
  it('serves TLS with a certificate for loopback, signed by the CA in the data dir', async () => {
    const ca = readFileSync(join(s.dataDir, 'ca', 'ca.crt'), 'utf8');
    const port = new URL(s.api).port;
    const { status, cert } = await new Promise<{ status: number; cert: X509Certificate }>((resolve, reject) => {
      const req = https.get({ host: '127.0.0.1', port, path: '/version', ca, timeout: 10_000 }, (res) => {
        const raw = (res.socket as import('node:tls').TLSSocket).getPeerX509Certificate()!;
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, cert: raw }));
      });
      req.on('error', reject);
    });
    expect(status).toBe(200);
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(cert.checkHost('localhost')).toBe('localhost');
    expect(cert.checkIssued(new X509Certificate(ca))).toBe(true);
    // Plain HTTP on the same port still answers, for skiff and curl.
    expect((await fetch(`${s.api}/healthz`)).status).toBe(200);
  });

  it("keeps the certificate and the kubeconfig's CA across a restart of the same data dir", async () => {
    const other = await startSkiff();
    const cert = readFileSync(join(other.dataDir, 'ca', 'api.crt'), 'utf8');
    const kubeconfig = readFileSync(join(other.dataDir, 'kubeconfig'), 'utf8');
    await other.stop();
    const again = await startSkiff({ dataDir: other.dataDir });
    await again.stop();
    expect(readFileSync(join(other.dataDir, 'ca', 'api.crt'), 'utf8')).toBe(cert);
    expect(readFileSync(join(other.dataDir, 'kubeconfig'), 'utf8').replace(/:\d+\n/, '')).toBe(kubeconfig.replace(/:\d+\n/, ''));
  });

  it('answers /version in kube-apiserver shape', async () => {
    const v = (await (await fetch(`${s.api}/version`)).json()) as Record<string, string>;
    expect(v).toMatchObject({ major: '1', minor: '32', platform: expect.stringMatching(/^linux\/(amd64|arm64)$/) });
    expect(v.gitVersion).toMatch(/^v1\.32\.\d+\+skiff-\d+\.\d+\.\d+/);
  });
});

describe.runIf(run)('kubectl with nothing but the kubeconfig', () => {
  it('reaches the server and sends its token', async () => {
    const r = await kubectl(['get', 'functions']);
    expect(r.stderr).toBe('No resources found in default namespace.\n');
    expect(r.code).toBe(0);
    const v = await kubectl(['version', '-o', 'json']);
    expect(v.code).toBe(0);
    expect(JSON.parse(v.stdout).serverVersion.gitVersion).toMatch(/^v1\.32\./);
  });

  it('says Unauthorized with a wrong token, as kubectl always does', async () => {
    const r = await kubectl(['get', 'functions', '--token', 'not-the-token']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: You must be logged in to the server \(Unauthorized: the bearer token is not valid/);
  });
});

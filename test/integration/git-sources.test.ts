import { createHmac } from 'node:crypto';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type GitServer, type GitWorkTree, hasGit, startGitServer } from '../helpers/git-server.js';
import { hasKubectl, kubectlFor } from '../helpers/kubectl.js';
import { apiFetch, cli, type RunningSkiff, startSkiff } from '../helpers/skiff-process.js';

const HOOK_SECRET = 'hook-secret-value';

describe.skipIf(!hasGit())('GitRepository through a running Skiff', () => {
  let git: GitServer;
  let repo: GitWorkTree;
  let s: RunningSkiff;
  let first: string;

  const status = async (name: string) => {
    const r = await apiFetch(s, `/apis/skiff.dev/v1/namespaces/default/gitrepositories/${name}`);
    return r.ok ? ((await r.json()) as { status?: { artifact?: { revision: string }; conditions?: Array<{ type: string; status: string; reason: string; message: string }> } }).status : undefined;
  };
  const revision = async (name: string) => (await status(name))?.artifact?.revision;
  const hook = (path: string, body: string, headers: Record<string, string>) => fetch(`${s.api}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
  const sign = (body: string, secret = HOOK_SECRET) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

  beforeAll(async () => {
    git = await startGitServer();
    repo = await git.createRepo('app');
    await repo.write({ 'deploy/app.yaml': 'kind: Function\n' });
    first = await repo.commit('first');
    await repo.push();
    const port = new URL(git.url).port;
    s = await startSkiff({ args: ['--allow-upstream', `127.0.0.1:${port}`] });
    const manifests = `apiVersion: v1
kind: Secret
metadata: { name: hook, namespace: default }
stringData: { token: ${HOOK_SECRET} }
---
apiVersion: skiff.dev/v1
kind: GitRepository
metadata: { name: app, namespace: default }
spec:
  url: ${git.repoUrl('app')}
  ref: { branch: main }
  interval: 1h
  webhook: { secretRef: { name: hook } }
---
apiVersion: skiff.dev/v1
kind: GitRepository
metadata: { name: denied, namespace: default }
spec:
  url: http://127.0.0.2:${port}/app.git
  interval: 1h
`;
    const applied = await cli(['apply', '-f', '-'], { skiff: s, input: manifests });
    expect(applied.code, applied.stderr).toBe(0);
  }, 60_000);

  afterAll(async () => {
    await s?.stop();
    await git?.close();
  });

  it('fetches, and prints URL, REVISION, READY and AGE', async () => {
    await expect.poll(() => revision('app'), { timeout: 20_000 }).toBe(`main@sha1:${first}`);
    const got = await cli(['get', 'gitrepositories'], { skiff: s });
    expect(got.code, got.stderr).toBe(0);
    const [header, ...rows] = got.stdout.trim().split('\n');
    expect(header).toMatch(/^NAME\s+URL\s+REVISION\s+READY\s+AGE$/);
    expect(rows.find((r) => r.startsWith('app '))).toMatch(new RegExp(`^app\\s+${git.repoUrl('app').replace(/\./g, '\\.')}\\s+main@sha1:${first}\\s+True\\s+\\d+s$`));
  });

  it('refuses a URL the operator did not allow', async () => {
    await expect.poll(async () => (await status('denied'))?.conditions?.find((c) => c.type === 'Ready')?.reason, { timeout: 20_000 }).toBe('InvalidSource');
    const ready = (await status('denied'))!.conditions!.find((c) => c.type === 'Ready')!;
    expect(ready.message).toMatch(/--allow-upstream/);
  });

  it('fetches at once on a webhook signed with the secret, and refuses a bad signature', async () => {
    await expect.poll(() => revision('app'), { timeout: 20_000 }).toBe(`main@sha1:${first}`);
    await repo.write({ 'deploy/app.yaml': 'kind: Function\n# two\n' });
    const second = await repo.commit('second');
    await repo.push();
    const body = JSON.stringify({ ref: 'refs/heads/main', after: second });

    const bad = await hook('/hooks/git/default/app', body, { 'x-hub-signature-256': sign(body, 'wrong') });
    expect(bad.status).toBe(401);
    expect((await hook('/hooks/git/default/missing', body, { 'x-hub-signature-256': sign(body) })).status).toBe(401);
    expect((await hook('/hooks/git/default/app', body, {})).status).toBe(401);
    expect((await hook('/hooks/git/default/app', body, { 'x-gitlab-token': 'nope' })).status).toBe(401);
    expect(await revision('app')).toBe(`main@sha1:${first}`);

    const good = await hook('/hooks/git/default/app', body, { 'x-hub-signature-256': sign(body) });
    expect(good.status).toBe(202);
    await expect.poll(() => revision('app'), { timeout: 10_000 }).toBe(`main@sha1:${second}`);

    // GitLab's token header and the API token work too; with the token, a missing object is a 404.
    expect((await hook('/hooks/git/default/app', '{}', { 'x-gitlab-token': HOOK_SECRET })).status).toBe(202);
    expect((await apiFetch(s, '/hooks/git/default/app', { method: 'POST', body: '{}' })).status).toBe(202);
    expect((await apiFetch(s, '/hooks/git/default/missing', { method: 'POST', body: '{}' })).status).toBe(404);
    const tooBig = await hook('/hooks/git/default/app', 'x'.repeat(2 * 1024 * 1024), { 'x-hub-signature-256': 'sha256=00' });
    expect(tooBig.status).toBe(413);
  });

  it.skipIf(!hasKubectl())('is listed by kubectl get gitrepo', async () => {
    await expect.poll(() => revision('app'), { timeout: 20_000 }).toMatch(/^main@sha1:/);
    const kubectl = kubectlFor(s);
    const out = await kubectl(['get', 'gitrepo', 'app']);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout.split('\n')[0]).toMatch(/^NAME\s+URL\s+REVISION\s+READY\s+AGE$/);
    expect(out.stdout).toMatch(/main@sha1:[0-9a-f]{40}\s+True/);
  });
});

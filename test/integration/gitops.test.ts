import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type GitServer, type GitWorkTree, hasGit, startGitServer } from '../helpers/git-server.js';
import { apiFetch, cli, REPO, type RunningSkiff, startSkiff } from '../helpers/skiff-process.js';
import { wagiWat, wat } from '../helpers/wat.js';

/**
 * GitOps end to end: examples/gitops's repository (policies, then apps through a kustomization)
 * pushed to a `git http-backend` on loopback and synced by a running Skiff, then changed commit by
 * commit as a team would: a new module, a hand edit, a commit a constraint refuses, a broken manifest,
 * a force-push back, a deleted file, and Syncs ordered by dependsOn.
 */
const EXAMPLE = join(REPO, 'examples', 'gitops');
const POLL = { timeout: 20_000, interval: 50 };

function exampleFiles(dir = join(EXAMPLE, 'repo')): Record<string, string | Uint8Array> {
  const out: Record<string, string | Uint8Array> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out[relative(dir, p)] = readFileSync(p);
    }
  };
  walk(dir);
  out['apps/hello/hello.wasm'] = readFileSync(join(REPO, 'examples', 'hello', 'hello.wasm'));
  return out;
}

interface Cond {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

describe.skipIf(!hasGit())('GitOps through a running Skiff and a Git server', () => {
  let git: GitServer;
  let repo: GitWorkTree;
  let s: RunningSkiff;
  let goodSha: string;

  const get = async (path: string) => {
    const r = await apiFetch(s, path);
    return r.ok ? ((await r.json()) as { metadata: Record<string, any>; spec: Record<string, any>; status?: Record<string, any> }) : undefined;
  };
  const sync = (name: string) => get(`/apis/skiff.dev/v1/namespaces/default/syncs/${name}`);
  const ready = async (name: string) => ((await sync(name))?.status?.conditions as Cond[] | undefined)?.find((c) => c.type === 'Ready');
  const fn = (name: string) => get(`/apis/skiff.dev/v1/namespaces/gitops-demo/functions/${name}`);
  const hello = async () => {
    const r = await fetch(`${s.gateway}/gitops/hello`);
    return { status: r.status, body: await r.text() };
  };
  const events = async (name: string) => {
    const r = await apiFetch(s, `/api/v1/namespaces/default/events?fieldSelector=involvedObject.name=${name}`);
    return ((await r.json()) as { items: Array<{ reason: string; message: string }> }).items;
  };
  const moduleSaying = async (text: string) => wat(wagiWat(`Content-Type: text/plain\n\n${text}\n`));

  beforeAll(async () => {
    git = await startGitServer();
    repo = await git.createRepo('platform');
    await repo.write(exampleFiles());
    await repo.commit('policies and the hello app');
    await repo.push();
    s = await startSkiff({ args: ['--allow-upstream', `127.0.0.1:${new URL(git.url).port}`] });
    // The example's cluster manifest, pointed at the loopback server.
    const cluster = readFileSync(join(EXAMPLE, 'cluster.yaml'), 'utf8').replace('REPOSITORY', git.repoUrl('platform'));
    const applied = await cli(['apply', '-f', '-'], { skiff: s, input: cluster });
    expect(applied.stderr).toBe('');
    expect(applied.code).toBe(0);
  }, 60_000);

  afterAll(async () => {
    if (s) expect(await s.stop()).toBe(0);
    await git?.close();
  });

  it('applies the policies, then the apps that depend on them, and serves the Function', async () => {
    const out = await cli(['sync', 'apps'], { skiff: s });
    expect(out.stderr).toBe('');
    expect(out.stdout).toMatch(/^sync\/apps applied main@sha1:[0-9a-f]{40} \(3 objects, 0 pruned\)\n$/);
    goodSha = (await repo.head());
    expect((await sync('apps'))?.status?.lastAppliedRevision).toBe(`main@sha1:${goodSha}`);
    expect((await sync('policies'))?.status?.lastAppliedRevision).toBe(`main@sha1:${goodSha}`);
    expect(await hello()).toMatchObject({ status: 200 });
    const f = (await fn('hello'))!;
    expect(f.metadata.labels).toMatchObject({ team: 'demo', 'sync.skiff.dev/name': 'apps', 'sync.skiff.dev/namespace': 'default' });
    expect(f.spec.module).toMatch(/^blob:sha256:/);
    const table = await cli(['get', 'syncs'], { skiff: s });
    expect(table.stdout.split('\n')[0]).toMatch(/^NAME\s+SOURCE\s+REVISION\s+READY\s+DRIFT\s+AGE/);
    expect(table.stdout).toMatch(new RegExp(`^apps\\s+GitRepository/demo\\s+main@sha1:${goodSha}\\s+True\\s+0\\s`, 'm'));
  });

  it('rolls out a changed module after a push and the host\'s webhook', async () => {
    await repo.write({ 'apps/hello/hello.wasm': await moduleSaying('version two') });
    goodSha = await repo.commit('hello: version two');
    await repo.push();
    const hook = await apiFetch(s, '/hooks/git/default/demo', { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
    expect(hook.status).toBe(202);
    await expect.poll(async () => (await hello()).body, POLL).toContain('version two');
    await expect.poll(async () => (await sync('apps'))?.status?.lastAppliedRevision, POLL).toBe(`main@sha1:${goodSha}`);
  });

  it('puts a hand edit back and says what drifted', async () => {
    const r = await apiFetch(s, '/apis/skiff.dev/v1/namespaces/gitops-demo/functions/hello', {
      method: 'PATCH',
      body: JSON.stringify({ spec: { env: { EDITED: 'by hand' } }, metadata: { labels: { team: 'someone-else' } } }),
      headers: { 'content-type': 'application/merge-patch+json' },
    });
    expect(r.status).toBe(200);
    await expect.poll(async () => (await fn('hello'))?.metadata.labels.team, POLL).toBe('demo');
    const drift = (await events('apps')).find((e) => e.reason === 'DriftCorrected');
    expect(drift?.message).toContain('Function gitops-demo/hello');
    expect(drift?.message).toContain('metadata.labels.team');
    // Fields the Sync does not apply are someone else's: server-side apply leaves them.
    expect((await fn('hello'))?.spec.env).toEqual({ EDITED: 'by hand' });
  });

  it('refuses a revision a constraint denies and keeps the previous one serving', async () => {
    // Dropping commonLabels leaves hello without the team label the policies Sync requires.
    const kustomization = readFileSync(join(EXAMPLE, 'repo', 'apps', 'kustomization.yaml'), 'utf8').replace(/commonLabels:\n {2}team: demo\n/, '');
    await repo.write({ 'apps/kustomization.yaml': kustomization, 'apps/hello/hello.wasm': await moduleSaying('version three') });
    const bad = await repo.commit('apps: forget the team label');
    await repo.push();
    const out = await cli(['sync', 'apps'], { skiff: s });
    expect(out.code).toBe(1);
    expect(out.stderr).toContain(`sync/apps failed at main@sha1:${bad}`);
    expect(out.stderr).toContain('Function gitops-demo/hello');
    expect(out.stderr).toContain('has no "team" label');
    expect(out.stderr).toContain(`still applied: main@sha1:${goodSha}`);
    expect((await hello()).body).toContain('version two');
    expect((await sync('apps'))?.status?.lastAppliedRevision).toBe(`main@sha1:${goodSha}`);
    expect((await events('apps')).some((e) => e.reason === 'ApplyFailed')).toBe(true);
  });

  it('refuses a broken manifest naming its file and line, then converges when the branch is forced back', async () => {
    await repo.write({ 'apps/hello/route.yaml': 'apiVersion: skiff.dev/v1\nkind: Route\nmetadata: { name: hello\nspec: {}\n' });
    const broken = await repo.commit('apps: a typo');
    await repo.push();
    const out = await cli(['sync', 'apps'], { skiff: s });
    expect(out.code).toBe(1);
    expect(out.stderr).toContain(`failed at main@sha1:${broken}`);
    expect(out.stderr).toMatch(/apps\/hello\/route\.yaml:\d+/);
    expect((await hello()).body).toContain('version two');

    await repo.reset(goodSha);
    await repo.push({ force: true });
    const back = await cli(['sync', 'apps'], { skiff: s });
    expect(back.stderr).toBe('');
    expect(back.stdout).toContain(`applied main@sha1:${goodSha}`);
    expect((await ready('apps'))?.status).toBe('True');
    expect((await hello()).body).toContain('version two');
  });

  it('prunes an object whose file was deleted', async () => {
    const kustomization = readFileSync(join(EXAMPLE, 'repo', 'apps', 'kustomization.yaml'), 'utf8').replace('  - hello/route.yaml\n', '');
    await repo.write({ 'apps/kustomization.yaml': kustomization, 'apps/hello/route.yaml': null });
    await repo.commit('apps: hello is no longer routed');
    await repo.push();
    const out = await cli(['sync', 'apps'], { skiff: s });
    expect(out.stdout).toMatch(/\(2 objects, 1 pruned\)/);
    expect(await get('/apis/skiff.dev/v1/namespaces/gitops-demo/routes/hello')).toBeUndefined();
    await expect.poll(async () => (await hello()).status, POLL).toBe(404);
    expect((await events('apps')).some((e) => e.reason === 'Pruned')).toBe(true);
  });

  it('holds a Sync until the Sync it depends on is Ready', async () => {
    const svc = (name: string, port: number) => `apiVersion: skiff.dev/v1\nkind: Service\nmetadata: { name: ${name}, namespace: default }\nspec:\n  endpoints: [{ address: 192.0.2.10, port: ${port} }]\n`;
    await repo.write({ 'extra/a/svc.yaml': svc('extra-a', 9101), 'extra/b/svc.yaml': svc('extra-b', 9102) });
    await repo.commit('two more folders');
    await repo.push();
    const syncYaml = (name: string, path: string, dependsOn?: string) => `apiVersion: skiff.dev/v1
kind: Sync
metadata: { name: ${name}, namespace: default }
spec:
  sourceRef: { kind: GitRepository, name: demo }
  path: ${path}
  interval: 1m
${dependsOn ? `  dependsOn: [{ name: ${dependsOn} }]\n` : ''}`;
    expect((await cli(['apply', '-f', '-'], { skiff: s, input: syncYaml('later', './extra/b', 'first') })).code).toBe(0);
    await expect.poll(async () => (await ready('later'))?.reason, POLL).toBe('DependencyNotReady');
    expect(await get('/apis/skiff.dev/v1/namespaces/default/services/extra-b')).toBeUndefined();
    expect((await cli(['apply', '-f', '-'], { skiff: s, input: syncYaml('first', './extra/a') })).code).toBe(0);
    await expect.poll(async () => (await ready('later'))?.status, POLL).toBe('True');
    expect(await get('/apis/skiff.dev/v1/namespaces/default/services/extra-b')).toBeDefined();
    expect(await get('/apis/skiff.dev/v1/namespaces/default/services/extra-a')).toBeDefined();
  });
});

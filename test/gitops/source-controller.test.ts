import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { builtinKinds } from '../../src/api/kinds/index.js';
import type { ResourceObject } from '../../src/api/kinds/types.js';
import { ResourceService } from '../../src/api/resources.js';
import { GitRepositoryController } from '../../src/gitops/source/controller.js';
import { MemoryStore } from '../../src/store/index.js';
import { type GitServer, type GitWorkTree, hasGit, type SshSigningKey, sshSigningKey, startGitServer } from '../helpers/git-server.js';
import { hasBinary } from '../helpers/system-deps.js';

const logger = pino({ level: 'silent' });
const dec = (b: Uint8Array | undefined) => new TextDecoder().decode(b);

describe.skipIf(!hasGit())('GitRepositoryController against a git http server', () => {
  let server: GitServer;
  let authed: GitServer;
  let dataDir: string;
  let resources: ResourceService;
  let ctl: GitRepositoryController;
  let n = 0;

  beforeAll(async () => {
    [server, authed] = await Promise.all([startGitServer(), startGitServer({ auth: { username: 'git', password: 's3cret-pw' } })]);
  });
  afterAll(async () => {
    await server?.close();
    await authed?.close();
  });
  afterEach(async () => {
    await ctl?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  async function start(now?: () => number): Promise<void> {
    dataDir = mkdtempSync(join(tmpdir(), 'skiff-gitops-'));
    resources = new ResourceService(new MemoryStore(), builtinKinds());
    ctl = new GitRepositoryController({ resources, logger, dir: join(dataDir, 'gitops'), now });
    await ctl.start();
  }

  async function repoWith(files: Record<string, string>): Promise<{ name: string; repo: GitWorkTree; sha: string }> {
    const name = `r${++n}`;
    const repo = await server.createRepo(name);
    await repo.write(files);
    const sha = await repo.commit('first');
    await repo.push();
    return { name, repo, sha };
  }

  async function apply(name: string, spec: Record<string, unknown>): Promise<void> {
    await resources.create(resources.kind('GitRepository'), 'default', { apiVersion: 'skiff.dev/v1', kind: 'GitRepository', metadata: { name, namespace: 'default' }, spec: { interval: '1h', ...spec } });
  }

  const get = (name: string) => resources.get(resources.kind('GitRepository'), 'default', name);
  const ready = (o: ResourceObject) => (o.status?.conditions ?? []).find((c: { type: string }) => c.type === 'Ready');
  async function revisionOf(name: string): Promise<string | undefined> {
    return (await get(name)).status?.artifact?.revision;
  }

  it('stores a branch as an artifact, and a new commit after refresh', async () => {
    await start();
    const { name, repo, sha } = await repoWith({ 'deploy/app.yaml': 'v: 1\n', 'README.md': '# x\n' });
    await apply('app', { url: server.repoUrl(name), ref: { branch: 'main' }, ignore: '*.md' });
    await expect.poll(() => revisionOf('app'), { timeout: 15_000 }).toBe(`main@sha1:${sha}`);
    const first = await get('app');
    expect(ready(first)).toMatchObject({ status: 'True', reason: 'Succeeded' });
    expect(first.status.observedGeneration).toBe(first.metadata.generation);
    const files = await ctl.artifacts.read(first.status.artifact.digest);
    expect([...files.keys()]).toEqual(['deploy/app.yaml']);
    expect(dec(files.get('deploy/app.yaml'))).toBe('v: 1\n');

    await repo.write({ 'deploy/app.yaml': 'v: 2\n' });
    const second = await repo.commit('second');
    await repo.push();
    expect(ctl.refresh('default', 'app')).toBe(true);
    await expect.poll(() => revisionOf('app'), { timeout: 15_000 }).toBe(`main@sha1:${second}`);
    const after = await get('app');
    expect(after.status.artifact.digest).not.toBe(first.status.artifact.digest);
    expect(dec((await ctl.artifacts.read(after.status.artifact.digest)).get('deploy/app.yaml'))).toBe('v: 2\n');
    const events = await resources.list(resources.kind('Event'), 'default');
    expect(events.items.filter((e) => e.reason === 'ArtifactUpdated').length).toBeGreaterThanOrEqual(2);
    expect(ctl.refresh('default', 'nope')).toBe(false);

    // Force-push back to the first commit: the source converges to it.
    await repo.reset(sha);
    await repo.push({ force: true });
    ctl.refresh('default', 'app');
    await expect.poll(() => revisionOf('app'), { timeout: 15_000 }).toBe(`main@sha1:${sha}`);
    expect((await get('app')).status.artifact.digest).toBe(first.status.artifact.digest);

    // Deleting the object removes its mirror.
    const mirror = ctl.mirrors.mirrorDir('default/app');
    expect(existsSync(mirror)).toBe(true);
    await resources.delete(resources.kind('GitRepository'), 'default', 'app');
    await expect.poll(() => existsSync(mirror), { timeout: 10_000 }).toBe(false);
  });

  it('resolves a tag, the highest tag in a semver range, and a pinned commit', async () => {
    await start();
    const { name, repo, sha: c1 } = await repoWith({ 'a.yaml': '1' });
    await repo.tag('v1.2.0');
    await repo.write({ 'a.yaml': '2' });
    const c2 = await repo.commit('two');
    await repo.push();
    await repo.tag('v1.10.0', { message: 'annotated' });
    await repo.write({ 'a.yaml': '3' });
    await repo.commit('three');
    await repo.push();
    await repo.tag('v2.0.0');
    await apply('tag', { url: server.repoUrl(name), ref: { tag: 'v1.2.0' } });
    await apply('range', { url: server.repoUrl(name), ref: { semver: '>=1.0.0 <2.0.0' } });
    await apply('pin', { url: server.repoUrl(name), ref: { commit: c1 } });
    await expect.poll(() => revisionOf('tag'), { timeout: 15_000 }).toBe(`v1.2.0@sha1:${c1}`);
    await expect.poll(() => revisionOf('range'), { timeout: 15_000 }).toBe(`v1.10.0@sha1:${c2}`);
    await expect.poll(() => revisionOf('pin'), { timeout: 15_000 }).toBe(`sha1:${c1}`);
    expect(dec((await ctl.artifacts.read((await get('range')).status.artifact.digest)).get('a.yaml'))).toBe('2');
  });

  it('leaves out symbolic links and says so', async () => {
    await start();
    const name = `r${++n}`;
    const repo = await server.createRepo(name);
    await repo.write({ 'a.yaml': 'a' });
    await repo.symlink('leak', '/etc/passwd');
    const sha = await repo.commit('with a link');
    await repo.push();
    await apply('links', { url: server.repoUrl(name) });
    await expect.poll(() => revisionOf('links'), { timeout: 15_000 }).toBe(`main@sha1:${sha}`);
    const o = await get('links');
    expect(ready(o).message).toMatch(/left out 1 symbolic link\(s\): leak/);
    expect([...(await ctl.artifacts.read(o.status.artifact.digest)).keys()]).toEqual(['a.yaml']);
  });

  it('fetches with basic auth from a Secret, and says why without one', async () => {
    await start();
    const repo = await authed.createRepo('private');
    await repo.write({ 'a.yaml': 'a' });
    const sha = await repo.commit('private');
    await repo.push();
    await apply('noauth', { url: authed.repoUrl('private'), timeout: '10s' });
    await expect.poll(async () => ready(await get('noauth'))?.status, { timeout: 15_000 }).toBe('False');
    const failed = ready(await get('noauth'));
    expect(failed.reason).toBe('AuthenticationFailed');
    expect(failed.message).toMatch(/no artifact has been stored yet/);

    await resources.create(resources.kind('Secret'), 'default', { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'git-auth', namespace: 'default' }, stringData: { username: 'git', password: 's3cret-pw' } });
    await apply('auth', { url: authed.repoUrl('private'), secretRef: { name: 'git-auth' } });
    await expect.poll(() => revisionOf('auth'), { timeout: 15_000 }).toBe(`main@sha1:${sha}`);
    const events = await resources.list(resources.kind('Event'), 'default');
    expect(JSON.stringify(events.items)).not.toContain('s3cret-pw');
  });

  it('keeps the last artifact when the URL stops answering', async () => {
    await start();
    const { name, sha } = await repoWith({ 'a.yaml': 'a' });
    await apply('flaky', { url: server.repoUrl(name), timeout: '5s' });
    await expect.poll(() => revisionOf('flaky'), { timeout: 15_000 }).toBe(`main@sha1:${sha}`);
    const def = resources.kind('GitRepository');
    const obj = await get('flaky');
    await resources.update(def, 'default', 'flaky', { ...obj, spec: { ...obj.spec, url: 'http://127.0.0.1:9/gone.git' } });
    await expect.poll(async () => ready(await get('flaky'))?.status, { timeout: 15_000 }).toBe('False');
    const after = await get('flaky');
    expect(ready(after)).toMatchObject({ reason: 'FetchFailed' });
    expect(ready(after).message).toMatch(new RegExp(`^fetching http://127\\.0\\.0\\.1:9/gone\\.git failed: .*; the artifact of revision main@sha1:${sha} is kept$`));
    expect(after.status.artifact.revision).toBe(`main@sha1:${sha}`);
    const events = await resources.list(resources.kind('Event'), 'default');
    expect(events.items.some((e) => e.reason === 'FetchFailed')).toBe(true);
  });

  it('fetches again when a short interval comes due, without being asked', async () => {
    await start();
    const { name, repo, sha } = await repoWith({ 'a.yaml': 'a' });
    await apply('polled', { url: server.repoUrl(name), interval: '2s' });
    await expect.poll(() => revisionOf('polled'), { timeout: 15_000 }).toBe(`main@sha1:${sha}`);
    const next = await repo.commit('next');
    await repo.push();
    await expect.poll(() => revisionOf('polled'), { timeout: 15_000 }).toBe(`main@sha1:${next}`);
  });

  it('measures the interval with the injected clock', async () => {
    let clock = 1_000_000;
    await start(() => clock);
    const { name, repo, sha } = await repoWith({ 'a.yaml': 'a' });
    await apply('clock', { url: server.repoUrl(name), interval: '10m' });
    await expect.poll(() => revisionOf('clock'), { timeout: 15_000 }).toBe(`main@sha1:${sha}`);
    const next = await repo.commit('next');
    await repo.push();
    // Woken before the interval is due (a resync): nothing is fetched.
    ctl.controller.enqueue('default/clock');
    await ctl.controller.idle();
    expect(await revisionOf('clock')).toBe(`main@sha1:${sha}`);
    clock += 11 * 60_000;
    ctl.controller.enqueue('default/clock');
    await expect.poll(() => revisionOf('clock'), { timeout: 15_000 }).toBe(`main@sha1:${next}`);
  });

  it('reacts to a new reconcile-at annotation and honours suspend', async () => {
    await start();
    const { name, repo, sha } = await repoWith({ 'a.yaml': 'a' });
    await apply('ann', { url: server.repoUrl(name) });
    await expect.poll(() => revisionOf('ann'), { timeout: 15_000 }).toBe(`main@sha1:${sha}`);
    const second = await repo.commit('second');
    await repo.push();
    const def = resources.kind('GitRepository');
    const obj = await get('ann');
    await resources.update(def, 'default', 'ann', { ...obj, metadata: { ...obj.metadata, annotations: { 'skiff.dev/reconcile-at': new Date().toISOString() } } });
    await expect.poll(() => revisionOf('ann'), { timeout: 15_000 }).toBe(`main@sha1:${second}`);

    const cur = await get('ann');
    await resources.update(def, 'default', 'ann', { ...cur, spec: { ...cur.spec, suspend: true } });
    await expect.poll(() => ctl.get('default', 'ann')?.spec.suspend, { timeout: 5_000 }).toBe(true);
    await repo.commit('third');
    await repo.push();
    ctl.refresh('default', 'ann');
    await ctl.controller.idle();
    expect(await revisionOf('ann')).toBe(`main@sha1:${second}`);
  });

  describe.skipIf(!hasBinary('ssh-keygen'))('with spec.verify', () => {
    let key: SshSigningKey;
    let keyDir: string;
    beforeAll(async () => {
      keyDir = mkdtempSync(join(tmpdir(), 'skiff-keys-'));
      key = await sshSigningKey(keyDir);
    });
    afterAll(() => rmSync(keyDir, { recursive: true, force: true }));

    it('accepts a signed head, refuses an unsigned one and keeps the verified artifact', async () => {
      await start();
      const name = `r${++n}`;
      const repo = await server.createRepo(name);
      await repo.write({ 'a.yaml': 'a' });
      const signed = await repo.commit('signed', { sign: key });
      await repo.push();
      await resources.create(resources.kind('Secret'), 'default', { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'keys', namespace: 'default' }, stringData: { 'dev.pub': key.publicKey } });
      await apply('verified', { url: server.repoUrl(name), verify: { mode: 'HEAD', secretRef: { name: 'keys' } } });
      await expect.poll(() => revisionOf('verified'), { timeout: 15_000 }).toBe(`main@sha1:${signed}`);
      const ok = await get('verified');
      expect(ok.status.conditions.find((c: { type: string }) => c.type === 'SourceVerified')).toMatchObject({ status: 'True', reason: 'Succeeded' });

      await repo.write({ 'a.yaml': 'b' });
      const unsigned = await repo.commit('unsigned');
      await repo.push();
      ctl.refresh('default', 'verified');
      await expect.poll(async () => ready(await get('verified'))?.reason, { timeout: 15_000 }).toBe('VerificationFailed');
      const bad = await get('verified');
      expect(bad.status.conditions.find((c: { type: string }) => c.type === 'SourceVerified')).toMatchObject({ status: 'False', reason: 'Unsigned', message: `commit ${unsigned} is not signed` });
      expect(bad.status.artifact.revision).toBe(`main@sha1:${signed}`);
      const events = await resources.list(resources.kind('Event'), 'default');
      expect(events.items.some((e) => e.reason === 'VerificationFailed')).toBe(true);
    });
  });
});

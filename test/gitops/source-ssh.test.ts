import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { builtinKinds } from '../../src/api/kinds/index.js';
import type { ResourceObject } from '../../src/api/kinds/types.js';
import { ResourceService } from '../../src/api/resources.js';
import { GitRepositoryController } from '../../src/gitops/source/controller.js';
import { MemoryStore } from '../../src/store/index.js';
import { type GitServer, type GitWorkTree, hasGit, startGitServer } from '../helpers/git-server.js';
import { hasSshd, type SshGitServer, startSshGitServer } from '../helpers/ssh-git-server.js';

const execFileAsync = promisify(execFile);
const logger = pino({ level: 'silent' });
const dec = (b: Uint8Array | undefined) => new TextDecoder().decode(b);
/** The base64 body of an OpenSSH private key: what must never show up in a message. */
const keyBody = (pem: string) => pem.split('\n').filter((l) => l && !l.startsWith('-----')).join('');

describe.skipIf(!(hasGit() && hasSshd()))('GitRepositoryController against a real ssh server', () => {
  let http: GitServer;
  let ssh: SshGitServer;
  let dataDir: string;
  let resources: ResourceService;
  let ctl: GitRepositoryController;
  let n = 0;

  beforeAll(async () => {
    http = await startGitServer();
    ssh = await startSshGitServer({ root: http.root });
  }, 30_000);
  afterAll(async () => {
    await ssh?.close();
    await http?.close();
  });
  afterEach(async () => {
    await ctl?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  async function start(): Promise<void> {
    // A space in the data directory: ssh splits option values at whitespace on its own.
    dataDir = mkdtempSync(join(tmpdir(), 'skiff gitops ssh-'));
    resources = new ResourceService(new MemoryStore(), builtinKinds());
    ctl = new GitRepositoryController({ resources, logger, dir: join(dataDir, 'gitops') });
    await ctl.start();
  }

  async function repoWith(files: Record<string, string>): Promise<{ name: string; repo: GitWorkTree; sha: string }> {
    const name = `s${++n}`;
    const repo = await http.createRepo(name);
    await repo.write(files);
    const sha = await repo.commit('first');
    await repo.push();
    return { name, repo, sha };
  }

  const secretDef = () => resources.kind('Secret');
  async function secret(name: string, data: Record<string, string>): Promise<void> {
    const body = { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: 'default' }, stringData: data };
    const existing = await resources.get(secretDef(), 'default', name).catch(() => undefined);
    if (existing) await resources.update(secretDef(), 'default', name, { ...body, metadata: existing.metadata });
    else await resources.create(secretDef(), 'default', body);
  }
  async function apply(name: string, spec: Record<string, unknown>): Promise<void> {
    await resources.create(resources.kind('GitRepository'), 'default', { apiVersion: 'skiff.dev/v1', kind: 'GitRepository', metadata: { name, namespace: 'default' }, spec: { interval: '1h', timeout: '20s', ...spec } });
  }
  const get = (name: string) => resources.get(resources.kind('GitRepository'), 'default', name);
  const ready = (o: ResourceObject) => (o.status?.conditions ?? []).find((c: { type: string }) => c.type === 'Ready');
  const revisionOf = async (name: string): Promise<string | undefined> => (await get(name)).status?.artifact?.revision;
  /** The short-lived ssh directories (key file, known_hosts) the fetches made and should have removed. */
  const sshLeftovers = () => {
    const tmp = join(dataDir, 'gitops', 'tmp');
    return existsSync(tmp) ? readdirSync(tmp) : [];
  };
  const events = async () => (await resources.list(resources.kind('Event'), 'default')).items;

  it('fetches a branch over ssh with a key and known_hosts, and a new commit after refresh', async () => {
    await start();
    const { name, repo, sha } = await repoWith({ 'deploy/app.yaml': 'v: 1\n' });
    await secret('ssh-auth', { identity: ssh.identity, known_hosts: ssh.knownHosts });
    const url = ssh.repoUrl(name);
    expect(url).toMatch(/^ssh:\/\/[^@]+@127\.0\.0\.1:\d+\//);
    await apply('app', { url, ref: { branch: 'main' }, secretRef: { name: 'ssh-auth' } });
    await expect.poll(() => revisionOf('app'), { timeout: 20_000 }).toBe(`main@sha1:${sha}`);
    const first = await get('app');
    expect(ready(first)).toMatchObject({ status: 'True', reason: 'Succeeded' });
    expect(dec((await ctl.artifacts.read(first.status.artifact.digest)).get('deploy/app.yaml'))).toBe('v: 1\n');
    expect(sshLeftovers()).toEqual([]);

    await repo.write({ 'deploy/app.yaml': 'v: 2\n' });
    const second = await repo.commit('second');
    await repo.push();
    expect(ctl.refresh('default', 'app')).toBe(true);
    await expect.poll(() => revisionOf('app'), { timeout: 20_000 }).toBe(`main@sha1:${second}`);
    const after = await get('app');
    expect(after.status.artifact.digest).not.toBe(first.status.artifact.digest);
    expect(dec((await ctl.artifacts.read(after.status.artifact.digest)).get('deploy/app.yaml'))).toBe('v: 2\n');
    expect(sshLeftovers()).toEqual([]);
    // The same repository over http gives the same artifact: ssh changes the transport only.
    await apply('same', { url: http.repoUrl(name) });
    await expect.poll(async () => (await get('same')).status?.artifact?.digest, { timeout: 20_000 }).toBe(after.status.artifact.digest);
  });

  it('resolves a semver range and a pinned commit over ssh, with a key pasted with CRLF line ends', async () => {
    await start();
    const { name, repo, sha: c1 } = await repoWith({ 'a.yaml': '1' });
    await repo.tag('v1.0.0');
    await repo.write({ 'a.yaml': '2' });
    const c2 = await repo.commit('two');
    await repo.push();
    await repo.tag('v1.1.0');
    await secret('ssh-auth', { identity: ssh.identity.replace(/\n/g, '\r\n'), known_hosts: ssh.knownHosts });
    await apply('range', { url: ssh.repoUrl(name), ref: { semver: '^1.0.0' }, secretRef: { name: 'ssh-auth' } });
    await apply('pin', { url: ssh.repoUrl(name), ref: { commit: c1 }, secretRef: { name: 'ssh-auth' } });
    await expect.poll(() => revisionOf('range'), { timeout: 20_000 }).toBe(`v1.1.0@sha1:${c2}`);
    await expect.poll(() => revisionOf('pin'), { timeout: 20_000 }).toBe(`sha1:${c1}`);
  });

  it('refuses a server whose host key is not the one in known_hosts, keeping the artifact', async () => {
    await start();
    const { name, repo, sha } = await repoWith({ 'a.yaml': 'a' });
    await secret('ssh-auth', { identity: ssh.identity, known_hosts: ssh.knownHosts });
    await apply('hostkey', { url: ssh.repoUrl(name), secretRef: { name: 'ssh-auth' } });
    await expect.poll(() => revisionOf('hostkey'), { timeout: 20_000 }).toBe(`main@sha1:${sha}`);
    const before = (await get('hostkey')).status.artifact;

    await repo.write({ 'a.yaml': 'b' });
    await repo.commit('not to be fetched');
    await repo.push();
    await secret('ssh-auth', { identity: ssh.identity, known_hosts: ssh.wrongKnownHosts });
    ctl.refresh('default', 'hostkey');
    await expect.poll(async () => ready(await get('hostkey'))?.status, { timeout: 20_000 }).toBe('False');
    const o = await get('hostkey');
    expect(ready(o).reason).toBe('HostKeyVerificationFailed');
    expect(ready(o).message).toMatch(/host key/i);
    expect(ready(o).message).toContain(`[127.0.0.1]:${ssh.port}`);
    expect(ready(o).message).toContain(`the artifact of revision main@sha1:${sha} is kept`);
    expect(o.status.artifact).toEqual(before);
    expect(sshLeftovers()).toEqual([]);

    // Without any known_hosts entry the host is not trusted either: there is no trust on first use.
    await secret('ssh-auth', { identity: ssh.identity });
    await apply('nohosts', { url: ssh.repoUrl(name), secretRef: { name: 'ssh-auth' } });
    await expect.poll(async () => ready(await get('nohosts'))?.reason, { timeout: 20_000 }).toBe('HostKeyVerificationFailed');
    expect((await get('nohosts')).status.artifact).toBeUndefined();
  });

  it('reports a key the server does not accept as AuthenticationFailed, naming no key material', async () => {
    await start();
    const { name } = await repoWith({ 'a.yaml': 'a' });
    await secret('wrong-key', { identity: ssh.unauthorizedIdentity, known_hosts: ssh.knownHosts });
    await apply('wrongkey', { url: ssh.repoUrl(name), secretRef: { name: 'wrong-key' } });
    await expect.poll(async () => ready(await get('wrongkey'))?.status, { timeout: 20_000 }).toBe('False');
    const o = await get('wrongkey');
    expect(ready(o).reason).toBe('AuthenticationFailed');
    expect(ready(o).message).toMatch(/Permission denied \(publickey\)/);
    expect(ready(o).message).toMatch(/no artifact has been stored yet/);
    const shown = JSON.stringify([o.status, await events()]);
    for (const k of [ssh.unauthorizedIdentity, ssh.identity]) expect(shown).not.toContain(keyBody(k).slice(0, 40));
    expect(shown).not.toContain('PRIVATE KEY');
    // Nor the path of the temporary key file.
    expect(shown).not.toContain(join(dataDir, 'gitops', 'tmp'));
    expect(sshLeftovers()).toEqual([]);
    expect(o.status.artifact).toBeUndefined();
  });

  it('says when the identity cannot be used: unreadable, or protected by a passphrase', async () => {
    await start();
    const { name } = await repoWith({ 'a.yaml': 'a' });
    const keyDir = mkdtempSync(join(tmpdir(), 'skiff-sshkey-'));
    try {
      await execFileAsync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'a passphrase', '-C', 'locked@skiff.invalid', '-f', join(keyDir, 'locked')]);
      await secret('locked', { identity: readFileSync(join(keyDir, 'locked'), 'utf8'), known_hosts: ssh.knownHosts });
    } finally {
      rmSync(keyDir, { recursive: true, force: true });
    }
    await secret('garbled', { identity: '-----BEGIN OPENSSH PRIVATE KEY-----\nbm90IGEga2V5\n-----END OPENSSH PRIVATE KEY-----\n', known_hosts: ssh.knownHosts });
    await apply('locked', { url: ssh.repoUrl(name), secretRef: { name: 'locked' } });
    await apply('garbled', { url: ssh.repoUrl(name), secretRef: { name: 'garbled' } });
    await expect.poll(async () => ready(await get('locked'))?.reason, { timeout: 20_000 }).toBe('AuthenticationFailed');
    await expect.poll(async () => ready(await get('garbled'))?.reason, { timeout: 20_000 }).toBe('AuthenticationFailed');
    expect(ready(await get('locked')).message).toMatch(/^fetching ssh:\/\/127\.0\.0\.1:\d+\/\S+ was not tried: the identity in spec\.secretRef is protected by a passphrase/);
    const garbled = ready(await get('garbled')).message;
    expect(garbled).toMatch(/ssh could not load the identity in spec\.secretRef \(.+\); it must be an OpenSSH or PEM private key without a passphrase/);
    expect(garbled).not.toContain(dataDir);
    expect(sshLeftovers()).toEqual([]);
  });
});

import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { GitMirrors, gitUrlGuard, identityIsEncrypted, redactUrl } from '../../src/gitops/source/git.js';
import { signedWith } from '../../src/gitops/source/webhook.js';
import { HostDirs, UpstreamGuard } from '../../src/security/index.js';
import { type GitServer, hasGit, startGitServer } from '../helpers/git-server.js';
import { hasBinary } from '../helpers/system-deps.js';

describe.skipIf(!hasGit())('GitMirrors', () => {
  let server: GitServer;
  let strict: GitServer;
  let authed: GitServer;
  let dir: string;
  let mirrors: GitMirrors;
  let stall: http.Server;
  const sockets = new Set<Socket>();

  beforeAll(async () => {
    [server, strict, authed] = await Promise.all([startGitServer(), startGitServer({ allowAnySha: false }), startGitServer({ auth: { username: 'u', password: 'pa55-word' } })]);
    dir = mkdtempSync(join(tmpdir(), 'skiff-mirrors-'));
    mirrors = new GitMirrors({ dir });
    stall = http.createServer(() => undefined);
    stall.on('connection', (s) => sockets.add(s));
    await new Promise<void>((r) => stall.listen(0, '127.0.0.1', r));
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => stall?.close(r));
    await Promise.all([server?.close(), strict?.close(), authed?.close()]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('fetches a pinned commit from a server that only serves advertised refs, and refuses an unknown one', async () => {
    const repo = await strict.createRepo('pin');
    await repo.write({ a: '1' });
    const c1 = await repo.commit('one');
    await repo.write({ a: '2' });
    await repo.commit('two');
    await repo.push();
    await expect(mirrors.fetch('default/pin', { url: strict.repoUrl('pin'), ref: { commit: c1 }, timeoutMs: 20_000 })).resolves.toEqual({ commit: c1, revision: `sha1:${c1}` });
    await expect(mirrors.fetch('default/pin2', { url: strict.repoUrl('pin'), ref: { commit: 'f'.repeat(40) }, timeoutMs: 20_000 })).rejects.toMatchObject({ reason: 'RefNotFound' });
  });

  it('fetches a local path (development) with a shallow, reused mirror', async () => {
    const repo = await server.createRepo('local');
    await repo.write({ a: '1' });
    await repo.commit('one');
    await repo.push();
    const one = await mirrors.fetch('default/local', { url: repo.bare, ref: { branch: 'main' }, timeoutMs: 20_000 });
    await repo.write({ a: '2' });
    const c2 = await repo.commit('two');
    await repo.push();
    const two = await mirrors.fetch('default/local', { url: `file://${repo.bare}`, ref: { branch: 'main' }, timeoutMs: 20_000 });
    expect(two).toEqual({ commit: c2, revision: `main@sha1:${c2}` });
    expect(two.commit).not.toBe(one.commit);
    expect((await mirrors.listTree('default/local', c2)).map((e) => e.path)).toEqual(['a']);
  });

  it('stops a fetch at the timeout', async () => {
    const url = `http://127.0.0.1:${(stall.address() as AddressInfo).port}/stuck.git`;
    const t0 = Date.now();
    await expect(mirrors.fetch('default/stuck', { url, ref: { branch: 'main' }, timeoutMs: 1500 })).rejects.toMatchObject({ reason: 'TimedOut', message: `fetching ${url} took longer than spec.timeout (1.5s); git was stopped` });
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  it('never shows credentials in what it reports', async () => {
    await authed.createRepo('private');
    const err = await mirrors.fetch('default/private', { url: authed.repoUrl('private'), ref: { branch: 'main' }, timeoutMs: 20_000, credentials: { username: 'u', password: 'wrong-secret' } }).catch((e: Error) => e);
    expect(err).toMatchObject({ reason: 'AuthenticationFailed' });
    expect((err as Error).message).not.toContain('wrong-secret');
    expect((err as Error).message).not.toContain(Buffer.from('u:wrong-secret').toString('base64'));
    const bearer = await mirrors.fetch('default/private', { url: authed.repoUrl('private'), ref: { branch: 'main' }, timeoutMs: 20_000, credentials: { bearerToken: 'tok-123' } }).catch((e: Error) => e);
    expect((bearer as Error).message).not.toContain('tok-123');
  });

  it('refuses the ext protocol even if a URL slipped past validation', async () => {
    const err = await mirrors.fetch('default/ext', { url: 'ext::sh -c echo', ref: { branch: 'main' }, timeoutMs: 5000 }).catch((e: Error) => e);
    expect(err).toMatchObject({ reason: 'FetchFailed' });
    expect((err as Error).message).toMatch(/transport 'ext' not allowed/);
  });
});

describe('Git URL helpers', () => {
  it('redacts user information', () => {
    expect(redactUrl('https://user:pw@host/x.git')).toBe('https://host/x.git');
    expect(redactUrl('ssh://git@host/x.git')).toBe('ssh://host/x.git');
    expect(redactUrl('/srv/x')).toBe('/srv/x');
  });

  it('holds URLs to the operator grants', async () => {
    const guard = gitUrlGuard(UpstreamGuard.from(['127.0.0.1:8080']), HostDirs.none().with([tmpdir()]));
    expect(await guard('http://127.0.0.1:8080/a.git')).toBeUndefined();
    expect(await guard('http://127.0.0.1:8081/a.git')).toMatch(/^spec\.url: .*--allow-upstream/);
    expect(await guard('git@127.0.0.1:a.git')).toMatch(/--allow-upstream 127\.0\.0\.1:22/);
    expect(await guard(join(tmpdir(), 'repo'))).toBeUndefined();
    expect(await guard('/etc/repo')).toMatch(/--allow-host-dir/);
    expect(await guard('file:///etc/repo')).toMatch(/--allow-host-dir/);
  });
});

describe('webhook signatures', () => {
  it('accepts GitHub HMAC and the GitLab token, nothing else', async () => {
    const { createHmac } = await import('node:crypto');
    const body = Buffer.from('{"ref":"refs/heads/main"}');
    const hmac = `sha256=${createHmac('sha256', 'k').update(body).digest('hex')}`;
    expect(signedWith('k', { 'x-hub-signature-256': hmac }, body)).toBe(true);
    expect(signedWith('k', { 'x-hub-signature-256': hmac.toUpperCase().replace('SHA256', 'sha256') }, body)).toBe(true);
    expect(signedWith('k', { 'x-hub-signature-256': hmac }, Buffer.from('{"ref":"refs/heads/evil"}'))).toBe(false);
    expect(signedWith('other', { 'x-hub-signature-256': hmac }, body)).toBe(false);
    expect(signedWith('k', { 'x-gitlab-token': 'k' }, body)).toBe(true);
    expect(signedWith('k', { 'x-gitlab-token': 'k2' }, body)).toBe(false);
    expect(signedWith('k', {}, body)).toBe(false);
  });
});

describe('identityIsEncrypted', () => {
  const openssh = (cipher: string) => {
    const name = Buffer.from(cipher);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(name.length);
    const body = Buffer.concat([Buffer.from('openssh-key-v1\0', 'latin1'), len, name, Buffer.alloc(32)]).toString('base64');
    return `-----BEGIN OPENSSH PRIVATE KEY-----\n${body.replace(/(.{70})/g, '$1\n')}\n-----END OPENSSH PRIVATE KEY-----\n`;
  };
  it('tells keys that need a passphrase from keys that do not', () => {
    expect(identityIsEncrypted(openssh('none'))).toBe(false);
    expect(identityIsEncrypted(openssh('aes256-ctr'))).toBe(true);
    expect(identityIsEncrypted(openssh('none').replace(/\n/g, '\r\n'))).toBe(false);
    expect(identityIsEncrypted('-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n')).toBe(true);
    expect(identityIsEncrypted('-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n')).toBe(true);
    expect(identityIsEncrypted('-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n')).toBe(false);
    expect(identityIsEncrypted('not a key')).toBe(false);
  });
});

describe.skipIf(!hasGit())('ssh transport settings', () => {
  it('hands git a strict ssh command with a 0600 key and known_hosts, removed afterwards', async () => {
    const base = mkdtempSync(join(tmpdir(), 'skiff-fakessh-'));
    const record = join(base, 'record');
    const bin = join(base, 'bin');
    mkdirSync(bin);
    // A stand-in for ssh that records how git called it, then refuses the connection.
    writeFileSync(
      join(bin, 'ssh'),
      `#!/bin/sh\nprintf '%s\\n' "$@" > ${record}\nprev=\nfor a in "$@"; do\n  case "$a" in UserKnownHostsFile=*) cp "\${a#UserKnownHostsFile=}" ${record}.kh;; esac\n  if [ "$prev" = "-i" ]; then stat -c %a "$a" > ${record}.mode; cp "$a" ${record}.id; fi\n  prev=$a\ndone\necho "Permission denied (publickey)." >&2\nexit 255\n`,
      { mode: 0o755 },
    );
    const path = process.env.PATH;
    const realSsh = hasBinary('ssh') ? execFileSync('sh', ['-c', 'command -v ssh'], { encoding: 'utf8' }).trim() : undefined;
    process.env.PATH = `${bin}:${path}`;
    try {
      const dir = join(base, 'gitops');
      const mirrors = new GitMirrors({ dir });
      const err = await mirrors.fetch('default/ssh', { url: 'ssh://git@example.invalid/team/app.git', ref: { branch: 'main' }, timeoutMs: 10_000, credentials: { identity: 'PRIVATE-KEY-DATA', knownHosts: 'example.invalid ssh-ed25519 AAAA' } }).catch((e: Error) => e);
      expect(err).toMatchObject({ reason: 'AuthenticationFailed' });
      expect((err as Error).message).not.toContain('PRIVATE-KEY-DATA');
      const args = readFileSync(record, 'utf8').split('\n');
      for (const opt of ['BatchMode=yes', 'StrictHostKeyChecking=yes', 'IdentitiesOnly=yes', 'GlobalKnownHostsFile=/dev/null', 'IdentityAgent=none', 'UpdateHostKeys=no']) expect(args).toContain(opt);
      expect(args.slice(0, 2)).toEqual(['-F', '/dev/null']);
      expect(args).not.toContain('IdentityFile=none');
      expect(readFileSync(`${record}.mode`, 'utf8').trim()).toBe('600');
      expect(readFileSync(`${record}.id`, 'utf8')).toBe('PRIVATE-KEY-DATA\n');
      expect(readFileSync(`${record}.kh`, 'utf8')).toBe('example.invalid ssh-ed25519 AAAA');
      expect(readdirSync(join(dir, 'tmp'))).toEqual([]);

      // Without an identity in the Secret, ssh must not fall back to the server account's own keys.
      await mirrors.fetch('default/ssh', { url: 'ssh://git@example.invalid/team/app.git', ref: { branch: 'main' }, timeoutMs: 10_000, credentials: { knownHosts: 'example.invalid ssh-ed25519 AAAA' } }).catch(() => undefined);
      const bare = readFileSync(record, 'utf8').split('\n');
      expect(bare).toContain('IdentityFile=none');
      expect(bare).not.toContain('-i');
      if (realSsh) {
        // What ssh itself makes of those options (the host and command git adds are left off).
        const host = bare.indexOf('git@example.invalid');
        expect(host).toBeGreaterThan(0);
        const effective = execFileSync(realSsh, ['-G', ...bare.slice(0, host), 'git@example.invalid'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
        expect(effective.match(/^identityfile .*$/gm)).toEqual(['identityfile none']);
        expect(effective).toMatch(/^globalknownhostsfile \/dev\/null$/m);
        expect(effective).toMatch(/^stricthostkeychecking (true|yes)$/m);
        expect(effective).toMatch(/^identityagent none$/m);
      }
    } finally {
      process.env.PATH = path;
      rmSync(base, { recursive: true, force: true });
    }
  });
});

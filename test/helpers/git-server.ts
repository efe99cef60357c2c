import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

import { hasBinary } from './system-deps.js';

const execFileAsync = promisify(execFile);

/**
 * A real Git server on loopback for tests: `git http-backend` behind a small CGI bridge (smart HTTP,
 * fetch and push), optional basic auth, plus helpers that make commits, tags and signatures with the
 * git CLI under a fixed identity.
 *
 * @example
 * const git = await startGitServer({ auth: { username: 'u', password: 'p' } });
 * const repo = await git.createRepo('app');
 * await repo.write({ 'deploy/fn.yaml': 'kind: Function\n...' });
 * const sha = await repo.commit('add the function');
 * await repo.push();
 * // GitRepository spec.url: git.repoUrl('app')
 * await git.close();
 */

/** hasGit tells whether the git CLI is installed (failing under SKIFF_REQUIRE_SYSTEM_DEPS=1 when not). */
export function hasGit(): boolean {
  return hasBinary('git');
}

/** The identity every test commit is made with, and a fixed clock, so commits are reproducible. */
export const GIT_IDENTITY_ENV = {
  GIT_AUTHOR_NAME: 'Skiff Test',
  GIT_AUTHOR_EMAIL: 'test@skiff.invalid',
  GIT_COMMITTER_NAME: 'Skiff Test',
  GIT_COMMITTER_EMAIL: 'test@skiff.invalid',
};

export interface GitServerOptions {
  /** Require HTTP basic auth with this account for every request. */
  auth?: { username: string; password: string };
  /**
   * Let clients fetch any commit by sha (uploadpack.allowAnySHA1InWant); default true. With false the
   * server also speaks protocol v0 only, where upload-pack enforces it (v2 serves any sha over HTTP).
   */
  allowAnySha?: boolean;
}

export interface GitServer {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** The directory holding the bare repositories (`NAME.git`). */
  root: string;
  /** The clone URL of a repository: `http://127.0.0.1:PORT/NAME.git`. */
  repoUrl(name: string): string;
  /** createRepo makes a bare repository `NAME.git` (default branch main) and a work tree to commit in. */
  createRepo(name: string): Promise<GitWorkTree>;
  /** How many requests the server answered (to see that a client fetched). */
  readonly requests: number;
  /** close stops the server, waits for running backends, and removes every directory it made. */
  close(): Promise<void>;
}

/** SigningKey is how a commit is signed: an SSH key file, or an OpenPGP key in a gpg home. */
export type SigningKey = { format: 'ssh'; privateKeyPath: string } | { format: 'openpgp'; gnupgHome: string; keyId: string };

export interface GitWorkTree {
  /** The work tree's directory. */
  dir: string;
  /** The bare repository's directory (a local-path URL for the same repository). */
  bare: string;
  /** write creates or replaces files (paths relative to the root); a null value deletes the file. */
  write(files: Record<string, string | Uint8Array | null>): Promise<void>;
  /** symlink makes a symbolic link at path pointing to target. */
  symlink(path: string, target: string): Promise<void>;
  /** commit stages everything and commits (empty commits allowed); returns the full sha. */
  commit(message: string, opts?: { sign?: SigningKey }): Promise<string>;
  /** push pushes the current branch (default main) to the bare repository. */
  push(opts?: { force?: boolean; branch?: string }): Promise<void>;
  /** tag makes a lightweight tag (annotated with a message) at HEAD and pushes it. */
  tag(name: string, opts?: { message?: string }): Promise<void>;
  /** reset moves the current branch to a commit (then push with force to rewrite the remote). */
  reset(sha: string): Promise<void>;
  /** checkout switches to a branch, creating it from HEAD when it does not exist. */
  checkout(branch: string): Promise<void>;
  /** head returns the full sha of HEAD. */
  head(): Promise<string>;
  /** git runs any git command in the work tree and returns stdout. */
  git(...args: string[]): Promise<string>;
}

/** startGitServer starts `git http-backend` behind a loopback HTTP server (receive-pack enabled). */
export async function startGitServer(opts: GitServerOptions = {}): Promise<GitServer> {
  const base = mkdtempSync(join(tmpdir(), 'skiff-git-'));
  const root = join(base, 'repos');
  mkdirSync(root);
  const children = new Set<ReturnType<typeof spawn>>();
  let requests = 0;
  const server = http.createServer((req, res) => {
    requests++;
    if (opts.auth) {
      const expected = `Basic ${Buffer.from(`${opts.auth.username}:${opts.auth.password}`).toString('base64')}`;
      if (req.headers.authorization !== expected) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="git"' });
        res.end('authentication required\n');
        return;
      }
    }
    const url = new URL(req.url ?? '/', 'http://localhost');
    const config: Array<[string, string]> = [
      ['http.receivepack', 'true'],
      ['uploadpack.allowAnySHA1InWant', opts.allowAnySha === false ? 'false' : 'true'],
      ['safe.directory', '*'],
    ];
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: base,
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_CONFIG_GLOBAL: '/dev/null',
      GIT_PROJECT_ROOT: root,
      GIT_HTTP_EXPORT_ALL: '1',
      PATH_INFO: decodeURIComponent(url.pathname),
      QUERY_STRING: url.search.slice(1),
      REQUEST_METHOD: req.method ?? 'GET',
      CONTENT_TYPE: req.headers['content-type'] ?? '',
      REMOTE_ADDR: '127.0.0.1',
      GIT_CONFIG_COUNT: String(config.length),
    };
    config.forEach(([k, v], i) => {
      env[`GIT_CONFIG_KEY_${i}`] = k;
      env[`GIT_CONFIG_VALUE_${i}`] = v;
    });
    if (opts.auth) env.REMOTE_USER = opts.auth.username;
    if (req.headers['content-encoding']) env.HTTP_CONTENT_ENCODING = String(req.headers['content-encoding']);
    if (req.headers['git-protocol'] && opts.allowAnySha !== false) env.GIT_PROTOCOL = String(req.headers['git-protocol']);
    if (req.headers['content-length']) env.CONTENT_LENGTH = String(req.headers['content-length']);
    const child = spawn('git', ['http-backend'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    children.add(child);
    child.on('close', () => children.delete(child));
    req.pipe(child.stdin);
    child.stdin.on('error', () => undefined);
    let head = Buffer.alloc(0);
    let headerDone = false;
    child.stdout.on('data', (chunk: Buffer) => {
      if (headerDone) {
        res.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      let end = head.indexOf('\r\n\r\n');
      let sep = 4;
      if (end < 0) {
        end = head.indexOf('\n\n');
        sep = 2;
      }
      if (end < 0) return;
      headerDone = true;
      let status = 200;
      const headers: Record<string, string> = {};
      for (const line of head.subarray(0, end).toString('latin1').split(/\r?\n/)) {
        const i = line.indexOf(':');
        if (i < 0) continue;
        const name = line.slice(0, i).trim();
        const value = line.slice(i + 1).trim();
        if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10);
        else headers[name] = value;
      }
      res.writeHead(status, headers);
      res.write(head.subarray(end + sep));
    });
    child.stderr.on('data', () => undefined);
    child.on('close', () => {
      if (!headerDone) res.writeHead(502).end('git http-backend gave no response\n');
      else res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const trees: string[] = [];

  return {
    url,
    root,
    repoUrl: (name) => `${url}/${name}.git`,
    get requests() {
      return requests;
    },
    async createRepo(name) {
      const bare = join(root, `${name}.git`);
      await execFileAsync('git', ['init', '--quiet', '--bare', '--initial-branch=main', bare], { env: gitEnv(base) });
      const dir = mkdtempSync(join(base, `wt-${name}-`));
      trees.push(dir);
      return workTree(dir, bare, base);
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      for (const c of children) c.kill('SIGKILL');
      for (const home of gpgHomes.splice(0)) await execFileAsync('gpgconf', ['--kill', 'gpg-agent'], { env: { ...process.env, GNUPGHOME: home } }).catch(() => undefined);
      rmSync(base, { recursive: true, force: true });
    },
  };
}

function gitEnv(home: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: home, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', LANG: 'C', ...GIT_IDENTITY_ENV, ...extra };
}

async function workTree(dir: string, bare: string, home: string): Promise<GitWorkTree> {
  const git = async (...args: string[]) => (await execFileAsync('git', args, { cwd: dir, env: gitEnv(home), maxBuffer: 64 * 1024 * 1024 })).stdout;
  await git('init', '--quiet', '--initial-branch=main');
  await git('remote', 'add', 'origin', bare);
  return {
    dir,
    bare,
    git,
    async write(files) {
      for (const [p, content] of Object.entries(files)) {
        const full = join(dir, p);
        if (content === null) rmSync(full, { force: true });
        else {
          mkdirSync(dirname(full), { recursive: true });
          writeFileSync(full, content);
        }
      }
    },
    async symlink(p, target) {
      mkdirSync(dirname(join(dir, p)), { recursive: true });
      await execFileAsync('ln', ['-sfn', target, join(dir, p)]);
    },
    async commit(message, o = {}) {
      await git('add', '--all');
      const signing: string[] = [];
      let env: Record<string, string> = {};
      if (o.sign?.format === 'ssh') signing.push('-c', 'gpg.format=ssh', '-c', `user.signingkey=${o.sign.privateKeyPath}`);
      if (o.sign?.format === 'openpgp') {
        signing.push('-c', 'gpg.format=openpgp', '-c', `user.signingkey=${o.sign.keyId}`);
        env = { GNUPGHOME: o.sign.gnupgHome };
      }
      await execFileAsync('git', [...signing, 'commit', '--quiet', '--allow-empty', '-m', message, ...(o.sign ? ['-S'] : [])], { cwd: dir, env: gitEnv(home, env) });
      return (await git('rev-parse', 'HEAD')).trim();
    },
    async push(o = {}) {
      const branch = o.branch ?? (await git('rev-parse', '--abbrev-ref', 'HEAD')).trim();
      await git('push', '--quiet', ...(o.force ? ['--force'] : []), 'origin', `HEAD:refs/heads/${branch}`);
    },
    async tag(name, o = {}) {
      await git('tag', ...(o.message ? ['-a', '-m', o.message] : []), name);
      await git('push', '--quiet', 'origin', `refs/tags/${name}`);
    },
    async reset(sha) {
      await git('reset', '--quiet', '--hard', sha);
    },
    async checkout(branch) {
      await git('checkout', '--quiet', '-B', branch);
    },
    async head() {
      return (await git('rev-parse', 'HEAD')).trim();
    },
  };
}

export interface SshSigningKey {
  format: 'ssh';
  privateKeyPath: string;
  /** The public key line (`ssh-ed25519 AAAA... comment`), as a *.pub Secret entry holds it. */
  publicKey: string;
  /** An allowed_signers line for the test identity. */
  allowedSigners: string;
}

/** sshSigningKey makes an SSH key pair (ed25519 by default) in dir for signing commits. */
export async function sshSigningKey(dir: string, type: 'ed25519' | 'ecdsa' | 'rsa' = 'ed25519'): Promise<SshSigningKey> {
  mkdirSync(dir, { recursive: true });
  const privateKeyPath = join(dir, `id_${type}_${Math.random().toString(36).slice(2, 8)}`);
  await execFileAsync('ssh-keygen', ['-q', '-t', type, ...(type === 'rsa' ? ['-b', '2048'] : []), '-N', '', '-C', 'test@skiff.invalid', '-f', privateKeyPath]);
  const publicKey = readFileSync(`${privateKeyPath}.pub`, 'utf8').trim();
  return { format: 'ssh', privateKeyPath, publicKey, allowedSigners: `${GIT_IDENTITY_ENV.GIT_COMMITTER_EMAIL} ${publicKey}\n` };
}

export interface OpenPgpSigningKey {
  format: 'openpgp';
  gnupgHome: string;
  keyId: string;
  /** The armored public key, as an *.asc Secret entry holds it. */
  armoredPublicKey: string;
}

const gpgHomes: string[] = [];

/**
 * openPgpSigningKey makes an ed25519 OpenPGP key without a passphrase in a new gpg home under dir
 * (keep dir short: gpg-agent's socket path is limited). Stop its agent with stopGpgAgent.
 */
export async function openPgpSigningKey(dir: string): Promise<OpenPgpSigningKey> {
  const gnupgHome = mkdtempSync(join(dir, 'g'));
  gpgHomes.push(gnupgHome);
  const env = { ...process.env, GNUPGHOME: gnupgHome };
  await execFileAsync('gpg', ['--batch', '--quiet', '--pinentry-mode', 'loopback', '--passphrase', '', '--quick-gen-key', `Skiff Test <${GIT_IDENTITY_ENV.GIT_COMMITTER_EMAIL}>`, 'ed25519', 'sign', 'never'], { env });
  const listed = (await execFileAsync('gpg', ['--batch', '--with-colons', '--list-keys'], { env })).stdout;
  const keyId = /^fpr:+([0-9A-F]{40}):/m.exec(listed)![1]!;
  const armoredPublicKey = (await execFileAsync('gpg', ['--batch', '--armor', '--export', keyId], { env })).stdout;
  return { format: 'openpgp', gnupgHome, keyId, armoredPublicKey };
}

/** stopGpgAgent ends the gpg-agent a key's home started. */
export async function stopGpgAgent(key: OpenPgpSigningKey): Promise<void> {
  await execFileAsync('gpgconf', ['--kill', 'gpg-agent'], { env: { ...process.env, GNUPGHOME: key.gnupgHome } }).catch(() => undefined);
}

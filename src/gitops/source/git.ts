import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import semver from 'semver';
import { GitError, GitPluginError, type SimpleGit,simpleGit } from 'simple-git';

import type { HostDirs, UpstreamGuard } from '../../security/index.js';

import { GitFetchError } from './errors.js';

/** GitRef is `spec.ref`: exactly one of its fields (validated by the kind). */
export interface GitRef {
  branch?: string;
  tag?: string;
  semver?: string;
  commit?: string;
}

/** GitCredentials come from the GitRepository's Secret; they reach git through its environment only. */
export interface GitCredentials {
  username?: string;
  password?: string;
  bearerToken?: string;
  /** An ssh private key (OpenSSH or PEM). */
  identity?: string;
  knownHosts?: string;
}

export interface FetchOptions {
  url: string;
  ref: GitRef;
  timeoutMs: number;
  credentials?: GitCredentials;
}

/** FetchedRevision is the commit a ref resolved to, and the revision string of the artifact. */
export interface FetchedRevision {
  commit: string;
  /** `main@sha1:SHA`, `v1.2.0@sha1:SHA` or `sha1:SHA` for a pinned commit. */
  revision: string;
}

/** TreeEntry is one line of `git ls-tree -r -l`. */
export interface TreeEntry {
  mode: string;
  type: 'blob' | 'commit' | 'tree';
  sha: string;
  size: number;
  path: string;
}

export interface GitMirrorsOptions {
  /** DATA_DIR/gitops: mirrors go under repos/, an empty HOME and short-lived ssh files under home/ and tmp/. */
  dir: string;
  /** Largest object store a mirror may grow to (default 512 MiB); beyond it the fetch fails and the mirror is removed. */
  maxRepoBytes?: number;
}

const DEFAULT_MAX_REPO_BYTES = 512 * 1024 * 1024;

// simple-git refuses these settings unless enabled: each is set here by Skiff with a fixed value (an
// isolated config, no hooks, the one protocol the URL needs, our own ssh command), never from user input.
const UNSAFE_OPT_INS = {
  allowUnsafeConfigEnvCount: true,
  allowUnsafeConfigPaths: true,
  allowUnsafeSshCommand: true,
  allowUnsafeProtocolOverride: true,
  allowUnsafeHooksPath: true,
} as const;

/** redactUrl drops any user information from a URL so it can go into messages and logs. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, '$1');
}

/** protocolOf is the git transport a URL uses (what protocol.allow must permit). */
export function protocolOf(url: string): 'http' | 'https' | 'ssh' | 'file' {
  if (url.startsWith('/') || url.startsWith('file:')) return 'file';
  if (url.startsWith('https://')) return 'https';
  if (url.startsWith('http://')) return 'http';
  return 'ssh';
}

/**
 * GitMirrors keeps one bare mirror per GitRepository and fetches refs into it with the git CLI
 * through simple-git (never a shell). Every git process runs with no system or global config, an
 * empty HOME, no terminal prompts, no hooks, only the URL's own protocol allowed, and is killed when
 * the fetch's time runs out. Credentials travel in the environment, never on the command line.
 */
export class GitMirrors {
  private readonly maxRepoBytes: number;
  private readonly home: string;
  private readonly tmp: string;

  constructor(private readonly opts: GitMirrorsOptions) {
    this.maxRepoBytes = opts.maxRepoBytes ?? DEFAULT_MAX_REPO_BYTES;
    this.home = join(opts.dir, 'home');
    this.tmp = join(opts.dir, 'tmp');
    mkdirSync(this.home, { recursive: true, mode: 0o700 });
    mkdirSync(this.tmp, { recursive: true, mode: 0o700 });
  }

  /** mirrorDir is where the mirror of the GitRepository NAMESPACE/NAME lives. */
  mirrorDir(key: string): string {
    const [ns, name] = key.split('/');
    return join(this.opts.dir, 'repos', ns!, name!);
  }

  /** remove deletes a GitRepository's mirror. */
  remove(key: string): void {
    rmSync(this.mirrorDir(key), { recursive: true, force: true });
  }

  /**
   * fetch brings the ref's commit into the mirror (shallow for branches and tags) and returns it.
   * It rejects with a GitFetchError whose message names the URL without credentials.
   */
  async fetch(key: string, o: FetchOptions): Promise<FetchedRevision> {
    const dir = this.mirrorDir(key);
    const shown = redactUrl(o.url);
    const session = this.session(o);
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), o.timeoutMs);
    const secrets = [o.credentials?.password, o.credentials?.bearerToken, session.header].filter((s): s is string => !!s);
    try {
      if (!existsSync(join(dir, 'HEAD'))) {
        mkdirSync(dir, { recursive: true, mode: 0o700 });
        await this.git(dir, session.env, ac.signal).raw(['init', '--bare', '--quiet', dir]);
      }
      const g = this.git(dir, session.env, ac.signal);
      const ref = o.ref;
      if (ref.commit) return await this.fetchCommit(g, o.url, ref.commit);
      let tag = ref.tag;
      if (ref.semver) tag = await this.pickSemver(g, o.url, ref.semver);
      const local = tag ? `refs/tags/${tag}` : `refs/heads/${ref.branch ?? 'main'}`;
      try {
        await g.raw(['fetch', '--depth', '1', '--no-tags', '--force', '--quiet', '--', o.url, `+${local}:${local}`]);
      } catch (err) {
        if (/couldn't find remote ref/i.test(errText(err))) throw new GitFetchError('RefNotFound', `${shown} has no ${tag ? `tag ${tag}` : `branch ${ref.branch ?? 'main'}`}`);
        throw err;
      }
      const commit = (await g.raw(['rev-parse', '--verify', '--quiet', `${local}^{commit}`])).trim();
      await this.checkSize(g, key);
      return { commit, revision: `${tag ?? ref.branch ?? 'main'}@sha1:${commit}` };
    } catch (err) {
      throw this.translate(err, shown, ac.signal.aborted, o.timeoutMs, secrets, session.sshDir);
    } finally {
      clearTimeout(timer);
      session.cleanup();
    }
  }

  /** listTree lists every entry of a commit's tree, recursively, with blob sizes. */
  async listTree(key: string, commit: string): Promise<TreeEntry[]> {
    const out = await this.git(this.mirrorDir(key), this.baseEnv([])).raw(['ls-tree', '-r', '-z', '-l', '--full-tree', commit]);
    const entries: TreeEntry[] = [];
    for (const line of out.split('\0')) {
      if (!line) continue;
      const m = /^(\d{6}) (blob|commit|tree) ([0-9a-f]{40,64})\s+(\S+)\t(.*)$/s.exec(line);
      if (!m) throw new GitFetchError('FetchFailed', `unexpected git ls-tree output for commit ${commit}`);
      entries.push({ mode: m[1]!, type: m[2] as TreeEntry['type'], sha: m[3]!, size: m[4] === '-' ? 0 : Number(m[4]), path: m[5]! });
    }
    return entries;
  }

  /** readBlobs reads the blobs' bytes in one `git cat-file --batch`, refusing to read more than maxBytes. */
  async readBlobs(key: string, shas: string[], maxBytes: number, timeoutMs = 60_000): Promise<Map<string, Buffer>> {
    const out = await this.runBytes(this.mirrorDir(key), ['cat-file', '--batch'], shas.join('\n') + '\n', maxBytes + shas.length * 100 + 1024, timeoutMs);
    const blobs = new Map<string, Buffer>();
    let at = 0;
    while (at < out.length) {
      const nl = out.indexOf(0x0a, at);
      if (nl < 0) break;
      const header = out.subarray(at, nl).toString('utf8');
      const m = /^([0-9a-f]+) (\w+) (\d+)$/.exec(header);
      if (!m) throw new GitFetchError('FetchFailed', `git cat-file could not read an object: ${header.slice(0, 120)}`);
      const size = Number(m[3]);
      blobs.set(m[1]!, out.subarray(nl + 1, nl + 1 + size));
      at = nl + 1 + size + 1;
    }
    return blobs;
  }

  /** rawCommit returns the commit object's exact bytes (what a signature covers). */
  async rawCommit(key: string, commit: string): Promise<Buffer> {
    return this.runBytes(this.mirrorDir(key), ['cat-file', 'commit', commit], '', 16 * 1024 * 1024, 30_000);
  }

  private async fetchCommit(g: SimpleGit, url: string, commit: string): Promise<FetchedRevision> {
    const has = async () => (await g.raw(['cat-file', '-t', commit]).catch(() => '')).trim() === 'commit';
    if (!(await has())) {
      try {
        await g.raw(['fetch', '--depth', '1', '--no-tags', '--force', '--quiet', '--', url, commit]);
      } catch (err) {
        // Servers that do not allow fetching an unadvertised commit: fetch the default branch's history instead.
        if (!/not our ref|couldn't find remote ref|unadvertised|Server does not allow request/i.test(errText(err))) throw err;
        const shallow = (await g.raw(['rev-parse', '--is-shallow-repository'])).trim() === 'true';
        await g.raw(['fetch', '--no-tags', '--force', '--quiet', ...(shallow ? ['--unshallow'] : []), '--', url, '+HEAD:refs/skiff/default']);
      }
    }
    if (!(await has())) throw new GitFetchError('RefNotFound', `commit ${commit} is not in ${redactUrl(url)}`);
    // A ref keeps the pinned commit from being pruned by a later fetch.
    await g.raw(['update-ref', 'refs/skiff/pinned', commit]);
    return { commit, revision: `sha1:${commit}` };
  }

  /** pickSemver lists the remote's tags and returns the highest one that satisfies the range. */
  private async pickSemver(g: SimpleGit, url: string, range: string): Promise<string> {
    const out = await g.raw(['ls-remote', '--tags', '--refs', '--', url]);
    const byVersion = new Map<string, string>();
    for (const line of out.split('\n')) {
      const tag = /^[0-9a-f]+\trefs\/tags\/(.+)$/.exec(line.trim())?.[1];
      if (!tag) continue;
      const v = semver.valid(tag.replace(/^v/, ''));
      // Of "v1.0.0" and "1.0.0" naming the same version, the first listed wins: ls-remote sorts them.
      if (v && !byVersion.has(v)) byVersion.set(v, tag);
    }
    const best = semver.maxSatisfying([...byVersion.keys()], range);
    if (!best) throw new GitFetchError('RefNotFound', `no tag of ${redactUrl(url)} satisfies the semver range ${JSON.stringify(range)} (${byVersion.size} semver tag(s) found)`);
    return byVersion.get(best)!;
  }

  private async checkSize(g: SimpleGit, key: string): Promise<void> {
    const out = await g.raw(['count-objects', '-v']);
    const kib = (name: string) => Number(new RegExp(`^${name}: (\\d+)`, 'm').exec(out)?.[1] ?? 0);
    const bytes = (kib('size') + kib('size-pack')) * 1024;
    if (bytes > this.maxRepoBytes) {
      this.remove(key);
      throw new GitFetchError('RepositoryTooLarge', `the mirror grew to ${Math.round(bytes / 1048576)} MiB, over the limit of ${Math.round(this.maxRepoBytes / 1048576)} MiB; it was removed`);
    }
  }

  /** session prepares the environment of one fetch: protocol, auth header or ssh files (removed by cleanup). */
  private session(o: FetchOptions): { env: Record<string, string>; header?: string; sshDir?: string; cleanup: () => void } {
    const proto = protocolOf(o.url);
    const config: Array<[string, string]> = [
      ['protocol.allow', 'never'],
      [`protocol.${proto}.allow`, 'always'],
      // Credentials must not follow a redirect to another host.
      ['http.followRedirects', 'false'],
    ];
    const c = o.credentials;
    let header: string | undefined;
    if ((proto === 'http' || proto === 'https') && c) {
      if (c.bearerToken) header = `Authorization: Bearer ${c.bearerToken}`;
      else if (c.username !== undefined || c.password !== undefined) header = `Authorization: Basic ${Buffer.from(`${c.username ?? ''}:${c.password ?? ''}`).toString('base64')}`;
      if (header) config.push(['http.extraHeader', header]);
    }
    const env = this.baseEnv(config);
    let sshDir: string | undefined;
    if (proto === 'ssh') {
      if (c?.identity && identityIsEncrypted(c.identity)) throw new GitFetchError('AuthenticationFailed', `fetching ${redactUrl(o.url)} was not tried: the identity in spec.secretRef is protected by a passphrase, which Skiff cannot enter; store a key without one`);
      sshDir = mkdtempSync(join(this.tmp, 'ssh-'));
      const kh = join(sshDir, 'known_hosts');
      writeFileSync(kh, c?.knownHosts ?? '', { mode: 0o600 });
      // ssh reads its own default files from the account's home (not $HOME) and /etc/ssh: the host's
      // keys, agent and known hosts must never stand in for what the Secret holds, so each is pinned.
      const args = ['ssh', '-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${sshOptionPath(kh)}`, '-o', 'GlobalKnownHostsFile=/dev/null', '-o', 'UpdateHostKeys=no', '-o', 'IdentitiesOnly=yes', '-o', 'IdentityAgent=none'];
      if (c?.identity) {
        const id = join(sshDir, 'identity');
        // A key pasted from a Windows editor has CRLF line ends, which ssh cannot parse.
        const key = c.identity.replace(/\r\n?/g, '\n');
        writeFileSync(id, key.endsWith('\n') ? key : `${key}\n`, { mode: 0o600 });
        args.push('-i', id);
      } else {
        args.push('-o', 'IdentityFile=none');
      }
      // git runs GIT_SSH_COMMAND through a shell: every word is a path we made or a fixed option, quoted.
      env.GIT_SSH_COMMAND = args.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    }
    return { env, header, sshDir, cleanup: () => sshDir && rmSync(sshDir, { recursive: true, force: true }) };
  }

  private baseEnv(config: Array<[string, string]>): Record<string, string> {
    const all: Array<[string, string]> = [['core.hooksPath', '/dev/null'], ['gc.auto', '0'], ['maintenance.auto', 'false'], ...config];
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: this.home,
      LANG: 'C',
      LC_ALL: 'C',
      GIT_TERMINAL_PROMPT: '0',
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_CONFIG_GLOBAL: '/dev/null',
      GIT_CONFIG_COUNT: String(all.length),
    };
    all.forEach(([k, v], i) => {
      env[`GIT_CONFIG_KEY_${i}`] = k;
      env[`GIT_CONFIG_VALUE_${i}`] = v;
    });
    return env;
  }

  private git(dir: string, env: Record<string, string>, signal?: AbortSignal): SimpleGit {
    return simpleGit({ baseDir: dir, maxConcurrentProcesses: 4, trimmed: false, unsafe: UNSAFE_OPT_INS, ...(signal ? { abort: signal } : {}) }).env(env);
  }

  /**
   * runBytes runs a local, read-only git command and returns stdout as bytes. simple-git decodes
   * output as text and cannot feed stdin, which blob contents and `cat-file --batch` need.
   */
  private runBytes(dir: string, args: string[], stdin: string, maxBytes: number, timeoutMs: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const child = spawn('git', args, { cwd: dir, env: this.baseEnv([]), stdio: ['pipe', 'pipe', 'pipe'], timeout: timeoutMs, killSignal: 'SIGKILL' });
      const chunks: Buffer[] = [];
      let total = 0;
      let stderr = '';
      child.stdout.on('data', (b: Buffer) => {
        total += b.length;
        if (total > maxBytes) {
          child.kill('SIGKILL');
          reject(new GitFetchError('RepositoryTooLarge', `reading from the mirror produced more than ${maxBytes} bytes`));
          return;
        }
        chunks.push(b);
      });
      child.stderr.on('data', (b: Buffer) => {
        if (stderr.length < 4096) stderr += b.toString('utf8');
      });
      child.on('error', reject);
      child.on('close', (code, signal) => {
        if (code === 0) resolve(Buffer.concat(chunks));
        else reject(new GitFetchError('FetchFailed', `git ${args[0]} failed (${signal ?? `exit ${code}`}): ${stderr.trim().slice(0, 500)}`));
      });
      child.stdin.on('error', () => undefined);
      child.stdin.end(stdin);
    });
  }

  /** translate turns whatever git failed with into a GitFetchError without credentials in it. */
  private translate(err: unknown, shown: string, timedOut: boolean, timeoutMs: number, secrets: string[], sshDir?: string): GitFetchError {
    if (err instanceof GitFetchError) return err;
    if (timedOut || (err instanceof GitPluginError && err.plugin === 'abort')) return new GitFetchError('TimedOut', `fetching ${shown} took longer than spec.timeout (${timeoutMs / 1000}s); git was stopped`);
    let text = errText(err);
    for (const s of secrets) text = text.split(s).join('***');
    if (sshDir) {
      // ssh names its files; the person reading the condition knows them as Secret entries.
      text = text.split(join(sshDir, 'identity')).join('identity').split(join(sshDir, 'known_hosts')).join('known_hosts').split(sshDir).join('.');
      const ssh = sshFailure(text, shown);
      if (ssh) return ssh;
    }
    text = text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/@\s]*@/gi, '$1');
    const firstLines = text
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !/^hint:/.test(l))
      .slice(0, 3)
      .join('; ');
    if (/Authentication failed|could not read Username|401|403|Permission denied \(publickey/i.test(text)) return new GitFetchError('AuthenticationFailed', `fetching ${shown} was refused: ${firstLines}; check spec.secretRef`);
    if (err instanceof GitError || err instanceof Error) return new GitFetchError('FetchFailed', `fetching ${shown} failed: ${firstLines || 'git exited with an error'}`);
    return new GitFetchError('FetchFailed', `fetching ${shown} failed`);
  }
}

/**
 * sshFailure explains the ssh client's own refusals, which git only passes on as stderr: a host key
 * that is missing from or different to known_hosts, and an identity ssh could not load.
 */
function sshFailure(text: string, shown: string): GitFetchError | undefined {
  const changed = /Host key for (\S+) has changed/.exec(text);
  const unknown = /No (\S+) host key is known for (\S+) and/.exec(text);
  if (changed || unknown || /Host key verification failed/i.test(text)) {
    const offered = /fingerprint for the (\S+) key sent by the remote host is\s+(SHA256:[A-Za-z0-9+/=]+)/.exec(text);
    let why: string;
    if (changed) why = `the host key ${changed[1]} offered${offered ? ` (${offered[1]} ${offered[2]})` : ''} is not the one known_hosts in spec.secretRef lists for it`;
    else if (unknown) why = `known_hosts in spec.secretRef has no ${unknown[1]} key for ${unknown[2]}`;
    else why = 'ssh could not verify the host key against known_hosts in spec.secretRef';
    return new GitFetchError('HostKeyVerificationFailed', `fetching ${shown} was refused: ${why}; get the server's key by a trusted way and put it in known_hosts (as "[host]:port type key" when the port is not 22)`);
  }
  const load = /Load key "identity": ([^\n]*)/.exec(text);
  if (load) return new GitFetchError('AuthenticationFailed', `fetching ${shown} failed: ssh could not load the identity in spec.secretRef (${load[1]!.trim()}); it must be an OpenSSH or PEM private key without a passphrase`);
  return undefined;
}

/**
 * sshOptionPath quotes a path for an `-o NAME=VALUE` option: ssh splits option values at whitespace
 * itself (after the shell), so a data directory with a space must reach it in double quotes.
 */
function sshOptionPath(path: string): string {
  return /[\s"\\]/.test(path) ? `"${path.replace(/["\\]/g, (c) => `\\${c}`)}"` : path;
}

/** identityIsEncrypted tells whether a private key needs a passphrase (OpenSSH or PEM format). */
export function identityIsEncrypted(key: string): boolean {
  if (/^Proc-Type:\s*4,ENCRYPTED/m.test(key) || /-----BEGIN ENCRYPTED PRIVATE KEY-----/.test(key)) return true;
  const body = /-----BEGIN OPENSSH PRIVATE KEY-----([\s\S]*?)-----END OPENSSH PRIVATE KEY-----/.exec(key)?.[1];
  if (!body) return false;
  // The format starts with a magic string and the cipher's name as a length-prefixed string.
  const bytes = Buffer.from(body.replace(/\s+/g, ''), 'base64');
  const magic = 'openssh-key-v1\0';
  if (bytes.length < magic.length + 4 || bytes.subarray(0, magic.length).toString('latin1') !== magic) return false;
  const len = bytes.readUInt32BE(magic.length);
  const cipher = bytes.subarray(magic.length + 4, magic.length + 4 + Math.min(len, 64)).toString('latin1');
  return cipher !== 'none';
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}


/** UrlGuard returns why the server may not fetch from a URL, or undefined when it may. */
export type UrlGuard = (url: string) => Promise<string | undefined>;

/**
 * gitUrlGuard holds Git URLs to the operator's grants: network URLs to `--allow-upstream` (loopback
 * and link-local need a grant, Skiff's own listeners are refused), local paths to `--allow-host-dir`.
 * git resolves the name again when it connects, so a name that changes its answer in between is not
 * caught here; redirects are not followed at all.
 */
export function gitUrlGuard(upstreams: UpstreamGuard, hostDirs: HostDirs): UrlGuard {
  return async (url) => {
    if (protocolOf(url) === 'file') {
      const path = url.startsWith('file:') ? decodeURIComponent(new URL(url).pathname) : url;
      return hostDirs.contains(path) ? undefined : hostDirs.refusal(path, 'spec.url');
    }
    let host: string;
    let port: number;
    const scp = /^[^@/]+@([^:/]+):/.exec(url);
    if (scp && !url.includes('://')) {
      host = scp[1]!;
      port = 22;
    } else {
      const u = new URL(url);
      host = u.hostname.replace(/^\[|\]$/g, '');
      port = Number(u.port) || (u.protocol === 'https:' ? 443 : u.protocol === 'http:' ? 80 : 22);
    }
    try {
      await upstreams.check(host, port);
      return undefined;
    } catch (err) {
      return `spec.url: ${(err as Error).message}`;
    }
  };
}

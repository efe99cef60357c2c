import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { hasBinary } from './system-deps.js';

const execFileAsync = promisify(execFile);

/**
 * A real OpenSSH server on loopback for git tests: `sshd -D -e` with its own config, host key and
 * authorized_keys in a temp directory, run by the test as the current user (no system service, nothing
 * written outside the temp directory except the privilege-separation directory sshd insists on when
 * run as root). It serves the bare repositories of a GitServer's `root` over ssh, so one repository
 * can be fetched over http and ssh alike.
 *
 * @example
 * const git = await startGitServer();
 * const ssh = await startSshGitServer({ root: git.root });
 * const repo = await git.createRepo('app');
 * // GitRepository spec.url: ssh.repoUrl('app'); Secret: { identity: ssh.identity, known_hosts: ssh.knownHosts }
 * await ssh.close();
 */

/** Where Debian installs sshd; it is often not on a non-root PATH. */
const SSHD_CANDIDATES = ['/usr/sbin/sshd', '/usr/local/sbin/sshd'];

/** sshdPath is the absolute path of sshd (it refuses to start from a relative one), or undefined. */
export function sshdPath(): string | undefined {
  return SSHD_CANDIDATES.find((p) => existsSync(p));
}

/** hasSshd tells whether sshd and ssh-keygen are installed (failing under SKIFF_REQUIRE_SYSTEM_DEPS=1 when not). */
export function hasSshd(): boolean {
  const keygen = hasBinary('ssh-keygen');
  if (!sshdPath()) {
    if (process.env.SKIFF_REQUIRE_SYSTEM_DEPS === '1') throw new Error(`system dependency 'sshd' is missing and SKIFF_REQUIRE_SYSTEM_DEPS=1: add openssh-server to .ci/apt-packages.txt`);
    return false;
  }
  return keygen;
}

export interface SshGitServerOptions {
  /** The directory holding the bare repositories (`NAME.git`), usually a GitServer's `root`. */
  root: string;
  /** How long to wait for sshd to listen (default 10 s). */
  startTimeoutMs?: number;
}

export interface SshGitServer {
  host: '127.0.0.1';
  port: number;
  /** The account clients log in as: the user running the tests. */
  user: string;
  /** The clone URL of a repository under root: `ssh://USER@127.0.0.1:PORT/ROOT/NAME.git`. */
  repoUrl(name: string): string;
  /** The private key (OpenSSH format) authorized on the server, as a Secret's `identity`. */
  identity: string;
  /** Another private key the server does not know. */
  unauthorizedIdentity: string;
  /** The server's host key as a known_hosts line: `[127.0.0.1]:PORT ssh-ed25519 AAAA...`. */
  knownHosts: string;
  /** A known_hosts line for the same address with a different host key. */
  wrongKnownHosts: string;
  /** What sshd has written to stderr so far (bounded), for failure messages. */
  log(): string;
  /** close stops sshd, waits for it to exit, and removes the temp directory. */
  close(): Promise<void>;
}

const MAX_LOG = 64 * 1024;

/** startSshGitServer starts sshd on a free loopback port serving the repositories under root. */
export async function startSshGitServer(opts: SshGitServerOptions): Promise<SshGitServer> {
  const sshd = sshdPath();
  if (!sshd) throw new Error(`sshd is not installed (looked in ${SSHD_CANDIDATES.join(', ')}): install openssh-server`);
  const base = mkdtempSync(join(tmpdir(), 'skiff-sshd-'));
  try {
    return await start(sshd, base, opts);
  } catch (err) {
    rmSync(base, { recursive: true, force: true });
    throw err;
  }
}

async function start(sshd: string, base: string, opts: SshGitServerOptions): Promise<SshGitServer> {
  const user = userInfo().username;
  const [hostKey, otherHostKey, client, stranger] = await Promise.all(['host', 'other-host', 'client', 'stranger'].map((n) => keyPair(base, n)));
  const authorized = join(base, 'authorized_keys');
  // `restrict` turns off forwarding, agents, X11 and ptys for the key: the account only runs git's commands.
  writeFileSync(authorized, `restrict ${client!.publicKey}\n`, { mode: 0o600 });

  const timeoutMs = opts.startTimeoutMs ?? 10_000;
  let lastError = '';
  // The free port is found by binding and releasing it, so another process can take it first: retry.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const config = join(base, 'sshd_config');
    const lines = sshdConfig({ port, hostKey: hostKey!.privateKeyPath, authorized, pidFile: join(base, 'sshd.pid'), user });
    await prepareConfig(sshd, config, lines);
    const child = spawn(sshd, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C' } });
    let log = '';
    child.stderr.on('data', (b: Buffer) => {
      if (log.length < MAX_LOG) log += b.toString('utf8');
    });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    let running = true;
    void exited.then(() => (running = false));
    const listening = await waitFor(() => /Server listening on 127\.0\.0\.1 port/.test(log) || !running, timeoutMs);
    if (listening && running) {
      const refused = await selfCheck({ port, user, identityPath: client!.privateKeyPath, knownHosts: `[127.0.0.1]:${port} ${hostKey!.publicKey}\n`, base });
      if (refused) {
        child.kill('SIGKILL');
        await exited;
        throw new Error(`sshd on 127.0.0.1:${port} is up but ${user} cannot run git through it: ${refused.replace(/\.$/, '')}. The account needs a login shell and must not be locked ('!' in /etc/shadow), which sshd checks with UsePAM no`);
      }
      const hostLine = hostKey!.publicKey.split(' ').slice(0, 2).join(' ');
      const otherLine = otherHostKey!.publicKey.split(' ').slice(0, 2).join(' ');
      return {
        host: '127.0.0.1',
        port,
        user,
        repoUrl: (name) => `ssh://${user}@127.0.0.1:${port}${join(opts.root, `${name}.git`)}`,
        identity: client!.privateKey,
        unauthorizedIdentity: stranger!.privateKey,
        knownHosts: `[127.0.0.1]:${port} ${hostLine}\n`,
        wrongKnownHosts: `[127.0.0.1]:${port} ${otherLine}\n`,
        log: () => log,
        async close() {
          if (running) {
            child.kill('SIGTERM');
            const stopped = await waitFor(() => !running, 5_000);
            if (!stopped) child.kill('SIGKILL');
            await exited;
          }
          rmSync(base, { recursive: true, force: true });
        },
      };
    }
    if (running) child.kill('SIGKILL');
    await exited;
    lastError = log.trim() || '(no output)';
    if (!/Address already in use/i.test(log)) break;
  }
  throw new Error(`sshd did not start listening within ${timeoutMs} ms; its stderr:\n${lastError.slice(0, 4000)}`);
}

/**
 * selfCheck logs in once with the client key and runs `git --version`, so a server that listens but
 * refuses the account (locked, or a nologin shell) fails here with ssh's words rather than later as a
 * confusing fetch error. Returns ssh's complaint, or undefined when git ran.
 */
async function selfCheck(o: { port: number; user: string; identityPath: string; knownHosts: string; base: string }): Promise<string | undefined> {
  const kh = join(o.base, 'known_hosts');
  writeFileSync(kh, o.knownHosts, { mode: 0o600 });
  const args = ['-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${kh}`, '-o', 'GlobalKnownHostsFile=/dev/null', '-o', 'IdentitiesOnly=yes', '-i', o.identityPath, '-p', String(o.port), `${o.user}@127.0.0.1`, 'git --version'];
  try {
    const { stdout } = await execFileAsync('ssh', args, { timeout: 10_000, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C' } });
    return /^git version /.test(stdout) ? undefined : `git --version printed ${JSON.stringify(stdout.slice(0, 200))}`;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    return (e.stderr || e.message).trim().slice(0, 2000);
  }
}

function sshdConfig(o: { port: number; hostKey: string; authorized: string; pidFile: string; user: string }): string[] {
  return [
    `ListenAddress 127.0.0.1:${o.port}`,
    `HostKey ${o.hostKey}`,
    `PidFile ${o.pidFile}`,
    `AuthorizedKeysFile ${o.authorized}`,
    `AllowUsers ${o.user}`,
    'AuthenticationMethods publickey',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'HostbasedAuthentication no',
    'PermitRootLogin prohibit-password',
    'PermitEmptyPasswords no',
    'UsePAM no',
    // The key files live in a temp directory whose modes are the test runner's business.
    'StrictModes no',
    'ChrootDirectory none',
    'DisableForwarding yes',
    'PermitTTY no',
    'PermitUserEnvironment no',
    'PermitUserRC no',
    'UseDNS no',
    'PrintMotd no',
    'PrintLastLog no',
    'LogLevel VERBOSE',
    // Failed logins are part of the tests; newer sshd would otherwise start refusing loopback.
    'PerSourcePenalties no',
  ];
}

/**
 * prepareConfig writes the config and checks it with `sshd -t`, dropping options this sshd does not
 * know and creating the privilege-separation directory sshd requires when run as root.
 */
async function prepareConfig(sshd: string, path: string, lines: string[]): Promise<void> {
  let current = [...lines];
  for (let round = 0; round < 5; round++) {
    writeFileSync(path, current.join('\n') + '\n', { mode: 0o600 });
    const out = await execFileAsync(sshd, ['-t', '-f', path], { timeout: 10_000 }).then(
      () => undefined,
      (err: { stderr?: string; message: string }) => err.stderr || err.message,
    );
    if (out === undefined) return;
    const unknown = /line (\d+): Bad configuration option: (\S+)/.exec(out);
    if (unknown && current[Number(unknown[1]) - 1]?.startsWith('PerSourcePenalties')) {
      current = current.filter((l) => !l.startsWith('PerSourcePenalties'));
      continue;
    }
    const privsep = /Missing privilege separation directory: (\/\S+)/.exec(out);
    if (privsep && process.getuid?.() === 0 && !existsSync(privsep[1]!)) {
      mkdirSync(privsep[1]!, { recursive: true, mode: 0o755 });
      continue;
    }
    throw new Error(`sshd refused the test configuration (${path}):\n${out.trim().slice(0, 4000)}`);
  }
  throw new Error(`sshd kept refusing the test configuration (${path})`);
}

async function keyPair(dir: string, name: string): Promise<{ privateKeyPath: string; privateKey: string; publicKey: string }> {
  const privateKeyPath = join(dir, `${name}_ed25519`);
  await execFileAsync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${name}@skiff.invalid`, '-f', privateKeyPath], { timeout: 10_000 });
  return { privateKeyPath, privateKey: readFileSync(privateKeyPath, 'utf8'), publicKey: readFileSync(`${privateKeyPath}.pub`, 'utf8').trim() };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** waitFor polls a condition every 20 ms until it holds (true) or the time is up (false). */
async function waitFor(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

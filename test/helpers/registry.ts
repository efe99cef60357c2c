import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { type AddressInfo,createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

import bcrypt from 'bcryptjs';
import { importPKCS8, SignJWT } from 'jose';

import { hasBinary } from './system-deps.js';

/** The Debian docker-registry binary the tests run. */
export const REGISTRY_BIN = '/usr/bin/docker-registry';

/** hasRegistryTools tells whether docker-registry and skopeo are installed (failing in CI when they are not). */
export function hasRegistryTools(): boolean {
  const registry = hasBinary('docker-registry');
  const skopeo = hasBinary('skopeo');
  return registry && skopeo;
}

export interface RegistryOptions {
  /** Serve HTTPS with a certificate from a CA generated for this registry. */
  tls?: boolean;
  /** Require basic auth with this account (an htpasswd file with a bcrypt hash). */
  basic?: { username: string; password: string };
  /** Require bearer tokens from a token server started in this process, which accepts this account. */
  token?: { username: string; password: string };
}

export interface TestRegistry {
  /** `127.0.0.1:PORT`, the registry part of a reference. */
  host: string;
  /** `http://` or `https://` base URL. */
  url: string;
  /** The registry's filesystem storage root (tests corrupt files under it). */
  storage: string;
  /** PEM of the CA that signed the registry's certificate (TLS variant). */
  caPem?: string;
  /** A directory with the CA as `ca.crt`, for skopeo's --cert-dir. */
  certDir?: string;
  /** The token server's `HOST:PORT` (token variant): plain HTTP, so clients must allow it as insecure. */
  tokenHost?: string;
  /** How many tokens the token server issued. */
  tokensIssued(): number;
  /** blobPath is where the registry keeps a blob's bytes. */
  blobPath(digest: string): string;
  stop(): Promise<void>;
}

/** freePort asks the kernel for a free loopback port. */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: 'ignore' });
}

/** makeCa writes a CA and a certificate for `cn` (with an IP SAN for 127.0.0.1) signed by it, into dir. */
export function makeCa(dir: string, name: string, cn = '127.0.0.1'): { caPem: string; certPath: string; keyPath: string; caPath: string } {
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}-ca.key`, '-out', `${name}-ca.pem`, '-days', '2', '-subj', `/CN=${name} test CA`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`], dir);
  writeFileSync(join(dir, `${name}.ext`), `subjectAltName=IP:127.0.0.1,DNS:localhost\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n`);
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${name}-ca.pem`, '-CAkey', `${name}-ca.key`, '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`], dir);
  // jose reads PKCS#8; openssl writes EC keys as PKCS#8 already with -newkey, but be explicit.
  openssl(['pkcs8', '-topk8', '-nocrypt', '-in', `${name}.key`, '-out', `${name}.p8`], dir);
  return { caPem: readFileSync(join(dir, `${name}-ca.pem`), 'utf8'), certPath: join(dir, `${name}.pem`), keyPath: join(dir, `${name}.key`), caPath: join(dir, `${name}-ca.pem`) };
}

/**
 * startRegistry runs `docker-registry serve CONFIG` on a free loopback port with filesystem storage
 * in a temporary directory, and resolves once `/v2/` answers. Call stop() when the file ends.
 */
export async function startRegistry(opts: RegistryOptions = {}): Promise<TestRegistry> {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-registry-'));
  const storage = join(dir, 'storage');
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const lines = ['version: 0.1', 'log:', '  level: error', '  accesslog:', '    disabled: true', 'storage:', '  filesystem:', `    rootdirectory: ${storage}`, '  delete:', '    enabled: true', 'http:', `  addr: ${host}`, '  secret: skiff-test-secret'];
  let caPem: string | undefined;
  let certDir: string | undefined;
  if (opts.tls) {
    const ca = makeCa(dir, 'registry');
    caPem = ca.caPem;
    lines.push('  tls:', `    certificate: ${ca.certPath}`, `    key: ${ca.keyPath}`);
    certDir = join(dir, 'certs');
    execFileSync('mkdir', ['-p', certDir]);
    writeFileSync(join(certDir, 'ca.crt'), ca.caPem);
  }
  let tokenServer: http.Server | undefined;
  let tokenHost: string | undefined;
  let issued = 0;
  if (opts.basic) {
    writeFileSync(join(dir, 'htpasswd'), `${opts.basic.username}:${bcrypt.hashSync(opts.basic.password, 5)}\n`);
    lines.push('auth:', '  htpasswd:', '    realm: skiff-test', `    path: ${join(dir, 'htpasswd')}`);
  } else if (opts.token) {
    const signer = makeCa(dir, 'token', 'skiff test token signer');
    const key = await importPKCS8(readFileSync(join(dir, 'token.p8'), 'utf8'), 'ES256');
    const leafDer = Buffer.from(new X509Certificate(readFileSync(signer.certPath)).raw).toString('base64');
    const account = opts.token;
    const service = 'skiff-test-registry';
    const issuer = 'skiff-test-token-issuer';
    tokenServer = http.createServer((req, res) => {
      void (async () => {
        const u = new URL(req.url ?? '/', 'http://x');
        const auth = req.headers.authorization ?? '';
        const given = auth.startsWith('Basic ') ? Buffer.from(auth.slice(6), 'base64').toString('utf8') : undefined;
        if (given !== undefined && given !== `${account.username}:${account.password}`) {
          res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"bad credentials"}');
          return;
        }
        // Anonymous clients get a token with no access; the registry then refuses them.
        const access = given === undefined ? [] : u.searchParams.getAll('scope').flatMap((s) => {
          const [type, ...rest] = s.split(':');
          const actions = rest.pop()!.split(',');
          return [{ type, name: rest.join(':'), actions }];
        });
        const now = Math.floor(Date.now() / 1000);
        const token = await new SignJWT({ access })
          .setProtectedHeader({ alg: 'ES256', typ: 'JWT', x5c: [leafDer] })
          .setIssuer(issuer)
          .setAudience(u.searchParams.get('service') ?? service)
          .setSubject(given ? account.username : '')
          .setIssuedAt(now - 5)
          .setNotBefore(now - 5)
          .setExpirationTime(now + 300)
          .setJti(String(++issued))
          .sign(key);
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token, expires_in: 300, issued_at: new Date().toISOString() }));
      })();
    });
    await new Promise<void>((r) => tokenServer!.listen(0, '127.0.0.1', () => r()));
    tokenHost = `127.0.0.1:${(tokenServer.address() as AddressInfo).port}`;
    lines.push('auth:', '  token:', `    realm: http://${tokenHost}/token`, `    service: ${service}`, `    issuer: ${issuer}`, `    rootcertbundle: ${signer.caPath}`);
  }
  const config = join(dir, 'config.yml');
  writeFileSync(config, lines.join('\n') + '\n');
  const proc: ChildProcess = spawn(REGISTRY_BIN, ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (d) => (stderr += d));
  const url = `${opts.tls ? 'https' : 'http'}://${host}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`docker-registry exited with ${proc.exitCode}: ${stderr}`);
    const up = await probe(host, !!opts.tls);
    if (up) break;
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`docker-registry did not answer on ${host} within 15 s: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    host,
    url,
    storage,
    caPem,
    certDir,
    tokenHost,
    tokensIssued: () => issued,
    blobPath: (digest) => {
      const hex = digest.replace(/^sha256:/, '');
      return join(storage, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
    },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 3_000))]);
        if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      }
      await new Promise<void>((r) => (tokenServer ? tokenServer.close(() => r()) : r()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** probe tells whether something answers HTTP(S) on host (any status). */
function probe(host: string, tls: boolean): Promise<boolean> {
  return new Promise((resolve) => {
    const [h, p] = host.split(':');
    const req = (tls ? https : http).request({ host: h, port: Number(p), path: '/v2/', method: 'GET', rejectUnauthorized: false, timeout: 1_000 }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}

/** skopeo runs skopeo with an insecure policy (the tests do not test signature policy) and returns stdout. */
export async function skopeo(args: string[], timeoutMs = 60_000): Promise<string> {
  const { stdout } = await execFileAsync('skopeo', ['--insecure-policy', ...args], { encoding: 'utf8', timeout: timeoutMs });
  return stdout;
}

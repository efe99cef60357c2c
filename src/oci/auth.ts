import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

import { OciCredentialsError } from './errors.js';

/**
 * Credentials for one registry, as a docker `config.json` or a `kubernetes.io/dockerconfigjson`
 * Secret holds them. `source` names where they came from, for messages (never the values).
 */
export interface Credentials {
  username?: string;
  password?: string;
  /** An OAuth2 refresh token (`identitytoken`), exchanged at the token realm with a POST. */
  identityToken?: string;
  /** A bearer token to send as is (`registrytoken`). */
  registryToken?: string;
  source: string;
}

/** CredentialProvider answers the credentials for a registry host (`HOST[:PORT]`), if any. */
export type CredentialProvider = (registry: string) => Credentials | undefined;

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
  registrytoken?: string;
}

/**
 * DockerConfig is the `auths` part of a docker `config.json` (the format `docker login` writes and a
 * `kubernetes.io/dockerconfigjson` Secret carries): entries keyed by registry, with `auth`
 * (base64 `user:password`), or `username`/`password`, or `identitytoken`. Credential helpers
 * (`credsStore`, `credHelpers`) are not run: Skiff never executes programs named in a config file.
 */
export class DockerConfig {
  private readonly entries = new Map<string, Credentials>();

  private constructor(readonly source: string) {}

  /** parse reads the JSON text of a config.json (or the `.dockerconfigjson` of a Secret). */
  static parse(text: string, source: string): DockerConfig {
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      throw new OciCredentialsError(`${source} is not JSON; it must be a docker config.json ({"auths": {"HOST": {"auth": "BASE64"}}})`);
    }
    if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new OciCredentialsError(`${source} is not a JSON object with "auths"`);
    const out = new DockerConfig(source);
    // The older .dockercfg shape keeps the entries at the top level; the newer one under "auths".
    const auths = (doc as { auths?: unknown }).auths ?? doc;
    if (!auths || typeof auths !== 'object' || Array.isArray(auths)) throw new OciCredentialsError(`${source}: "auths" must be an object keyed by registry host`);
    for (const [key, raw] of Object.entries(auths as Record<string, unknown>)) {
      if (!raw || typeof raw !== 'object') continue;
      const e = raw as AuthEntry;
      const host = normaliseRegistryKey(key);
      if (!host) continue;
      const creds: Credentials = { source: `${source} (auths["${key}"])` };
      if (typeof e.auth === 'string' && e.auth) {
        const decoded = Buffer.from(e.auth, 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        if (colon < 0) throw new OciCredentialsError(`${source}: auths["${key}"].auth is not base64 of USER:PASSWORD`);
        creds.username = decoded.slice(0, colon);
        creds.password = decoded.slice(colon + 1);
      } else if (typeof e.username === 'string') {
        creds.username = e.username;
        creds.password = typeof e.password === 'string' ? e.password : '';
      }
      if (typeof e.identitytoken === 'string' && e.identitytoken) creds.identityToken = e.identitytoken;
      if (typeof e.registrytoken === 'string' && e.registrytoken) creds.registryToken = e.registrytoken;
      if (creds.username !== undefined || creds.identityToken || creds.registryToken) out.entries.set(host, creds);
    }
    return out;
  }

  /** load reads a config.json file; a missing file is an empty config when `optional`. */
  static load(path: string, opts: { optional?: boolean } = {}): DockerConfig {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if (opts.optional && (err as NodeJS.ErrnoException).code === 'ENOENT') return new DockerConfig(path);
      throw new OciCredentialsError(`cannot read the registry credentials file ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'}); pass another with --registry-config FILE`);
    }
    return DockerConfig.parse(text, path);
  }

  /** empty is a config without entries. */
  static empty(source = 'no credentials'): DockerConfig {
    return new DockerConfig(source);
  }

  /** get returns the credentials for a registry host (`HOST[:PORT]`), if the config has an entry for it. */
  get(registry: string): Credentials | undefined {
    return this.entries.get(normaliseRegistryKey(registry) ?? registry);
  }

  /** size is the number of usable entries. */
  get size(): number {
    return this.entries.size;
  }

  /** provider is this config as a CredentialProvider. */
  provider(): CredentialProvider {
    return (registry) => this.get(registry);
  }
}

/** defaultDockerConfigPath is `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. */
export function defaultDockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.DOCKER_CONFIG || join(homedir(), '.docker'), 'config.json');
}

/** chainProviders asks each provider in turn; the first answer wins. */
export function chainProviders(...providers: Array<CredentialProvider | undefined>): CredentialProvider {
  const list = providers.filter((p): p is CredentialProvider => !!p);
  return (registry) => {
    for (const p of list) {
      const c = p(registry);
      if (c) return c;
    }
    return undefined;
  };
}

const DOCKER_HUB_KEYS = new Set(['index.docker.io', 'registry-1.docker.io', 'docker.io', 'registry.hub.docker.com']);

/** normaliseRegistryKey turns `https://index.docker.io/v1/`, `http://host:5000`, `HOST:PORT/` into the bare `HOST[:PORT]`. */
export function normaliseRegistryKey(key: string): string | undefined {
  let k = key.trim().toLowerCase();
  k = k.replace(/^[a-z][a-z0-9+.-]*:\/\//, '');
  const slash = k.indexOf('/');
  if (slash >= 0) k = k.slice(0, slash);
  if (!k) return undefined;
  return DOCKER_HUB_KEYS.has(k) ? 'docker.io' : k;
}

/** A parsed `WWW-Authenticate` challenge. */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/**
 * parseChallenges reads a `WWW-Authenticate` header: one or more `SCHEME k="v", k2=v2` challenges.
 * Commas inside quoted values are kept (scopes such as `repository:a:pull,push` contain them).
 */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  const text = Array.isArray(header) ? header.join(', ') : (header ?? '');
  const out: Challenge[] = [];
  const re = /\s*([A-Za-z][A-Za-z0-9._~+/-]*)(?:\s+|$)((?:\s*,?\s*[A-Za-z0-9_.-]+\s*=\s*(?:"(?:[^"\\]|\\.)*"|[^,\s]*))*)/y;
  let pos = 0;
  while (pos < text.length) {
    re.lastIndex = pos;
    const m = re.exec(text);
    if (!m || m[0].length === 0) break;
    const params: Record<string, string> = {};
    const pr = /([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g;
    let p: RegExpExecArray | null;
    while ((p = pr.exec(m[2] ?? ''))) params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : (p[3] ?? '');
    out.push({ scheme: m[1]!.toLowerCase(), params });
    pos = re.lastIndex;
    while (text[pos] === ',' || text[pos] === ' ') pos++;
  }
  return out;
}

/** credentialKey is a non-reversible label of credentials: tokens are cached per identity, never across identities. */
export function credentialKey(c: Credentials | undefined): string {
  if (!c) return 'anonymous';
  return createHash('sha256').update(JSON.stringify([c.username ?? '', c.password ?? '', c.identityToken ?? '', c.registryToken ?? ''])).digest('hex').slice(0, 16);
}

/** basicHeader renders `Basic base64(user:password)`. */
export function basicHeader(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.username ?? ''}:${c.password ?? ''}`, 'utf8').toString('base64')}`;
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

/**
 * TokenCache keeps bearer tokens per realm, service, scope and credential identity until shortly
 * before they expire. It is owned by one client (and the clients derived from it), never global.
 */
export class TokenCache {
  private readonly tokens = new Map<string, CachedToken>();

  constructor(private readonly maxEntries = 256) {}

  get(key: string, now = Date.now()): string | undefined {
    const t = this.tokens.get(key);
    if (!t) return undefined;
    if (t.expiresAt <= now) {
      this.tokens.delete(key);
      return undefined;
    }
    return t.token;
  }

  /** set keeps a token for `expiresInS` seconds less a margin (tokens live 60 s when the server does not say). */
  set(key: string, token: string, expiresInS: number | undefined, now = Date.now()): void {
    const life = Math.max(0, (expiresInS && expiresInS > 0 ? expiresInS : 60) * 1000 - 5_000);
    if (this.tokens.size >= this.maxEntries) this.tokens.delete(this.tokens.keys().next().value!);
    this.tokens.set(key, { token, expiresAt: now + life });
  }

  /** drop forgets a token the registry refused. */
  drop(key: string): void {
    this.tokens.delete(key);
  }
}

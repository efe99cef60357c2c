import { basicHeader, type Challenge, credentialKey, type CredentialProvider, type Credentials, parseChallenges, TokenCache } from './auth.js';
import { OciDeniedError, OciUnauthorizedError } from './errors.js';
import type { HttpRequest, HttpResponse, Transport } from './transport.js';

/** What a request needs from a repository: `pull`, or `pull,push`. */
export type Actions = 'pull' | 'pull,push';

/**
 * Authorizer sends registry requests with the right credentials. A request goes out with what is
 * known to work for the registry (a cached bearer token for the scope, or basic credentials); a 401
 * answer's `WWW-Authenticate` challenge says what to do: basic credentials from the provider, or the
 * bearer token flow (GET the realm with `service` and `scope`, with basic credentials when there are
 * any; POST an OAuth2 refresh-token grant when the credentials are an identity token). Tokens are
 * cached per realm, service, scope and credential identity until shortly before they expire.
 */
export class Authorizer {
  /** The last challenge seen per registry, so the next request skips the 401 round trip. */
  private readonly challenges: Map<string, Challenge>;
  private readonly tokens: TokenCache;

  constructor(
    private readonly transport: Transport,
    private readonly credentials: CredentialProvider,
    shared?: { challenges: Map<string, Challenge>; tokens: TokenCache },
  ) {
    this.challenges = shared?.challenges ?? new Map();
    this.tokens = shared?.tokens ?? new TokenCache();
  }

  /** shared is the state a sibling authorizer (other credentials, same registries) reuses. */
  get shared(): { challenges: Map<string, Challenge>; tokens: TokenCache } {
    return { challenges: this.challenges, tokens: this.tokens };
  }

  /** send sends `req` to `registry` for `repository` with `actions`, authenticating as the registry asks. */
  async send(registry: string, repository: string, actions: Actions, req: HttpRequest): Promise<HttpResponse> {
    const creds = this.credentials(registry);
    const scope = `repository:${repository}:${actions}`;
    const known = this.challenges.get(registry);
    let auth = known ? await this.authorization(registry, known, [scope], creds, req.what, false) : undefined;
    let res = await this.transport.request(withAuth(req, auth));
    if (res.status !== 401) return this.checkDenied(res, req, creds);
    const challenge = pickChallenge(res.headers['www-authenticate']);
    res.discard();
    if (!challenge) throw new OciUnauthorizedError(`${req.what}: the registry answered 401 without a challenge it accepts (Bearer or Basic)${hint(creds)}`);
    this.challenges.set(registry, challenge);
    const scopes = [scope];
    const asked = challenge.params.scope;
    if (asked && asked !== scope) scopes.push(...asked.split(' ').filter((s) => s && s !== scope));
    const before = auth;
    auth = await this.authorization(registry, challenge, scopes, creds, req.what, true);
    if (auth === undefined || auth === before) {
      throw new OciUnauthorizedError(`${req.what}: the registry needs credentials and ${creds ? `refused those from ${creds.source}` : 'none are configured'}${hint(creds)}`);
    }
    res = await this.transport.request(withAuth(req, auth));
    if (res.status === 401) {
      res.discard();
      if (challenge.scheme === 'bearer') this.tokens.drop(tokenKey(challenge, scopes, creds));
      throw new OciUnauthorizedError(`${req.what}: the registry refused ${creds ? `the credentials from ${creds.source}` : 'anonymous access'}${hint(creds)}`);
    }
    return this.checkDenied(res, req, creds);
  }

  private checkDenied(res: HttpResponse, req: HttpRequest, creds: Credentials | undefined): HttpResponse {
    if (res.status !== 403) return res;
    res.discard();
    throw new OciDeniedError(`${req.what}: the registry denied access (HTTP 403) to ${creds ? `the account from ${creds.source}` : 'anonymous clients'}; ask for ${req.method === 'GET' || req.method === 'HEAD' ? 'pull' : 'push'} access to the repository`);
  }

  /** authorization computes the Authorization header for a challenge; `fresh` fetches a token even when one is cached. */
  private async authorization(registry: string, challenge: Challenge, scopes: string[], creds: Credentials | undefined, what: string, fresh: boolean): Promise<string | undefined> {
    if (challenge.scheme === 'basic') return creds?.username !== undefined ? basicHeader(creds) : undefined;
    if (challenge.scheme !== 'bearer') return undefined;
    if (creds?.registryToken) return `Bearer ${creds.registryToken}`;
    const key = tokenKey(challenge, scopes, creds);
    const cached = this.tokens.get(key);
    if (cached && !fresh) return `Bearer ${cached}`;
    const token = await this.fetchToken(registry, challenge, scopes, creds, what);
    return token ? `Bearer ${token}` : undefined;
  }

  private async fetchToken(registry: string, challenge: Challenge, scopes: string[], creds: Credentials | undefined, what: string): Promise<string | undefined> {
    const realm = challenge.params.realm;
    let url: URL;
    try {
      url = new URL(realm ?? '');
    } catch {
      throw new OciUnauthorizedError(`${what}: the registry's Bearer challenge has no usable realm URL`);
    }
    const service = challenge.params.service;
    const tokenWhat = `token for ${registry} from ${url.host}`;
    let res: HttpResponse;
    if (creds?.identityToken) {
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.identityToken, client_id: 'skiff', ...(service ? { service } : {}), scope: scopes.join(' ') });
      res = await this.transport.request({ method: 'POST', url, what: tokenWhat, body: new Uint8Array(Buffer.from(form.toString())), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    } else {
      if (service) url.searchParams.set('service', service);
      for (const s of scopes) url.searchParams.append('scope', s);
      const headers: Record<string, string> = {};
      if (creds?.username !== undefined) headers.authorization = basicHeader(creds);
      res = await this.transport.request({ method: 'GET', url, what: tokenWhat, headers });
    }
    if (res.status === 401 || res.status === 403) {
      res.discard();
      throw new OciUnauthorizedError(`${what}: the token service at ${url.host} refused ${creds ? `the credentials from ${creds.source}` : 'anonymous access'} (HTTP ${res.status})${hint(creds)}`);
    }
    if (res.status !== 200) {
      res.discard();
      throw new OciUnauthorizedError(`${what}: the token service at ${url.host} answered HTTP ${res.status}`);
    }
    let body: { token?: string; access_token?: string; expires_in?: number };
    try {
      body = JSON.parse(Buffer.from(await res.bytes(1024 * 1024)).toString('utf8')) as typeof body;
    } catch {
      throw new OciUnauthorizedError(`${what}: the token service at ${url.host} did not answer JSON with a token`);
    }
    const token = body.token || body.access_token;
    if (typeof token !== 'string' || !token) throw new OciUnauthorizedError(`${what}: the token service at ${url.host} answered without a token`);
    this.tokens.set(tokenKey(challenge, scopes, creds), token, typeof body.expires_in === 'number' ? body.expires_in : undefined);
    return token;
  }
}

function tokenKey(challenge: Challenge, scopes: string[], creds: Credentials | undefined): string {
  return `${challenge.params.realm ?? ''}|${challenge.params.service ?? ''}|${[...scopes].sort().join(' ')}|${credentialKey(creds)}`;
}

function pickChallenge(header: string | string[] | undefined): Challenge | undefined {
  const all = parseChallenges(header);
  return all.find((c) => c.scheme === 'bearer') ?? all.find((c) => c.scheme === 'basic');
}

function withAuth(req: HttpRequest, auth: string | undefined): HttpRequest {
  return auth ? { ...req, headers: { ...(req.headers ?? {}), authorization: auth } } : req;
}

function hint(creds: Credentials | undefined): string {
  return creds
    ? '; check the user name and password (or token) for this registry'
    : '; give credentials with --registry-config FILE (a docker config.json) or, for a Function, spec.imagePullSecrets naming a kubernetes.io/dockerconfigjson Secret';
}

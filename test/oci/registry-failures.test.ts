import http from 'node:http';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createRegistryClient, encodeJson, MediaTypes, parseChallenges, parseReference, sha256Of } from '../../src/oci/index.js';
import { UpstreamGuard } from '../../src/security/index.js';

// Loopback servers that misbehave on purpose: nothing on this machine answers the referrers API or
// redirects blobs to storage, so these stand in for registries that do.
const permissive = UpstreamGuard.permissive();
const blob = new Uint8Array(Buffer.from('blob bytes kept in storage'));
const blobDigest = sha256Of(blob);
const subject = sha256Of(new Uint8Array([1, 2, 3]));

interface Seen {
  path: string;
  auth?: string;
}

async function listen(handler: http.RequestListener): Promise<{ server: http.Server; host: string }> {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { server, host: `127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describe('registry client: failing and unusual registries', () => {
  const seen: Seen[] = [];
  let fake: { server: http.Server; host: string };
  let storage: { server: http.Server; host: string };
  let staller: Server;
  let stallHost: string;
  const sockets = new Set<Socket>();
  let failures = 0;

  beforeAll(async () => {
    storage = await listen((req, res) => {
      seen.push({ path: `storage:${req.url}`, auth: req.headers.authorization });
      res.writeHead(200, { 'content-length': String(blob.length) }).end(Buffer.from(blob));
    });
    fake = await listen((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      seen.push({ path: url.pathname, auth: req.headers.authorization });
      if (url.pathname.startsWith('/v2/private/')) {
        if (req.headers.authorization === 'Basic ' + Buffer.from('u:p').toString('base64')) return void res.writeHead(404).end();
        return void res.writeHead(401, { 'www-authenticate': 'Basic realm="fake"' }).end();
      }
      if (url.pathname.startsWith('/v2/broken/')) {
        failures++;
        return void res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'UNKNOWN', message: 'storage is on fire' }] }));
      }
      if (url.pathname === `/v2/redirect/blobs/${blobDigest}`) {
        return void res.writeHead(307, { location: `http://${storage.host}/bucket/object?sig=1` }).end();
      }
      if (url.pathname === `/v2/refs/referrers/${subject}`) {
        const all = [
          { mediaType: MediaTypes.ociManifest, digest: sha256Of(new Uint8Array([4])), size: 10, artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json' },
          { mediaType: MediaTypes.ociManifest, digest: sha256Of(new Uint8Array([5])), size: 11, artifactType: 'application/spdx+json' },
        ];
        const filter = url.searchParams.get('artifactType');
        const body = encodeJson({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: filter ? all.filter((d) => d.artifactType === filter) : all });
        return void res.writeHead(200, { 'content-type': MediaTypes.ociIndex, ...(filter ? { 'oci-filters-applied': 'artifactType' } : {}) }).end(Buffer.from(body));
      }
      if (url.pathname === '/v2/paged/tags/list') {
        const last = url.searchParams.get('last');
        if (!last) return void res.writeHead(200, { link: '</v2/paged/tags/list?n=2&last=b>; rel="next"' }).end(JSON.stringify({ name: 'paged', tags: ['a', 'b'] }));
        return void res.writeHead(200).end(JSON.stringify({ name: 'paged', tags: ['c'] }));
      }
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'NAME_UNKNOWN', message: 'repository name not known to registry' }] }));
    });
    // Accepts connections and never answers.
    staller = createServer((s) => {
      sockets.add(s);
      s.on('error', () => {});
    });
    await new Promise<void>((r) => staller.listen(0, '127.0.0.1', () => r()));
    stallHost = `127.0.0.1:${(staller.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await Promise.all([fake, storage].map(({ server }) => new Promise((r) => server.close(r))));
    await new Promise((r) => staller.close(r));
  });

  const client = (extra: Parameters<typeof createRegistryClient>[0] extends infer O ? Partial<O> : never = {}) =>
    createRegistryClient({ upstreams: permissive, insecure: [fake.host, storage.host, stallHost], retryBaseMs: 10, ...extra });

  it('answers 404 with the registry error code and the reference', async () => {
    const c = client();
    await expect(c.getManifest(parseReference(`${fake.host}/nothing/here:v1`))).rejects.toMatchObject({ code: 'oci_not_found', message: expect.stringMatching(/nothing\/here:v1 not found \(NAME_UNKNOWN/) });
    c.close();
  });

  it('retries a 500 a bounded number of times, then says so', async () => {
    const c = client({ attempts: 3 });
    failures = 0;
    await expect(c.getManifest(parseReference(`${fake.host}/broken/app:v1`))).rejects.toMatchObject({ code: 'oci_registry_error', status: 500, message: expect.stringContaining('storage is on fire') });
    expect(failures).toBe(3);
    c.close();
  });

  it('answers 401 when credentials are needed and none are given; sends them when a provider has them', async () => {
    const ref = parseReference(`${fake.host}/private/app:v1`);
    const anon = client({ attempts: 1 });
    await expect(anon.resolve(ref)).rejects.toMatchObject({ code: 'oci_unauthorized' });
    anon.close();
    const withCreds = client({ attempts: 1, credentials: () => ({ username: 'u', password: 'p', source: 'a test' }) });
    await expect(withCreds.resolve(ref)).rejects.toMatchObject({ code: 'oci_not_found' });
    withCreds.close();
  });

  it('gives up on a registry that accepts and never answers, within the deadline', async () => {
    const c = client({ requestTimeoutMs: 300, attempts: 2 });
    const t0 = Date.now();
    await expect(c.resolve(parseReference(`${stallHost}/slow/app:v1`))).rejects.toMatchObject({ code: 'oci_timeout', message: expect.stringContaining(stallHost) });
    expect(Date.now() - t0).toBeLessThan(5_000);
    c.close();
  });

  it('follows a blob redirect to storage without the registry credentials', async () => {
    seen.length = 0;
    const c = client({ credentials: () => ({ username: 'u', password: 'p', source: 'a test' }) });
    // Prime the challenge so the first request carries credentials.
    await c.resolve(parseReference(`${fake.host}/private/app:v1`)).catch(() => {});
    const bytes = await c.getBlob(parseReference(`${fake.host}/redirect:v1`), blobDigest);
    expect(Buffer.from(bytes).toString()).toBe('blob bytes kept in storage');
    const hop = seen.find((s) => s.path.startsWith('storage:'));
    expect(hop).toBeDefined();
    expect(hop!.auth).toBeUndefined();
    c.close();
  });

  it('uses the referrers API when the registry has it, with and without server-side filtering', async () => {
    const c = client();
    const ref = parseReference(`${fake.host}/refs:v1`);
    expect((await c.referrers(ref, subject)).map((d) => d.artifactType)).toEqual(['application/vnd.dev.sigstore.bundle.v0.3+json', 'application/spdx+json']);
    expect((await c.referrers(ref, subject, { artifactType: 'application/spdx+json' })).map((d) => d.size)).toEqual([11]);
    c.close();
  });

  it('follows tag list pages', async () => {
    const c = client();
    expect(await c.listTags(parseReference(`${fake.host}/paged:v1`))).toEqual(['a', 'b', 'c']);
    c.close();
  });

  it('parses WWW-Authenticate challenges with commas inside quoted scopes', () => {
    expect(parseChallenges('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"')).toEqual([
      { scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull,push' } },
    ]);
    expect(parseChallenges('Basic realm="x"')).toEqual([{ scheme: 'basic', params: { realm: 'x' } }]);
  });
});

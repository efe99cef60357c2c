import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createRegistryClient, DockerConfig, parseReference, pullWasmModule, pushWasmModule } from '../../src/oci/index.js';
import { UpstreamGuard } from '../../src/security/index.js';
import { hasRegistryTools, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { wat } from '../helpers/wat.js';

const tools = hasRegistryTools();
const account = { username: 'skiff', password: 'correct horse' };
const permissive = UpstreamGuard.permissive();

function config(host: string, creds: { username: string; password: string }, form: 'auth' | 'fields' = 'auth'): DockerConfig {
  const entry = form === 'auth' ? { auth: Buffer.from(`${creds.username}:${creds.password}`).toString('base64') } : { username: creds.username, password: creds.password };
  return DockerConfig.parse(JSON.stringify({ auths: { [`https://${host}`]: entry } }), 'test config.json');
}

describe.skipIf(!tools)('registry client: TLS and authentication against docker-registry', () => {
  let tls: TestRegistry;
  let basic: TestRegistry;
  let token: TestRegistry;
  let mod: Uint8Array;

  beforeAll(async () => {
    [tls, basic, token] = await Promise.all([startRegistry({ tls: true }), startRegistry({ basic: account }), startRegistry({ token: account })]);
    mod = await wat('(module (func (export "_start")))');
  });
  afterAll(async () => {
    await Promise.all([tls?.stop(), basic?.stop(), token?.stop()]);
  });

  it('speaks HTTPS with the registry CA and refuses an unknown CA', async () => {
    const ref = parseReference(`${tls.host}/secure/app:v1`);
    const client = createRegistryClient({ upstreams: permissive, ca: tls.caPem! });
    const pushed = await pushWasmModule(client, ref, mod);
    expect((await pullWasmModule(client, ref)).manifestDigest).toBe(pushed.manifest.digest);
    client.close();
    const untrusting = createRegistryClient({ upstreams: permissive, attempts: 1 });
    await expect(untrusting.resolve(ref)).rejects.toMatchObject({ code: 'oci_unreachable', message: expect.stringContaining('--registry-ca') });
    untrusting.close();
  });

  it('authenticates with basic credentials from a docker config and refuses wrong ones', async () => {
    const ref = parseReference(`${basic.host}/private/app:v1`);
    const anonymous = createRegistryClient({ upstreams: permissive, insecure: [basic.host], attempts: 1 });
    await expect(anonymous.resolve(ref)).rejects.toMatchObject({ code: 'oci_unauthorized', message: expect.stringContaining('imagePullSecrets') });
    anonymous.close();
    const good = createRegistryClient({ upstreams: permissive, insecure: [basic.host], credentials: config(basic.host, account).provider() });
    const pushed = await pushWasmModule(good, ref, mod);
    expect((await good.resolve(ref)).digest).toBe(pushed.manifest.digest);
    good.close();
    const fields = createRegistryClient({ upstreams: permissive, insecure: [basic.host], credentials: config(basic.host, account, 'fields').provider() });
    expect((await pullWasmModule(fields, ref)).manifestDigest).toBe(pushed.manifest.digest);
    fields.close();
    const wrong = createRegistryClient({ upstreams: permissive, insecure: [basic.host], credentials: config(basic.host, { ...account, password: 'wrong' }).provider(), attempts: 1 });
    const err = await wrong.resolve(ref).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err).toMatchObject({ code: 'oci_unauthorized', message: expect.stringContaining('test config.json') });
    expect(err!.message).not.toContain('wrong');
    expect(err!.message).not.toContain(Buffer.from(`${account.username}:wrong`).toString('base64'));
    wrong.close();
  });

  it('follows the bearer token flow and reuses tokens per scope', async () => {
    const ref = parseReference(`${token.host}/tokened/app:v1`);
    const client = createRegistryClient({ upstreams: permissive, insecure: [token.host, token.tokenHost!], credentials: config(token.host, account).provider() });
    const pushed = await pushWasmModule(client, ref, mod);
    const afterPush = token.tokensIssued();
    expect(afterPush).toBeGreaterThan(0);
    // Pulls need a pull-only scope: one more token, then reused for every request after it.
    expect((await pullWasmModule(client, ref)).manifestDigest).toBe(pushed.manifest.digest);
    const afterPull = token.tokensIssued();
    expect(afterPull - afterPush).toBeLessThanOrEqual(1);
    await client.listTags(ref);
    await client.resolve({ ...ref, tag: 'v1' });
    expect(token.tokensIssued()).toBe(afterPull);
    client.close();
    const wrong = createRegistryClient({ upstreams: permissive, insecure: [token.host, token.tokenHost!], credentials: config(token.host, { ...account, password: 'nope' }).provider(), attempts: 1 });
    await expect(wrong.resolve(ref)).rejects.toMatchObject({ code: 'oci_unauthorized', message: expect.stringContaining('token service') });
    wrong.close();
    const anonymous = createRegistryClient({ upstreams: permissive, insecure: [token.host, token.tokenHost!], attempts: 1 });
    await expect(anonymous.resolve(ref)).rejects.toMatchObject({ code: 'oci_unauthorized' });
    anonymous.close();
  });

  it('does not reach a token realm the insecure list does not allow over plain HTTP', async () => {
    const ref = parseReference(`${token.host}/tokened/app:v1`);
    const client = createRegistryClient({ upstreams: permissive, insecure: [token.host], credentials: config(token.host, account).provider(), attempts: 1 });
    await expect(client.resolve(ref)).rejects.toMatchObject({ code: 'oci_insecure_refused', message: expect.stringContaining(token.tokenHost!) });
    client.close();
  });
});

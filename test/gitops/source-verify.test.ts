import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { readTrustedKeys, splitSignature, verifyCommit } from '../../src/gitops/source/verify.js';
import { type GitServer, type GitWorkTree, hasGit, type OpenPgpSigningKey, openPgpSigningKey, type SshSigningKey, sshSigningKey, startGitServer, stopGpgAgent } from '../helpers/git-server.js';
import { hasBinary } from '../helpers/system-deps.js';

const run = promisify(execFile);
const tools = hasGit() && hasBinary('ssh-keygen') && hasBinary('gpg');

describe.skipIf(!tools)('commit signature verification', () => {
  let server: GitServer;
  let repo: GitWorkTree;
  let dir: string;
  let ssh: SshSigningKey;
  let other: SshSigningKey;
  let pgp: OpenPgpSigningKey;
  const raw = async (sha: string) => (await run('git', ['cat-file', 'commit', sha], { cwd: repo.dir, encoding: 'buffer' })).stdout as Buffer;

  beforeAll(async () => {
    server = await startGitServer();
    repo = await server.createRepo('signed');
    dir = mkdtempSync(join(tmpdir(), 'sv-'));
    [ssh, other, pgp] = await Promise.all([sshSigningKey(dir), sshSigningKey(dir), openPgpSigningKey(dir)]);
  }, 60_000);
  afterAll(async () => {
    if (pgp) await stopGpgAgent(pgp);
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('accepts an SSH-signed commit (ed25519, ECDSA, RSA) against a .pub key or allowed_signers', async () => {
    for (const type of ['ed25519', 'ecdsa', 'rsa'] as const) {
      const key = type === 'ed25519' ? ssh : await sshSigningKey(dir, type);
      await repo.write({ [`${type}.txt`]: type });
      const sha = await repo.commit(`signed with ${type}`, { sign: key });
      const bytes = await raw(sha);
      const viaPub = await verifyCommit(bytes, await readTrustedKeys({ 'key.pub': key.publicKey }), sha);
      expect(viaPub).toMatchObject({ format: 'ssh' });
      expect(viaPub.fingerprint).toMatch(/^SHA256:/);
      await expect(verifyCommit(bytes, await readTrustedKeys({ allowed_signers: key.allowedSigners }), sha)).resolves.toMatchObject({ format: 'ssh' });
    }
  });

  it('accepts an OpenPGP-signed commit against its armored key', async () => {
    await repo.write({ 'pgp.txt': 'pgp' });
    const sha = await repo.commit('signed with gpg', { sign: pgp });
    const v = await verifyCommit(await raw(sha), await readTrustedKeys({ 'key.asc': pgp.armoredPublicKey }), sha);
    expect(v).toEqual({ format: 'openpgp', fingerprint: pgp.keyId });
  });

  it('refuses an unsigned commit, a wrong key, and a tampered commit', async () => {
    await repo.write({ 'plain.txt': 'plain' });
    const unsigned = await repo.commit('unsigned');
    const trusted = await readTrustedKeys({ 'key.pub': ssh.publicKey, 'key.asc': pgp.armoredPublicKey });
    await expect(verifyCommit(await raw(unsigned), trusted, unsigned)).rejects.toMatchObject({ reason: 'Unsigned', message: `commit ${unsigned} is not signed` });

    const byOther = await repo.commit('signed by a stranger', { sign: other });
    await expect(verifyCommit(await raw(byOther), trusted, byOther)).rejects.toMatchObject({ reason: 'UntrustedKey' });

    const signed = await repo.commit('signed', { sign: ssh });
    const tampered = Buffer.from((await raw(signed)).toString('latin1').replace('\nsigned\n', '\nsigned, then edited\n'), 'latin1');
    await expect(verifyCommit(tampered, trusted, signed)).rejects.toMatchObject({ reason: 'InvalidSignature' });

    const pgpSigned = await repo.commit('pgp signed', { sign: pgp });
    const pgpTampered = Buffer.from((await raw(pgpSigned)).toString('latin1').replace('\npgp signed\n', '\npgp signed!\n'), 'latin1');
    await expect(verifyCommit(pgpTampered, trusted, pgpSigned)).rejects.toMatchObject({ reason: 'InvalidSignature' });
    // An OpenPGP signature with only SSH keys trusted
    await expect(verifyCommit(await raw(pgpSigned), await readTrustedKeys({ 'key.pub': ssh.publicKey }), pgpSigned)).rejects.toMatchObject({ reason: 'UntrustedKey' });
  });

  it('splits the gpgsig header off exactly as git signs the payload', async () => {
    const sha = await repo.commit('split', { sign: ssh });
    const { payload, signature } = splitSignature(await raw(sha));
    expect(signature).toMatch(/^-----BEGIN SSH SIGNATURE-----\n[\s\S]*-----END SSH SIGNATURE-----$/);
    expect(payload.toString()).not.toMatch(/gpgsig/);
    expect(payload.toString()).toMatch(/\n\nsplit\n$/);
  });

  it('refuses a Secret without keys', async () => {
    await expect(readTrustedKeys({ 'README': 'nothing' })).rejects.toMatchObject({ reason: 'NoKeys' });
  });
});

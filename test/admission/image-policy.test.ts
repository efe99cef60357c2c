import { describe, expect, it } from 'vitest';

import {
  type ArtifactVerifier,
  type AuthorityVerdict,
  canonical,
  type CompiledImagePolicy,
  compileGlob,
  compileImagePolicy,
  ImagePolicyEnforcer,
  imagePolicyValidator,
  type VerifierAuthority,
} from '../../src/admission/index.js';
import { imagePolicyKind } from '../../src/api/kinds/image-policy.js';
import type { ResourceObject } from '../../src/api/kinds/types.js';

const DIGEST_A = `sha256:${'a'.repeat(64)}`;
const DIGEST_B = `sha256:${'b'.repeat(64)}`;
const PEM = '-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----';

function policy(name: string, spec: Record<string, unknown>): ResourceObject {
  return { apiVersion: 'skiff.dev/v1', kind: 'ImagePolicy', metadata: { name }, spec } as ResourceObject;
}

/**
 * A verifier that knows which (digest, authority) pairs carry a valid signature and which
 * attestations each has: the enforcer's decisions are what is under test here; the signatures
 * themselves are checked for real in test/signing and the supply-chain integration test.
 */
function verifier(signed: Record<string, Record<string, Array<{ predicateType: string; predicate: unknown }>>>, tags: Record<string, string> = {}): ArtifactVerifier & { calls: Array<{ digest: string; authority: VerifierAuthority }> } {
  const calls: Array<{ digest: string; authority: VerifierAuthority }> = [];
  return {
    calls,
    async resolve(reference) {
      const d = tags[reference];
      if (!d) throw new Error(`${reference}: manifest unknown`);
      return d;
    },
    async verify({ digest, authority }): Promise<AuthorityVerdict> {
      calls.push({ digest, authority });
      const atts = signed[digest]?.[authority.name];
      if (!atts) return { verified: false, reason: `no signature of ${digest} by ${authority.name}`, attestations: [] };
      return { verified: true, attestations: atts.filter((a) => authority.attestations.includes(a.predicateType)) };
    },
  };
}

function enforcer(policies: ResourceObject[], v: ArtifactVerifier, secrets: Record<string, string> = {}): ImagePolicyEnforcer {
  const compiled: CompiledImagePolicy[] = policies.map(compileImagePolicy);
  return new ImagePolicyEnforcer({
    policies: () => compiled,
    verifier: v,
    material: { secret: (ns, name) => secrets[`${ns}/${name}`], trustRoot: (n) => (n === 'root' ? { mediaType: 'x' } : undefined) },
  });
}

describe('image globs', () => {
  it('matches within a segment with * and across segments with **', () => {
    expect(compileGlob('127.0.0.1:5000/team/*').matches(canonical('127.0.0.1:5000/team/app:v1'))).toBe(true);
    expect(compileGlob('127.0.0.1:5000/team/*').matches(canonical('127.0.0.1:5000/team/sub/app:v1'))).toBe(false);
    expect(compileGlob('127.0.0.1:5000/team/**').matches(canonical('oci://127.0.0.1:5000/team/sub/app@' + DIGEST_A))).toBe(true);
    expect(compileGlob('127.0.0.1:5000/te?m/app').matches(canonical('127.0.0.1:5000/team/app'))).toBe(true);
  });

  it('applies Docker Hub defaults to globs and references alike', () => {
    expect(compileGlob('nginx').matches(canonical('docker.io/library/nginx:1.27'))).toBe(true);
    expect(compileGlob('index.docker.io/library/*').matches(canonical('nginx'))).toBe(true);
    expect(compileGlob('ghcr.io/*').matches(canonical('nginx'))).toBe(false);
  });

  it('matches a glob with a tag against the full reference only', () => {
    const g = compileGlob('registry.example/app:v*');
    expect(g.matches(canonical('registry.example/app:v2'))).toBe(true);
    expect(g.matches(canonical('registry.example/app:latest'))).toBe(false);
  });

  it('treats regex characters in a glob literally and stays linear on hostile globs', () => {
    expect(compileGlob('reg.example/a+b').matches(canonical('reg.example/aab'))).toBe(false);
    const g = compileGlob(`reg.example/${'*a'.repeat(30)}b`);
    const started = Date.now();
    expect(g.matches(canonical(`reg.example/${'a'.repeat(5000)}`))).toBe(false);
    expect(Date.now() - started).toBeLessThan(2000);
  });
});

describe('ImagePolicyEnforcer', () => {
  const keyPolicy = policy('signed', { images: [{ glob: '127.0.0.1:5000/team/**' }], authorities: [{ name: 'release-key', key: { data: PEM } }] });

  it('allows an artifact no policy covers without resolving it', async () => {
    const v = verifier({});
    const d = await enforcer([keyPolicy], v).check('oci://127.0.0.1:5000/other/app:v1');
    expect(d.allowed).toBe(true);
    expect(v.calls).toHaveLength(0);
  });

  it('resolves a tag, then allows a digest signed by the authority', async () => {
    const v = verifier({ [DIGEST_A]: { 'release-key': [] } }, { 'oci://127.0.0.1:5000/team/app:v1': DIGEST_A });
    const d = await enforcer([keyPolicy], v).check('oci://127.0.0.1:5000/team/app:v1');
    expect(d).toMatchObject({ allowed: true, digest: DIGEST_A, policies: [{ policy: 'signed', satisfied: true, authority: 'release-key' }] });
    expect(v.calls[0]!.authority.key?.pem).toBe(PEM);
  });

  it('refuses an unsigned artifact, naming the artifact, the policy, the authority and why', async () => {
    const v = verifier({}, { 'oci://127.0.0.1:5000/team/app:v1': DIGEST_B });
    const d = await enforcer([keyPolicy], v).check('oci://127.0.0.1:5000/team/app:v1');
    expect(d.allowed).toBe(false);
    expect(d.messages[0]).toContain('oci://127.0.0.1:5000/team/app:v1');
    expect(d.messages[0]).toContain(DIGEST_B);
    expect(d.messages[0]).toContain('ImagePolicy "signed"');
    expect(d.messages[0]).toContain('authority "release-key"');
    expect(d.messages[0]).toContain(`no signature of ${DIGEST_B}`);
  });

  it('checks the digest given at pull time, not what the tag names now', async () => {
    const v = verifier({ [DIGEST_A]: { 'release-key': [] } }, { 'oci://127.0.0.1:5000/team/app:v1': DIGEST_A });
    const d = await enforcer([keyPolicy], v).check('oci://127.0.0.1:5000/team/app:v1', DIGEST_B);
    expect(d.allowed).toBe(false);
    expect(v.calls.map((c) => c.digest)).toEqual([DIGEST_B]);
  });

  it('refuses when the tag cannot be resolved', async () => {
    const d = await enforcer([keyPolicy], verifier({})).check('oci://127.0.0.1:5000/team/app:gone');
    expect(d.allowed).toBe(false);
    expect(d.messages[0]).toContain('cannot be resolved to a digest');
    expect(d.messages[0]).toContain('manifest unknown');
  });

  it('needs every matching policy, and any one authority of each', async () => {
    const second = policy('also-keyless', {
      images: [{ glob: '127.0.0.1:5000/**' }],
      authorities: [
        { name: 'other-key', key: { data: PEM } },
        { name: 'ci', keyless: { identities: [{ issuer: 'https://issuer.example', subject: 'ci@example.com' }], trustRootRef: 'root' } },
      ],
    });
    const ok = verifier({ [DIGEST_A]: { 'release-key': [], ci: [] } });
    const d = await enforcer([keyPolicy, second], ok).check(`oci://127.0.0.1:5000/team/app@${DIGEST_A}`);
    expect(d.allowed).toBe(true);
    expect(d.policies.map((p) => [p.policy, p.authority])).toEqual([['signed', 'release-key'], ['also-keyless', 'ci']]);
    const keyless = ok.calls.find((c) => c.authority.name === 'ci')!.authority;
    expect(keyless.keyless).toEqual({ identities: [{ issuer: 'https://issuer.example', subject: 'ci@example.com' }], trustedRoot: { mediaType: 'x' } });

    const half = verifier({ [DIGEST_A]: { 'release-key': [] } });
    const refused = await enforcer([keyPolicy, second], half).check(`oci://127.0.0.1:5000/team/app@${DIGEST_A}`);
    expect(refused.allowed).toBe(false);
    expect(refused.messages).toHaveLength(1);
    expect(refused.messages[0]).toContain('"also-keyless"');
    expect(refused.messages[0]).toContain('authority "other-key"');
    expect(refused.messages[0]).toContain('authority "ci"');
  });

  it('admits with a warning in warn mode', async () => {
    const warn = policy('audit-only', { images: [{ glob: '127.0.0.1:5000/**' }], mode: 'warn', authorities: [{ key: { data: PEM } }] });
    const d = await enforcer([warn], verifier({})).check(`oci://127.0.0.1:5000/team/app@${DIGEST_A}`);
    expect(d.allowed).toBe(true);
    expect(d.warnings[0]).toContain('authority "authority-0"');
  });

  it('reads a key from a Secret and says which Secret is missing', async () => {
    const fromSecret = policy('secret-key', { images: [{ glob: '127.0.0.1:5000/**' }], authorities: [{ name: 'k', key: { secretRef: { name: 'cosign-pub', namespace: 'ops' } } }] });
    const v = verifier({ [DIGEST_A]: { k: [] } });
    expect((await enforcer([fromSecret], v, { 'ops/cosign-pub': PEM }).check(`oci://127.0.0.1:5000/a@${DIGEST_A}`)).allowed).toBe(true);
    const missing = await enforcer([fromSecret], v).check(`oci://127.0.0.1:5000/a@${DIGEST_A}`);
    expect(missing.allowed).toBe(false);
    expect(missing.messages[0]).toContain('Secret ops/cosign-pub does not exist');
  });

  it('requires attestations and decides on their predicate in Rego', async () => {
    const slsa = 'https://slsa.dev/provenance/v1';
    const attested = policy('provenance', {
      images: [{ glob: '127.0.0.1:5000/**' }],
      authorities: [
        {
          name: 'builder',
          key: { data: PEM },
          attestations: [
            {
              name: 'built-by-ci',
              predicateType: slsa,
              policy: { type: 'rego', data: 'package provenance\ndefault allow := false\nallow if input.predicate.buildDefinition.buildType == "https://ci.example/build@v1"' },
            },
          ],
        },
      ],
    });
    const good = { predicateType: slsa, predicate: { buildDefinition: { buildType: 'https://ci.example/build@v1' } } };
    const bad = { predicateType: slsa, predicate: { buildDefinition: { buildType: 'https://laptop.example' } } };
    const ref = `oci://127.0.0.1:5000/a@${DIGEST_A}`;
    expect((await enforcer([attested], verifier({ [DIGEST_A]: { builder: [good] } })).check(ref)).allowed).toBe(true);
    const wrong = await enforcer([attested], verifier({ [DIGEST_A]: { builder: [bad] } })).check(ref);
    expect(wrong.allowed).toBe(false);
    expect(wrong.messages[0]).toContain('attestation "built-by-ci"');
    expect(wrong.messages[0]).toContain('allow is false');
    const none = await enforcer([attested], verifier({ [DIGEST_A]: { builder: [] } })).check(ref);
    expect(none.messages[0]).toContain(`no verified attestation of type ${slsa}`);
  });

  it('stops a condition that loops past its deadline and refuses', async () => {
    const slow = policy('slow', {
      images: [{ glob: '127.0.0.1:5000/**' }],
      authorities: [
        {
          name: 'k',
          key: { data: PEM },
          attestations: [{ predicateType: 'custom', policy: { type: 'rego', data: 'package slow\nallow if { some i, j, k; x := numbers.range(1, 300)[i] + numbers.range(1, 300)[j] + numbers.range(1, 300)[k]; x < 0 }' } }],
        },
      ],
    });
    const d = await enforcer([slow], verifier({ [DIGEST_A]: { k: [{ predicateType: 'custom', predicate: {} }] } })).check(`oci://127.0.0.1:5000/a@${DIGEST_A}`);
    expect(d.allowed).toBe(false);
    expect(d.messages[0]).toContain('its condition failed');
  }, 10_000);
});

describe('ImagePolicy validation', () => {
  it('refuses an authority with both or neither of key and keyless, and bad regexps', () => {
    const obj = policy('bad', {
      images: [{ glob: 'x/**' }],
      authorities: [{ key: { data: PEM }, keyless: { identities: [{ issuer: 'i', subject: 's' }] } }, {}, { name: 'r', keyless: { identities: [{ issuerRegExp: '(', subject: 's' }, { issuer: 'i' }] } }],
    });
    const errors = imagePolicyKind.validate!(obj);
    expect(errors).toEqual(
      expect.arrayContaining([
        { field: 'spec.authorities[0]', message: 'needs exactly one of key or keyless' },
        { field: 'spec.authorities[1]', message: 'needs exactly one of key or keyless' },
        expect.objectContaining({ field: 'spec.authorities[2].keyless.identities[0].issuerRegExp' }),
        { field: 'spec.authorities[2].keyless.identities[1]', message: 'needs subject or subjectRegExp' },
      ]),
    );
  });

  it('refuses an attestation condition that does not compile, naming the field', () => {
    const obj = policy('bad-rego', { images: [{ glob: 'x/**' }], authorities: [{ key: { data: PEM }, attestations: [{ predicateType: 'custom', policy: { type: 'rego', data: 'package p\nallow if {' } }] }] });
    const errors = imagePolicyValidator(obj);
    expect(errors[0]!.field).toBe('spec.authorities[0].attestations[0].policy.data');
  });
});

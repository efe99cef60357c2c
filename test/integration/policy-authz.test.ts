import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll,beforeAll, describe, expect, it } from 'vitest';

import { cli, type RunningSkiff,startSkiff, waitFor } from '../helpers/skiff-process.js';
import { wagiWat,wat } from '../helpers/wat.js';

let s: RunningSkiff;
let dir: string;

const policy = (name: string, rego: string) => `apiVersion: skiff.dev/v1
kind: Policy
metadata: { name: ${name} }
spec:
  rego: |
${rego
  .split('\n')
  .map((l) => `    ${l}`)
  .join('\n')}
`;

beforeAll(async () => {
  s = await startSkiff();
  dir = mkdtempSync(join(tmpdir(), 'skiff-authz-'));
  writeFileSync(join(dir, 'ok.wasm'), await wat(wagiWat('Content-Type: text/plain\n\nbehind policy\n')));
});

afterAll(async () => {
  await s?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function policyStatus(name: string): Promise<any> {
  const r = await cli(['get', 'policy', name, '-o', 'json'], { skiff: s });
  return r.code === 0 ? JSON.parse(r.stdout).status : undefined;
}

describe('request authorization by Rego policies stored as resources', () => {
  it('allows, denies with the policy’s status and headers, and follows policy changes', async () => {
    writeFileSync(
      join(dir, 'all.yaml'),
      policy(
        'http-authz',
        `package http.authz

default decision := {"allowed": false, "http_status": 418, "headers": {"x-why": "not on the list"}}

decision := {"allowed": true, "headers": {"x-checked-by": "skiff"}} if {
  input.attributes.request.http.method == "GET"
  startswith(input.attributes.request.http.path, "/guarded/open")
}`,
      ) +
        `---
apiVersion: skiff.dev/v1
kind: Function
metadata: { name: guarded }
spec: { module: ./ok.wasm }
---
apiVersion: skiff.dev/v1
kind: Route
metadata: { name: guarded }
spec:
  filters: [{ authz: { policy: data.http.authz.decision } }]
  http:
    - match: [{ uri: { prefix: /guarded } }]
      route: [{ destination: { function: guarded } }]
`,
    );
    expect((await cli(['apply', '-f', join(dir, 'all.yaml')], { skiff: s })).code).toBe(0);
    await waitFor(async () => (await policyStatus('http-authz'))?.conditions?.[0]?.status === 'True', 'policy loaded');
    const ok = (await waitFor(async () => {
      const r = await fetch(`${s.gateway}/guarded/open`);
      return r.status === 200 ? r : undefined;
    }, 'allowed request'))!;
    expect(await ok.text()).toBe('behind policy\n');
    const denied = await fetch(`${s.gateway}/guarded/secret`);
    expect(denied.status).toBe(418);
    expect(denied.headers.get('x-why')).toBe('not on the list');
    expect((await fetch(`${s.gateway}/guarded/open`, { method: 'POST' })).status).toBe(418);

    // Change the policy: POST is allowed too now.
    const updated = policy(
      'http-authz',
      `package http.authz

decision := {"allowed": true} if startswith(input.attributes.request.http.path, "/guarded/open")
default decision := {"allowed": false}`,
    );
    expect((await cli(['apply', '-f', '-'], { skiff: s, input: updated })).code).toBe(0);
    await waitFor(async () => (await fetch(`${s.gateway}/guarded/open`, { method: 'POST' })).status === 200, 'the new policy applies');
    expect((await fetch(`${s.gateway}/guarded/secret`)).status).toBe(403);
  });

  it('refuses a policy that does not parse (422 naming spec.rego), reports one that does not compile with its location, and keeps the others working', async () => {
    const unparsable = await cli(['apply', '-f', '-'], { skiff: s, input: policy('v0-body', 'package v0body\n\nallow {\n  input.x == 1\n}') });
    expect(unparsable.code).not.toBe(0);
    expect(unparsable.stderr).toContain('spec.rego: default/v0-body.rego:3: rego_parse_error: `if` keyword is required before rule body');
    const bad = policy('broken', 'package broken\n\nallow if {\n  input.x == y\n}');
    expect((await cli(['apply', '-f', '-'], { skiff: s, input: bad })).code).toBe(0);
    const st = await waitFor(async () => {
      const x = await policyStatus('broken');
      return x?.conditions?.[0]?.status === 'False' ? x : undefined;
    }, 'broken policy reported');
    expect(st.conditions[0].reason).toBe('CompileError');
    expect(st.errors.join('\n')).toMatch(/default\/broken\.rego:\d+: rego_unsafe_var_error: var y is unsafe/);
    expect((await fetch(`${s.gateway}/guarded/open`)).status).toBe(200);
    const desc = (await cli(['get', 'policies'], { skiff: s })).stdout;
    expect(desc).toMatch(/broken\s+False/);
    expect(desc).toMatch(/http-authz\s+True\s+data\.http\.authz/);
  });
});

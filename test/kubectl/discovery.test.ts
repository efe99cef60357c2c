import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { hasKubectl, type Kubectl, kubectlFor } from '../helpers/kubectl.js';
import { apiFetch, cli, REPO, type RunningSkiff, startSkiff, waitFor } from '../helpers/skiff-process.js';

const run = hasKubectl();
/** Tests that run a dozen kubectl or skiff processes: each takes a second or more on a busy machine. */
const SLOW_MS = 120_000;
const TEMPLATES = join(REPO, 'test', 'admission', 'fixtures', 'templates');
const CONSTRAINTS = join(REPO, 'test', 'admission', 'fixtures', 'constraints');
const KIND_PATH = (plural: string) => `/apis/constraints.gatekeeper.sh/v1beta1/${plural}`;
let s: RunningSkiff;
let kubectl: Kubectl;

/** ok runs kubectl and insists on exit code 0, showing stderr otherwise. */
async function ok(k: Kubectl, args: string[], stdin?: string): Promise<string> {
  const r = await k(args, { stdin });
  expect(r.code, `kubectl ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

/** rows parses kubectl's table output into one record per row, keyed by header. */
function rows(table: string): Array<Record<string, string>> {
  const lines = table.trimEnd().split('\n');
  const header = lines[0]!;
  const starts = [...header.matchAll(/\S+/g)].map((m) => m.index!);
  const names = starts.map((st, i) => header.slice(st, starts[i + 1]).trim());
  return lines.slice(1).map((l) => Object.fromEntries(names.map((n, i) => [n, l.slice(starts[i], starts[i + 1]).trim()])));
}

/**
 * createTemplate stores a template with the skiff CLI (not kubectl, whose cache stays as it was) and
 * waits for its kind. The CLI, not fetch: a write must not ride a pooled connection that the server
 * closed while a synchronous CLI run held this process's event loop.
 */
async function createTemplate(file: string, plural: string): Promise<void> {
  const r = await cli(['apply', '-f', join(TEMPLATES, file)], { skiff: s });
  expect(r.code, r.stderr).toBe(0);
  await waitFor(async () => (await apiFetch(s, KIND_PATH(plural))).status === 200, `the ${plural} kind`);
}

beforeAll(async () => {
  s = await startSkiff({ demo: true });
  kubectl = kubectlFor(s);
});
afterAll(async () => {
  await s?.stop();
});

describe.runIf(run)('kubectl discovers what Skiff serves', () => {
  it('takes the aggregated discovery path and lists Namespace and Event in the core group', async () => {
    const r = await kubectl(['-v=8', 'api-resources']);
    expect(r.code, r.stderr).toBe(0);
    // Two requests, both answered with the aggregated document: no per-group follow-ups.
    expect(r.stderr).toMatch(/GET https:\/\/127\.0\.0\.1:\d+\/api\?timeout=/);
    expect(r.stderr).toMatch(/GET https:\/\/127\.0\.0\.1:\d+\/apis\?timeout=/);
    expect(r.stderr.match(/Content-Type: application\/json;g=apidiscovery\.k8s\.io;v=v2;as=APIGroupDiscoveryList/g)).toHaveLength(2);
    expect(r.stderr).not.toMatch(/GET https:\/\/[^ ]+\/apis\/skiff\.dev\/v1/);
    const byName = Object.fromEntries(rows(r.stdout).map((row) => [row.NAME, row]));
    expect(byName.namespaces).toEqual({ NAME: 'namespaces', SHORTNAMES: 'ns', APIVERSION: 'v1', NAMESPACED: 'false', KIND: 'Namespace' });
    expect(byName.events).toEqual({ NAME: 'events', SHORTNAMES: 'ev', APIVERSION: 'v1', NAMESPACED: 'true', KIND: 'Event' });
    expect(byName.functions).toEqual({ NAME: 'functions', SHORTNAMES: 'fn', APIVERSION: 'skiff.dev/v1', NAMESPACED: 'true', KIND: 'Function' });
    expect(byName.constrainttemplates).toMatchObject({ APIVERSION: 'templates.gatekeeper.sh/v1', NAMESPACED: 'false' });
    // Listed once, in the core group: the skiff.dev/v1 alias is not advertised.
    expect(rows(r.stdout).filter((row) => row.KIND === 'Namespace')).toHaveLength(1);
  });

  it('filters api-resources by group and scope, and shows verbs and categories with -o wide', async () => {
    const wide = Object.fromEntries(rows(await ok(kubectl, ['api-resources', '-o', 'wide'])).map((row) => [row.NAME, row]));
    expect(wide.functions!.VERBS).toBe('create,delete,deletecollection,get,list,patch,update,watch');
    expect(wide.functions!.CATEGORIES).toBe('all');
    expect(wide.routes!.CATEGORIES).toBe('all');
    expect(wide.services!.CATEGORIES).toBe('all');
    expect(wide.policies!.CATEGORIES).toBe('');
    const skiff = rows(await ok(kubectl, ['api-resources', '--api-group=skiff.dev'])).map((row) => row.NAME);
    expect(skiff.sort()).toEqual(['functions', 'gitrepositories', 'imagepolicies', 'policies', 'policybundles', 'rollouts', 'routes', 'services', 'syncs', 'trustroots']);
    const core = rows(await ok(kubectl, ['api-resources', '--api-group='])).map((row) => row.NAME);
    expect(core.sort()).toEqual(['events', 'namespaces', 'nodes', 'secrets']);
    expect(rows(await ok(kubectl, ['api-resources', '--api-group=coordination.k8s.io'])).map((row) => [row.NAME, row.KIND])).toEqual([['leases', 'Lease']]);
    const cluster = rows(await ok(kubectl, ['api-resources', '--namespaced=false'])).map((row) => row.NAME);
    // The self-reviews (kubectl auth can-i, auth whoami) are cluster-scoped, as in kube-apiserver.
    expect(cluster.sort()).toEqual(['constrainttemplates', 'imagepolicies', 'namespaces', 'nodes', 'policybundles', 'runtimeclasses', 'selfsubjectaccessreviews', 'selfsubjectreviews', 'selfsubjectrulesreviews', 'trustroots']);
    expect(await ok(kubectl, ['api-resources', '--namespaced=false', '-o', 'name'])).toBe(
      'namespaces\nnodes\nselfsubjectreviews.authentication.k8s.io\nselfsubjectaccessreviews.authorization.k8s.io\nselfsubjectrulesreviews.authorization.k8s.io\nruntimeclasses.node.k8s.io\nimagepolicies.skiff.dev\npolicybundles.skiff.dev\ntrustroots.skiff.dev\nconstrainttemplates.templates.gatekeeper.sh\n',
    );
  });

  it('prints api-versions', async () => {
    const versions = (await ok(kubectl, ['api-versions'])).trim().split('\n');
    expect(versions).toEqual(expect.arrayContaining(['v1', 'skiff.dev/v1', 'templates.gatekeeper.sh/v1']));
    expect(versions).not.toContain('apidiscovery.k8s.io/v2');
  });

  it('gets Namespaces as core v1 objects, by name and short name', async () => {
    expect(rows(await ok(kubectl, ['get', 'ns'])).map((row) => row.NAME)).toContain('default');
    expect(await ok(kubectl, ['get', 'namespace', 'default', '-o', 'jsonpath={.apiVersion}'])).toBe('v1');
    expect(await ok(kubectl, ['get', 'namespaces', 'default', '-o', 'name'])).toBe('namespace/default\n');
  });

  it('lists the workloads with get all, and resolves short names', async () => {
    const all = await ok(kubectl, ['get', 'all']);
    expect(all).toContain('function.skiff.dev/hello');
    expect(all).toContain('route.skiff.dev/hello');
    expect(await ok(kubectl, ['get', 'fn', 'hello', '-o', 'name'])).toBe('function.skiff.dev/hello\n');
    expect(await ok(kubectl, ['get', 'rt', '-o', 'name'])).toBe('route.skiff.dev/hello\n');
    const missing = await kubectl(['get', 'nosuchkind']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('the server doesn\'t have a resource type "nosuchkind"');
  });

  it("gets the controllers' Events, by name and short name, in one namespace and across all", async () => {
    const ev = await waitFor(async () => {
      const r = JSON.parse(await ok(kubectl, ['get', 'ev', '-o', 'json'])) as { items: Array<{ apiVersion: string; kind: string; reason: string; involvedObject: { kind: string; name: string } }> };
      return r.items.find((e) => e.involvedObject.name === 'hello' && e.reason === 'ModuleLoaded');
    }, 'the ModuleLoaded event about hello');
    expect(ev).toMatchObject({ apiVersion: 'v1', kind: 'Event', involvedObject: { kind: 'Function', name: 'hello', apiVersion: 'skiff.dev/v1' } });
    expect(rows(await ok(kubectl, ['get', 'events', '-A'])).some((row) => row.NAMESPACE === 'default' && row.NAME.startsWith('hello.'))).toBe(true);
  });

  it('lists constraints of every kind with get constraints, as Gatekeeper does', async () => {
    await ok(kubectl, ['apply', '--validate=false', '-f', join(TEMPLATES, 'k8srequiredlabels.yaml')]);
    await waitFor(async () => (await apiFetch(s, KIND_PATH('k8srequiredlabels'))).status === 200, 'the K8sRequiredLabels kind');
    // kubectl applies a kind its cache does not know yet: it refreshes discovery by itself.
    expect(await ok(kubectl, ['apply', '--validate=false', '-f', join(CONSTRAINTS, 'must-have-owner.yaml')])).toBe('k8srequiredlabels.constraints.gatekeeper.sh/must-have-owner created\n');
    expect(await ok(kubectl, ['get', 'constraints', '-o', 'name'])).toBe('k8srequiredlabels.constraints.gatekeeper.sh/must-have-owner\n');
    expect(await ok(kubectl, ['get', 'constraint', '-o', 'name'])).toBe('k8srequiredlabels.constraints.gatekeeper.sh/must-have-owner\n');
    const wide = rows(await ok(kubectl, ['api-resources', '--api-group=constraints.gatekeeper.sh', '-o', 'wide']));
    expect(wide).toEqual([expect.objectContaining({ NAME: 'k8srequiredlabels', APIVERSION: 'constraints.gatekeeper.sh/v1beta1', NAMESPACED: 'false', KIND: 'K8sRequiredLabels', CATEGORIES: 'constraint,constraints' })]);
    // Constraints are not workloads.
    expect(await ok(kubectl, ['get', 'all', '-o', 'name'])).not.toContain('constraints.gatekeeper.sh');
  }, SLOW_MS);

  it('follows kinds that appear and disappear while the server runs, without deleting the cache', async () => {
    // A kubectl whose cache is filled before the kind exists.
    const other = kubectlFor(s);
    expect(rows(await ok(other, ['api-resources'])).map((row) => row.NAME)).not.toContain('k8simmutablelabel');
    await createTemplate('k8simmutablelabel.yaml', 'k8simmutablelabel');
    // Naming the kind misses the cache, which kubectl then refreshes.
    const empty = await other(['get', 'k8simmutablelabel']);
    expect(empty.code, empty.stderr).toBe(0);
    expect(empty.stderr).toMatch(/^No resources found/);
    expect(await ok(other, ['apply', '--validate=false', '-f', join(CONSTRAINTS, 'immutable-team.yaml')])).toBe('k8simmutablelabel.constraints.gatekeeper.sh/immutable-team created\n');
    expect((await ok(other, ['get', 'constraints', '-o', 'name'])).split('\n').filter(Boolean).sort()).toEqual(['k8simmutablelabel.constraints.gatekeeper.sh/immutable-team', 'k8srequiredlabels.constraints.gatekeeper.sh/must-have-owner']);

    // api-resources always asks again: a kind created since shows up at once.
    await createTemplate('k8suniqueingresshost.yaml', 'k8suniqueingresshost');
    expect(rows(await ok(other, ['api-resources', '--api-group=constraints.gatekeeper.sh'])).map((row) => row.NAME).sort()).toEqual(['k8simmutablelabel', 'k8srequiredlabels', 'k8suniqueingresshost']);

    // Deleting the template takes the kind away. A cache that still lists it gets the server's 404,
    // as from kube-apiserver for a deleted CRD; once refreshed, kubectl no longer knows the type.
    expect((await cli(['delete', 'constrainttemplate', 'k8suniqueingresshost'], { skiff: s })).code).toBe(0);
    await waitFor(async () => (await apiFetch(s, KIND_PATH('k8suniqueingresshost'))).status === 404, 'the K8sUniqueIngressHost kind to go');
    const stale = await other(['get', 'k8suniqueingresshost']);
    expect(stale.code).toBe(1);
    expect(stale.stderr).toMatch(/^Error from server \(NotFound\): Unable to list "constraints\.gatekeeper\.sh\/v1beta1, Resource=k8suniqueingresshost": the server does not know the resource type "k8suniqueingresshost"/);
    expect(rows(await ok(other, ['api-resources', '--api-group=constraints.gatekeeper.sh'])).map((row) => row.NAME).sort()).toEqual(['k8simmutablelabel', 'k8srequiredlabels']);
    const gone = await other(['get', 'k8suniqueingresshost']);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toBe('error: the server doesn\'t have a resource type "k8suniqueingresshost"\n');
  }, SLOW_MS);
});

describe('the skiff CLI on the core group and discovered kinds', () => {
  it('gets Namespaces and describes a Function with its Events', async () => {
    const ns = await cli(['get', 'ns'], { skiff: s });
    expect(ns.code, ns.stderr).toBe(0);
    expect(ns.stdout).toMatch(/^default\s/m);
    const yaml = await cli(['get', 'namespace', 'default', '-o', 'json'], { skiff: s });
    expect(JSON.parse(yaml.stdout)).toMatchObject({ apiVersion: 'v1', kind: 'Namespace' });
    expect((await cli(['get', 'ns', '-o', 'name'], { skiff: s })).stdout).toContain('namespace/default\n');
    const described = await waitFor(async () => {
      const r = await cli(['describe', 'fn', 'hello'], { skiff: s });
      return r.code === 0 && /Normal\s+ModuleLoaded/.test(r.stdout) ? r.stdout : undefined;
    }, 'the ModuleLoaded event in skiff describe');
    expect(described).toMatch(/^Events:\n {2}TYPE\s+REASON/m);
  }, SLOW_MS);

  it('applies a Namespace written as skiff.dev/v1, which kubectl then sees as v1', async () => {
    // The must-have-owner constraint (kinds in the core group "") judges a Namespace written the old way too.
    const denied = await cli(['apply', '-f', '-'], { skiff: s, input: 'apiVersion: skiff.dev/v1\nkind: Namespace\nmetadata:\n  name: legacy\n' });
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain('[must-have-owner] you must provide labels');
    const r = await cli(['apply', '-f', '-'], { skiff: s, input: 'apiVersion: skiff.dev/v1\nkind: Namespace\nmetadata:\n  name: legacy\n  labels: {owner: me.agilebank.demo}\n' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('namespace/legacy created\n');
    if (run) expect(await ok(kubectl, ['get', 'ns', 'legacy', '-o', 'jsonpath={.apiVersion}'])).toBe('v1');
    const again = await cli(['apply', '-f', '-'], { skiff: s, input: 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: legacy\n  labels: {owner: me.agilebank.demo, team: a}\n' });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toBe('namespace/legacy configured\n');
  }, SLOW_MS);

  it('learns constraint kinds from discovery, subresources left out', async () => {
    await createTemplate('k8sruntimeclass.yaml', 'k8sruntimeclass');
    const got = await cli(['get', 'k8sruntimeclass'], { skiff: s });
    expect(got.code, got.stderr).toBe(0);
    const unknown = await cli(['get', 'nosuchkind'], { skiff: s });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('k8sruntimeclass');
    expect(unknown.stderr).not.toContain('/status');
  }, SLOW_MS);
});

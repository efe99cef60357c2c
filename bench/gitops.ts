/**
 * GitOps benchmark: how long a commit takes to serve, and what a Git source costs. A `skiff up` and a
 * `git http-backend` server run on loopback; the bench commits with the git CLI as a user would.
 *
 * - `commit_to_serving_ms_webhook`: median time from a push returning to the Function answering with the
 *   pushed version, when the push is followed by `POST /hooks/git/NAMESPACE/NAME` (a Git host's webhook).
 *   `_p90` and `_max` beside it.
 * - `commit_to_serving_ms_poll`: the same with no webhook, the GitRepository polling every `--poll-interval`
 *   (2 s by default); expect about half an interval plus the webhook figure.
 * - `sync_1000_objects_ms`: from creating a Sync over a revision of 1,000 Services to its status saying
 *   that revision is applied (dry run of every object, apply, inventory).
 * - `resync_1000_objects_ms`: the same Sync asked to reconcile again with nothing changed (drift check).
 * - `rss_per_gitrepository_kb`: the server's resident memory grown per GitRepository, over --repos of them
 *   fetched and Ready; `disk_per_gitrepository_kb` the mirror and artifact bytes per repository.
 *
 * Flux polls every few minutes by default and Argo CD refreshes every 3 minutes; both take webhooks. Neither
 * runs on this machine, so there are no peers in the same run.
 *
 *   npm run bench -- gitops [--json FILE] [--commits N] [--poll-commits N] [--poll-interval S] [--objects N] [--repos N]
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { startGitServer } from '../test/helpers/git-server.js';
import { wagiWat, wat } from '../test/helpers/wat.js';

import { rssBytes } from './lib/procs.js';
import { emit, type Figures, parseBenchArgs, percentile, positiveOption } from './lib/report.js';
import { startBenchSkiff } from './lib/skiff.js';
import { readyCondition, SkiffApi } from './lib/skiff-api.js';

const { json, rest } = parseBenchArgs();
const COMMITS = positiveOption(rest, '--commits', 10);
const POLL_COMMITS = positiveOption(rest, '--poll-commits', 5);
const POLL_INTERVAL_S = positiveOption(rest, '--poll-interval', 2);
const OBJECTS = positiveOption(rest, '--objects', 1000);
const REPOS = positiveOption(rest, '--repos', 20);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (n: number) => Math.round(n * 10) / 10;

const functionYaml = (name: string, prefix: string) => `apiVersion: skiff.dev/v1
kind: Function
metadata: { name: ${name} }
spec:
  module: ./version.wasm
---
apiVersion: skiff.dev/v1
kind: Route
metadata: { name: ${name} }
spec:
  http:
    - match: [{ uri: { prefix: ${prefix} } }]
      route: [{ destination: { function: ${name} } }]
`;

const moduleSaying = (text: string) => wat(wagiWat(`Content-Type: text/plain\n\n${text}\n`));

/** untilServing polls the gateway until `url` answers 200 with `text`, and returns when it did (performance.now()). */
async function untilServing(url: string, text: string, timeoutMs = 60_000): Promise<number> {
  const until = performance.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(url);
      const body = await res.text();
      if (res.status === 200 && body.includes(text)) return performance.now();
    } catch {
      // the gateway may close a connection while its table changes; ask again
    }
    if (performance.now() > until) throw new Error(`${url} did not answer "${text}" within ${timeoutMs / 1000}s`);
    await sleep(2);
  }
}

function dirBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) n += dirBytes(p);
    else if (e.isFile()) n += statSync(p).size;
  }
  return n;
}

const git = await startGitServer();
const dataDir = mkdtempSync(join(tmpdir(), 'skiff-bench-gitops-'));
const skiff = await startBenchSkiff(dataDir);
const api = new SkiffApi(skiff.api, skiff.token);
const figures: Figures = {};

try {
  // Webhook: the GitRepository never polls on its own within the run.
  const app = await git.createRepo('app');
  await app.write({ 'deploy/app.yaml': functionYaml('gitops-bench', '/gitops-bench'), 'deploy/version.wasm': await moduleSaying('version 0') });
  await app.commit('version 0');
  await app.push();
  await api.apply({ apiVersion: 'skiff.dev/v1', kind: 'GitRepository', metadata: { name: 'app', namespace: 'default' }, spec: { url: git.repoUrl('app'), ref: { branch: 'main' }, interval: '1h' } });
  await api.apply({ apiVersion: 'skiff.dev/v1', kind: 'Sync', metadata: { name: 'app', namespace: 'default' }, spec: { sourceRef: { kind: 'GitRepository', name: 'app' }, path: './deploy', interval: '1h', prune: true } });
  await untilServing(`${skiff.gateway}/gitops-bench`, 'version 0');
  const hook = async () => {
    const res = await fetch(`${skiff.api}/hooks/git/default/app`, { method: 'POST', headers: { authorization: `Bearer ${skiff.token}`, 'content-type': 'application/json' }, body: '{}' });
    await res.text();
    if (res.status >= 300) throw new Error(`webhook answered ${res.status}`);
  };
  const webhookMs: number[] = [];
  for (let i = 1; i <= COMMITS; i++) {
    await app.write({ 'deploy/version.wasm': await moduleSaying(`version ${i}`) });
    await app.commit(`version ${i}`);
    await app.push();
    const t0 = performance.now();
    await hook();
    webhookMs.push((await untilServing(`${skiff.gateway}/gitops-bench`, `version ${i}`)) - t0);
  }
  webhookMs.sort((a, b) => a - b);
  figures.commit_to_serving_ms_webhook = round(percentile(webhookMs, 50));
  figures.commit_to_serving_ms_webhook_p90 = round(percentile(webhookMs, 90));
  figures.commit_to_serving_ms_webhook_max = round(webhookMs.at(-1)!);

  // Polling: a second repository and Sync that only the interval wakes.
  const polled = await git.createRepo('polled');
  await polled.write({ 'deploy/app.yaml': functionYaml('gitops-poll', '/gitops-poll'), 'deploy/version.wasm': await moduleSaying('version 0') });
  await polled.commit('version 0');
  await polled.push();
  await api.apply({ apiVersion: 'skiff.dev/v1', kind: 'GitRepository', metadata: { name: 'polled', namespace: 'default' }, spec: { url: git.repoUrl('polled'), ref: { branch: 'main' }, interval: `${POLL_INTERVAL_S}s` } });
  await api.apply({ apiVersion: 'skiff.dev/v1', kind: 'Sync', metadata: { name: 'polled', namespace: 'default' }, spec: { sourceRef: { kind: 'GitRepository', name: 'polled' }, path: './deploy', interval: '1h', prune: true } });
  await untilServing(`${skiff.gateway}/gitops-poll`, 'version 0');
  const pollMs: number[] = [];
  for (let i = 1; i <= POLL_COMMITS; i++) {
    await polled.write({ 'deploy/version.wasm': await moduleSaying(`version ${i}`) });
    await polled.commit(`version ${i}`);
    // Pushes land at unrelated moments of the polling cycle, as users' do.
    await sleep(Math.random() * POLL_INTERVAL_S * 1000);
    await polled.push();
    const t0 = performance.now();
    pollMs.push((await untilServing(`${skiff.gateway}/gitops-poll`, `version ${i}`)) - t0);
  }
  pollMs.sort((a, b) => a - b);
  figures.commit_to_serving_ms_poll = round(percentile(pollMs, 50));
  figures.commit_to_serving_ms_poll_max = round(pollMs.at(-1)!);

  // Many objects: one revision of OBJECTS Services.
  const many = await git.createRepo('many');
  const files: Record<string, string> = {};
  for (let i = 0; i < OBJECTS; i++) {
    files[`objects/svc-${String(i).padStart(4, '0')}.yaml`] = `apiVersion: skiff.dev/v1\nkind: Service\nmetadata: { name: svc-${i}, labels: { bench: gitops } }\nspec:\n  endpoints: [{ address: 127.0.0.1, port: ${10_000 + i} }]\n`;
  }
  await many.write(files);
  const manySha = await many.commit(`${OBJECTS} services`);
  await many.push();
  await api.apply({ apiVersion: 'skiff.dev/v1', kind: 'GitRepository', metadata: { name: 'many', namespace: 'default' }, spec: { url: git.repoUrl('many'), ref: { branch: 'main' }, interval: '1h' } });
  await api.waitFor('GitRepository', 'many', 'fetched', (o) => (o?.status?.artifact?.revision === `main@sha1:${manySha}` ? true : undefined), 60_000, 10);
  const t0 = performance.now();
  await api.apply({ apiVersion: 'skiff.dev/v1', kind: 'Sync', metadata: { name: 'many', namespace: 'default' }, spec: { sourceRef: { kind: 'GitRepository', name: 'many' }, path: './objects', interval: '1h', prune: true } });
  await api.waitFor('Sync', 'many', 'applied', (o) => (o?.status?.lastAppliedRevision === `main@sha1:${manySha}` && readyCondition(o)?.status === 'True' ? true : undefined), 120_000, 10);
  figures.sync_1000_objects_ms = round(performance.now() - t0);
  const before = await api.get('Sync', 'many');
  const t1 = performance.now();
  await api.apply({ apiVersion: 'skiff.dev/v1', kind: 'Sync', metadata: { name: 'many', namespace: 'default', annotations: { 'skiff.dev/reconcile-at': new Date().toISOString() } }, spec: { sourceRef: { kind: 'GitRepository', name: 'many' }, path: './objects', interval: '1h', prune: true } });
  await api.waitFor('Sync', 'many', 'reconciled again', (o) => (o && o.status?.lastHandledReconcileAt && o.metadata.resourceVersion !== before?.metadata.resourceVersion ? true : undefined), 120_000, 10);
  figures.resync_1000_objects_ms = round(performance.now() - t1);
  await api.delete('Sync', 'many');

  // Memory and disk per GitRepository: REPOS sources of one small repository.
  const small = await git.createRepo('small');
  await small.write({ 'deploy/app.yaml': functionYaml('unused', '/unused') });
  const smallSha = await small.commit('small');
  await small.push();
  await sleep(500);
  const rss0 = rssBytes(skiff.proc.pid!);
  const disk0 = dirBytes(join(dataDir, 'gitops'));
  for (let i = 0; i < REPOS; i++) {
    await api.apply({ apiVersion: 'skiff.dev/v1', kind: 'GitRepository', metadata: { name: `small-${i}`, namespace: 'default' }, spec: { url: git.repoUrl('small'), ref: { branch: 'main' }, interval: '1h' } });
  }
  for (let i = 0; i < REPOS; i++) {
    await api.waitFor('GitRepository', `small-${i}`, 'fetched', (o) => (o?.status?.artifact?.revision === `main@sha1:${smallSha}` ? true : undefined), 120_000, 20);
  }
  await sleep(500);
  figures.rss_per_gitrepository_kb = round(Math.max(0, rssBytes(skiff.proc.pid!) - rss0) / REPOS / 1024);
  figures.disk_per_gitrepository_kb = round((dirBytes(join(dataDir, 'gitops')) - disk0) / REPOS / 1024);
} finally {
  skiff.proc.kill('SIGTERM');
  await new Promise((r) => skiff.proc.once('exit', r));
  await git.close();
  rmSync(dataDir, { recursive: true, force: true });
}

emit({ name: 'gitops', figures, peers: {} }, json);

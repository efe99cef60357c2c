import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import pino from 'pino';

import { AdmissionPlatform } from '../../src/admission/index.js';
import { builtinKinds } from '../../src/api/kinds/index.js';
import type { KindDefinition, ResourceObject } from '../../src/api/kinds/types.js';
import { ResourceService } from '../../src/api/resources.js';
import { Informer } from '../../src/controllers/runtime/index.js';
import { MemoryArtifacts } from '../../src/gitops/artifact.js';
import { SyncController } from '../../src/gitops/sync/index.js';
import { BlobStore, MemoryStore } from '../../src/store/index.js';

/**
 * The GitRepository kind as the source part defines it, reduced to what a Sync reads: tests of the
 * Sync write its status (the artifact) themselves.
 */
export const testGitRepositoryKind: KindDefinition = {
  kind: 'GitRepository',
  plural: 'gitrepositories',
  singular: 'gitrepository',
  shortNames: ['gitrepo'],
  namespaced: true,
  specSchema: { type: 'object', properties: { url: { type: 'string' }, interval: { type: 'string' } } },
  printerColumns: [],
};

const logger = pino({ level: 'silent' });

/** SyncHarness is an in-process API (memory store, admission as the server sets it up) with a SyncController. */
export class SyncHarness {
  readonly store = new MemoryStore();
  readonly resources = new ResourceService(this.store, builtinKinds());
  readonly artifacts = new MemoryArtifacts();
  readonly dir = mkdtempSync(join(tmpdir(), 'skiff-sync-'));
  readonly blobs = new BlobStore({ dir: join(this.dir, 'blobs') });
  readonly platform = new AdmissionPlatform({ resources: this.resources, logger, auditIntervalMs: 0 });
  readonly sync: SyncController;
  private readonly fakeFunctions: Informer;

  constructor() {
    this.resources.kinds.register(testGitRepositoryKind);
    this.resources.addAdmissionHook(this.platform.hook);
    this.sync = new SyncController({ resources: this.resources, logger, artifacts: this.artifacts, blobs: this.blobs, healthPollMs: 20 });
    // Stands in for the function controller: a Function is Ready unless its env says BROKEN.
    this.fakeFunctions = new Informer(this.resources, this.resources.kind('Function'), logger);
    const mark = (o: ResourceObject) => void this.markFunction(o).catch(() => undefined);
    this.fakeFunctions.addHandlers({ onAdd: mark, onUpdate: (_old, o) => mark(o) });
  }

  async start(): Promise<void> {
    await this.platform.start();
    for (const ns of ['default', 'apps', 'team']) await this.resources.create(this.resources.kind('Namespace'), undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    await this.fakeFunctions.start();
    await this.sync.start();
  }

  async stop(): Promise<void> {
    await this.sync.stop();
    this.fakeFunctions.stop();
    await this.platform.stop();
    await this.store.close();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async markFunction(o: ResourceObject): Promise<void> {
    const broken = o.spec?.env?.BROKEN === '1';
    const gen = o.metadata.generation;
    const ready = o.status?.conditions?.[0];
    if (o.status?.observedGeneration === gen && ready?.status === (broken ? 'False' : 'True')) return;
    const status = { observedGeneration: gen, conditions: [{ type: 'Ready', status: broken ? 'False' : 'True', reason: broken ? 'Crashed' : 'Loaded', message: broken ? 'the module traps' : 'serving', lastTransitionTime: new Date().toISOString(), observedGeneration: gen }] };
    await this.resources.updateStatus(this.resources.kind('Function'), o.metadata.namespace, o.metadata.name, { ...o, status });
  }

  /** source creates (once) a GitRepository and publishes a revision of files as its artifact. */
  async publish(name: string, revision: string, files: Record<string, string | Uint8Array>, ns = 'default'): Promise<string> {
    const def = this.resources.kind('GitRepository');
    const digest = `sha256:${createHash('sha256').update(`${name}/${revision}/${JSON.stringify(Object.keys(files))}/${Object.values(files).join('\0')}`).digest('hex')}`;
    this.artifacts.put(digest, files);
    let repo = await this.resources.tryGet(def, ns, name);
    if (!repo) repo = (await this.resources.create(def, ns, { apiVersion: 'skiff.dev/v1', kind: 'GitRepository', metadata: { name, namespace: ns }, spec: { url: 'http://127.0.0.1:1/app.git' } })).object;
    await this.resources.updateStatus(def, ns, name, { ...repo, status: { artifact: { revision, digest, size: 1, lastUpdateTime: new Date().toISOString() } } });
    return digest;
  }

  async createSync(name: string, spec: Record<string, unknown>, ns = 'default'): Promise<void> {
    await this.resources.create(this.resources.kind('Sync'), ns, { apiVersion: 'skiff.dev/v1', kind: 'Sync', metadata: { name, namespace: ns }, spec: { sourceRef: { kind: 'GitRepository', name }, interval: '1s', ...spec } });
  }

  async getSync(name: string, ns = 'default'): Promise<ResourceObject> {
    return this.resources.get(this.resources.kind('Sync'), ns, name);
  }

  async get(kind: string, ns: string | undefined, name: string): Promise<ResourceObject | undefined> {
    return this.resources.tryGet(this.resources.kind(kind), ns, name);
  }

  /** events lists the Events about an object (reason: message). */
  async events(name: string, ns = 'default'): Promise<string[]> {
    const list = await this.resources.list(this.resources.kind('Event'), ns);
    return list.items.filter((e) => (e.involvedObject as { name: string }).name === name).map((e) => `${String(e.reason)}: ${String(e.message)}`);
  }

  ready(s: ResourceObject): { status?: string; reason?: string; message?: string } {
    return (s.status?.conditions ?? []).find((c: { type: string }) => c.type === 'Ready') ?? {};
  }
}

export const HEX = (c: string) => c.repeat(64).slice(0, 64);

/** fn renders a Function manifest. */
export function fn(name: string, extra: Record<string, unknown> = {}, meta: Record<string, unknown> = {}): string {
  return JSON.stringify({ apiVersion: 'skiff.dev/v1', kind: 'Function', metadata: { name, ...meta }, spec: { module: `blob:sha256:${HEX('a')}`, ...extra } });
}

import { join } from 'node:path';

import type { Logger } from 'pino';

import { type Condition, secretValue, setCondition } from '../../api/kinds/index.js';
import type { ResourceObject } from '../../api/kinds/types.js';
import type { ResourceService } from '../../api/resources.js';
import { cacheKey, Controller, EventRecorder, Informer, writeStatus } from '../../controllers/runtime/index.js';
import { SkiffError } from '../../util/errors.js';
import { parseDurationMs } from '../../util/quantity.js';
import type { ArtifactRef } from '../artifact.js';

import { type ArtifactLimits, ArtifactStore, checkLimits, type Selection,selectTree } from './artifacts.js';
import { GitFetchError, VerificationError } from './errors.js';
import { type GitCredentials, GitMirrors, type GitRef, type UrlGuard } from './git.js';
import { readTrustedKeys, verifyCommit } from './verify.js';

/** The annotation whose new value makes a source fetch at once (shared with Syncs). */
export const RECONCILE_AT_ANNOTATION = 'skiff.dev/reconcile-at';

const DEFAULT_INTERVAL_MS = 60_000;
const DEFAULT_TIMEOUT_MS = 60_000;

export interface GitRepositoryControllerOptions {
  resources: ResourceService;
  logger: Logger;
  /** DATA_DIR/gitops: mirrors in repos/, artifacts in artifacts/. */
  dir: string;
  /** The artifact store (default: one in DIR/artifacts). */
  artifacts?: ArtifactStore;
  limits?: Partial<ArtifactLimits>;
  /** Largest object store one mirror may grow to (default 512 MiB). */
  maxRepoBytes?: number;
  /** The clock intervals are measured with (tests move it). */
  now?: () => number;
  /** Refuses URLs the operator has not granted (the server passes gitUrlGuard); without it every URL is fetched. */
  checkUrl?: UrlGuard;
  /** How much each interval is stretched at random, as a fraction, so sources do not fetch in step (default 0.05). */
  jitter?: number;
}

/** What the controller remembers about one GitRepository between reconciles. */
interface State {
  generation?: number;
  reconcileAt?: string;
  /** When the next fetch is due (the controller's clock). */
  nextAt: number;
  /** A fetch was asked for (webhook, refresh). */
  force: boolean;
  /** The commit and spec generation the current artifact was built from. */
  built?: { commit: string; generation?: number; digest: string; note: string };
}

type ConditionUpdate = { status: 'True' | 'False'; reason: string; message: string };

interface Report {
  ready?: ConditionUpdate;
  /** undefined: leave as is; null: remove (no spec.verify). */
  verified?: ConditionUpdate | null;
  artifact?: ArtifactRef;
}

/**
 * GitRepositoryController keeps each GitRepository's artifact at the newest revision of its ref: it
 * fetches into the object's mirror every interval (at once on a new spec, a new reconcile-at
 * annotation or refresh), checks the commit signature when asked, packs the tree into a
 * content-addressed artifact and writes status. A failed fetch or verification keeps the previous
 * artifact and says why in the Ready condition, with an Event.
 */
export class GitRepositoryController {
  readonly informer: Informer;
  readonly controller: Controller;
  readonly artifacts: ArtifactStore;
  readonly mirrors: GitMirrors;
  private readonly state = new Map<string, State>();
  private readonly events: EventRecorder;
  private readonly now: () => number;

  constructor(private readonly opts: GitRepositoryControllerOptions) {
    this.now = opts.now ?? Date.now;
    this.artifacts = opts.artifacts ?? new ArtifactStore({ dir: join(opts.dir, 'artifacts'), limits: opts.limits });
    this.mirrors = new GitMirrors({ dir: opts.dir, maxRepoBytes: opts.maxRepoBytes });
    this.informer = new Informer(opts.resources, opts.resources.kind('GitRepository'), opts.logger);
    this.events = new EventRecorder(opts.resources, 'source-controller', opts.logger);
    this.controller = new Controller({ name: 'gitrepositories', logger: opts.logger, keys: () => this.informer.list().map(cacheKey), reconcile: (key) => this.reconcile(key), workers: 2, resyncMs: 300_000 });
    this.informer.addHandlers({
      onAdd: (o) => this.controller.enqueue(cacheKey(o)),
      onUpdate: (a, b) => {
        if (a.metadata.generation !== b.metadata.generation || reconcileAt(a) !== reconcileAt(b)) this.controller.enqueue(cacheKey(b));
      },
      onDelete: (o) => this.controller.enqueue(cacheKey(o)),
    });
  }

  async start(): Promise<void> {
    await this.informer.start();
    this.controller.start();
  }

  async stop(): Promise<void> {
    this.informer.stop();
    await this.controller.stop();
  }

  /** get returns the GitRepository NAMESPACE/NAME as the controller last saw it. */
  get(namespace: string, name: string): ResourceObject | undefined {
    return this.informer.get(`${namespace}/${name}`);
  }

  /** refresh fetches the GitRepository at once (whatever its interval); false when it is not known. */
  refresh(namespace: string, name: string): boolean {
    const key = `${namespace}/${name}`;
    if (!this.informer.get(key)) return false;
    this.stateOf(key).force = true;
    this.controller.enqueue(key);
    return true;
  }

  /** gc removes artifacts no GitRepository's status names (nor anything registered with `artifacts.addReferences`). */
  gc(graceMs?: number): number {
    const digests = this.informer.list().flatMap((o) => (o.status?.artifact?.digest ? [String(o.status.artifact.digest)] : []));
    return this.artifacts.gc(digests, graceMs);
  }

  private stateOf(key: string): State {
    let st = this.state.get(key);
    if (!st) this.state.set(key, (st = { nextAt: 0, force: false }));
    return st;
  }

  private async reconcile(key: string): Promise<{ requeueAfterMs: number } | void> {
    const obj = this.informer.get(key);
    if (!obj) {
      this.state.delete(key);
      this.mirrors.remove(key);
      return;
    }
    if (obj.spec.suspend === true) {
      if (obj.status?.observedGeneration !== obj.metadata.generation) await this.report(obj, {});
      return;
    }
    const st = this.stateOf(key);
    const intervalMs = parseDurationMs(String(obj.spec.interval ?? '')) ?? DEFAULT_INTERVAL_MS;
    const now = this.now();
    const changed = st.generation !== obj.metadata.generation || st.reconcileAt !== reconcileAt(obj);
    if (!changed && !st.force && now < st.nextAt) return { requeueAfterMs: st.nextAt - now };
    st.force = false;
    st.generation = obj.metadata.generation;
    st.reconcileAt = reconcileAt(obj);
    const wait = Math.round(intervalMs * (1 + Math.random() * (this.opts.jitter ?? 0.05)));
    st.nextAt = now + wait;
    await this.fetchAndStore(obj, st);
    return { requeueAfterMs: wait };
  }

  private async fetchAndStore(obj: ResourceObject, st: State): Promise<void> {
    const key = cacheKey(obj);
    const url = String(obj.spec.url);
    const ref = (obj.spec.ref ?? { branch: 'main' }) as GitRef;
    const timeoutMs = parseDurationMs(String(obj.spec.timeout ?? '')) ?? DEFAULT_TIMEOUT_MS;
    let fetched;
    try {
      const refused = await this.opts.checkUrl?.(url);
      if (refused) throw new GitFetchError('InvalidSource', refused);
      const credentials = await this.credentials(obj);
      fetched = await this.mirrors.fetch(key, { url, ref, timeoutMs, credentials });
    } catch (err) {
      if (!(err instanceof SkiffError)) throw err;
      const reason = err instanceof GitFetchError ? err.reason : 'FetchFailed';
      await this.report(obj, { ready: { status: 'False', reason, message: this.keeps(obj, err.message) } });
      void this.events.record(obj, 'Warning', 'FetchFailed', err.message);
      return;
    }
    let verified: ConditionUpdate | null = null;
    if (obj.spec.verify) {
      try {
        const keys = await readTrustedKeys(await this.secretData(obj, obj.spec.verify.secretRef?.name, 'spec.verify.secretRef'));
        const sig = await verifyCommit(await this.mirrors.rawCommit(key, fetched.commit), keys, fetched.commit);
        verified = { status: 'True', reason: 'Succeeded', message: `commit ${fetched.commit} is signed by ${sig.format === 'ssh' ? 'SSH key' : 'OpenPGP key'} ${sig.fingerprint}` };
      } catch (err) {
        if (!(err instanceof SkiffError)) throw err;
        const reason = err instanceof VerificationError ? err.reason : 'VerificationFailed';
        await this.report(obj, { ready: { status: 'False', reason: 'VerificationFailed', message: this.keeps(obj, `revision ${fetched.revision} was not accepted: ${err.message}`) }, verified: { status: 'False', reason, message: err.message } });
        void this.events.record(obj, 'Warning', 'VerificationFailed', `revision ${fetched.revision}: ${err.message}`);
        return;
      }
    }
    const current = obj.status?.artifact as ArtifactRef | undefined;
    let digest: string, size: number, selection: Selection;
    if (st.built && st.built.commit === fetched.commit && st.built.generation === obj.metadata.generation && this.artifacts.has(st.built.digest) && current?.digest === st.built.digest) {
      digest = current.digest;
      size = current.size;
    } else {
      try {
        ({ digest, size, selection } = await this.build(key, fetched.commit, obj.spec.ignore as string | undefined, timeoutMs));
      } catch (err) {
        if (!(err instanceof SkiffError)) throw err;
        await this.report(obj, { ready: { status: 'False', reason: 'ArtifactFailed', message: this.keeps(obj, `revision ${fetched.revision}: ${err.message}`) } });
        void this.events.record(obj, 'Warning', 'FetchFailed', `revision ${fetched.revision}: ${err.message}`);
        return;
      }
      st.built = { commit: fetched.commit, generation: obj.metadata.generation, digest, note: droppedNote(selection) };
    }
    const same = current?.digest === digest && current.revision === fetched.revision;
    const artifact: ArtifactRef = same ? current : { revision: fetched.revision, digest, size, lastUpdateTime: new Date(this.now()).toISOString() };
    const dropped = st.built.note;
    await this.report(obj, { ready: { status: 'True', reason: 'Succeeded', message: `stored artifact for revision ${fetched.revision}${dropped ? `; ${dropped}` : ''}` }, verified, artifact });
    if (!same) {
      void this.events.record(obj, 'Normal', 'ArtifactUpdated', `stored artifact ${digest} for revision ${fetched.revision}`);
      this.opts.logger.info({ gitrepository: key, revision: fetched.revision, digest }, 'stored a new artifact');
      try {
        this.gc();
      } catch (err) {
        this.opts.logger.warn({ err: (err as Error).message }, 'artifact collection failed');
      }
    }
  }

  /** build packs the commit's tree, minus ignored and unsafe entries, into the artifact store. */
  private async build(key: string, commit: string, ignorePatterns: string | undefined, timeoutMs: number): Promise<{ digest: string; size: number; selection: Selection }> {
    const selection = selectTree(await this.mirrors.listTree(key, commit), ignorePatterns);
    checkLimits(selection.files, this.artifacts.limits);
    const blobs = await this.mirrors.readBlobs(key, [...new Set(selection.files.map((f) => f.sha))], this.artifacts.limits.maxBytes, timeoutMs);
    const files = selection.files.map((f) => {
      const data = blobs.get(f.sha);
      if (!data) throw new GitFetchError('FetchFailed', `the mirror is missing the blob of ${f.path}`);
      return { path: f.path, data, executable: f.mode === '100755' };
    });
    const stored = await this.artifacts.put(files);
    return { ...stored, selection };
  }

  private keeps(obj: ResourceObject, message: string): string {
    const a = obj.status?.artifact as ArtifactRef | undefined;
    return a ? `${message}; the artifact of revision ${a.revision} is kept` : `${message}; no artifact has been stored yet`;
  }

  private async secretData(obj: ResourceObject, name: string | undefined, field: string): Promise<Record<string, string>> {
    const ns = obj.metadata.namespace ?? 'default';
    const secret = name ? await this.opts.resources.tryGet(this.opts.resources.kind('Secret'), ns, name) : undefined;
    if (!secret) throw new GitFetchError('InvalidSource', `${field}: Secret ${ns}/${name} does not exist`);
    const out: Record<string, string> = {};
    for (const k of Object.keys((secret.data ?? {}) as Record<string, unknown>)) out[k] = secretValue(secret, k) ?? '';
    return out;
  }

  private async credentials(obj: ResourceObject): Promise<GitCredentials | undefined> {
    const name = obj.spec.secretRef?.name as string | undefined;
    if (!name) return undefined;
    const d = await this.secretData(obj, name, 'spec.secretRef');
    return { username: d.username, password: d.password, bearerToken: d.bearerToken, identity: d.identity, knownHosts: d.known_hosts ?? d.knownHosts };
  }

  /** report writes conditions, the artifact and observedGeneration onto the newest stored status, only when they change. */
  private async report(obj: ResourceObject, r: Report): Promise<void> {
    // As Flux's sources do: the reconcile-at value this fetch saw, so that `skiff sync` knows the
    // source has looked at the repository since it asked.
    const handled = reconcileAt(obj);
    await writeStatus(this.opts.resources, this.opts.resources.kind('GitRepository'), obj, (current, old) => {
      const next: Record<string, unknown> = { ...old, observedGeneration: current.metadata.generation };
      if (handled) next.lastHandledReconcileAt = handled;
      if (r.artifact) next.artifact = r.artifact;
      let conditions = (old.conditions as Condition[] | undefined) ?? [];
      if (r.ready) conditions = setCondition(conditions, { type: 'Ready', ...r.ready, observedGeneration: current.metadata.generation });
      if (r.verified) conditions = setCondition(conditions, { type: 'SourceVerified', ...r.verified, observedGeneration: current.metadata.generation });
      else if (r.verified === null) conditions = conditions.filter((c) => c.type !== 'SourceVerified');
      next.conditions = conditions;
      return next;
    });
  }
}

function reconcileAt(o: ResourceObject): string | undefined {
  return o.metadata.annotations?.[RECONCILE_AT_ANNOTATION];
}

/** droppedNote says which unsafe entries were left out of the artifact. */
function droppedNote(s: Selection): string {
  const parts: string[] = [];
  const list = (paths: string[]) => paths.slice(0, 5).join(', ') + (paths.length > 5 ? `, and ${paths.length - 5} more` : '');
  if (s.symlinks.length) parts.push(`left out ${s.symlinks.length} symbolic link(s): ${list(s.symlinks)}`);
  if (s.submodules.length) parts.push(`left out ${s.submodules.length} submodule(s): ${list(s.submodules)}`);
  return parts.join('; ');
}


import { randomUUID } from 'node:crypto';

import type { Logger } from 'pino';

import type { AdmissionHook, AdmissionRequest, AdmissionResponse } from '../api/admission.js';
import { ApiError } from '../api/errors.js';
import { Informer } from '../api/informer.js';
import { constraintKind, CONSTRAINTS_GROUP,constraintTemplateKind } from '../api/kinds/constraint-template.js';
import { CORE_GROUP, type FieldError, groupOf, type KindDefinition, type ResourceObject } from '../api/kinds/types.js';
import type { ResourceService } from '../api/resources.js';
import type { DecisionLogger, ExternalDataLookup } from '../policy/index.js';
import { rootSpan, SpanKind, type Tracer } from '../util/tracing.js';

import { auditObjects, type ConstraintAudit,DEFAULT_VIOLATIONS_LIMIT } from './audit.js';
import { decide, type Decision, type Finding } from './decision.js';
import { GatekeeperClient } from './gatekeeper/client.js';
import { compileConstraint } from './gatekeeper/constraint.js';
import { compileTemplate, newSchemaCompiler } from './gatekeeper/template.js';
import { type AdmissionRequestJSON, type K8sObject,splitApiVersion } from './gatekeeper/types.js';
import { namespacePolicy } from './pss/evaluate.js';

/** Annotation `skiff audit` sets on constraints to ask for an audit now. */
export const AUDIT_REQUEST_ANNOTATION = 'audit.skiff.dev/requested';
const SKIP_KINDS = new Set(['Event']);
// Policy objects are not themselves subject to policy: a constraint matching every kind must not
// lock out edits to constraints (or `skiff audit`'s annotation), and audit would only report noise.
const POLICY_GROUPS = new Set([CONSTRAINTS_GROUP, 'templates.gatekeeper.sh']);

/** AdmissionPlatformOptions: the resource service it guards and audits, and the audit cadence. */
export interface AdmissionPlatformOptions {
  resources: ResourceService;
  logger: Logger;
  /** periodic audit interval in ms (Gatekeeper's default is 60 s); 0 disables the timer */
  auditIntervalMs?: number;
  /**
   * Whether start() also starts auditing (default true). In a cluster every node admits but only the
   * leader audits: the server starts the audit with startAudit() when the node starts leading.
   */
  auditOnStart?: boolean;
  violationsLimit?: number;
  /** Record every constraint evaluation here (NDJSON). */
  decisionLog?: DecisionLogger;
  /**
   * Gatekeeper external data for templates: fetched for each reviewed object before its constraints
   * run (image verification results), then answered from memory by `external_data`.
   */
  externalData?: (obj: ResourceObject) => Promise<ExternalDataLookup | undefined>;
  /** Told of every review this platform decides, with its verdict (the dashboard keeps the recent ones). */
  onReview?: (r: { review: AdmissionRequestJSON; allowed: boolean; denials: Finding[]; warnings: string[] }) => void;
}

/**
 * AdmissionPlatform is admission control inside `skiff up`: it serves ConstraintTemplates and the
 * constraint kinds they create, keeps a GatekeeperClient in step with them (informers), keeps
 * `data.inventory` filled from the store, enforces constraints and Pod Security on every write
 * through its AdmissionHook, and audits stored objects periodically and on request.
 */
export class AdmissionPlatform {
  /** A constraint gets this long per review; Gatekeeper's webhook answers within kube-apiserver's timeout the same way. */
  readonly client: GatekeeperClient;
  readonly hook: AdmissionHook;
  /** Reviews and violations counted for the metrics exporter. */
  readonly stats = new AdmissionStats();
  private readonly resources: ResourceService;
  private readonly logger: Logger;
  private tracer?: Tracer;
  private readonly ajv = newSchemaCompiler();
  private readonly templateInformer: Informer;
  private readonly constraintInformers = new Map<string, Informer>();
  private readonly inventoryInformers: Informer[] = [];
  private auditTimer?: NodeJS.Timeout;
  private auditing?: Promise<ConstraintAudit[]>;
  private auditAgain = false;
  private stopped = false;
  /** Set while this node audits: where audit results are written (fenced, on a cluster's leader). */
  private auditWriter?: ResourceService;

  constructor(private readonly opts: AdmissionPlatformOptions) {
    this.resources = opts.resources;
    this.logger = opts.logger;
    this.client = new GatekeeperClient({ evalTimeoutMs: 1000, decisionLog: opts.decisionLog });
    const templateDef = constraintTemplateKind((obj) => this.checkTemplate(obj));
    if (!this.resources.kinds.byPluralName(templateDef.plural, groupOf(templateDef))) this.resources.kinds.register(templateDef);
    this.templateInformer = new Informer(this.resources, templateDef, this.logger);
    this.templateInformer.addHandlers({
      onAdd: (o) => this.syncTemplate(o),
      onUpdate: (_old, o) => this.syncTemplate(o),
      onDelete: (o) => this.dropTemplate(o),
    });
    this.hook = { name: 'admission', admit: (req) => (this.tracer ? this.tracedAdmit(this.tracer, req) : this.admit(req)) };
  }

  /** useTracer records a span per admission review (a trace of its own, sampled like a new request's). */
  useTracer(tracer: Tracer | undefined): void {
    this.tracer = tracer;
  }

  private async tracedAdmit(tracer: Tracer, req: AdmissionRequest): Promise<AdmissionResponse> {
    const span = rootSpan(tracer, 'admission review', SpanKind.INTERNAL, { 'skiff.admission.kind': req.kind, 'skiff.admission.operation': req.operation, 'skiff.admission.namespace': req.namespace, 'skiff.admission.name': req.name });
    if (!span) return this.admit(req);
    try {
      const res = await this.admit(req);
      span.attributes['skiff.admission.allowed'] = res.allowed;
      span.attributes['skiff.admission.constraints'] = this.client.constraints().length;
      span.attributes['skiff.admission.violations'] = res.messages?.length ?? 0;
      span.end();
      return res;
    } catch (err) {
      span.end((err as Error)?.message ?? String(err));
      throw err;
    }
  }

  /** start fills the inventory from the store, loads stored templates and constraints, and starts the audit timer. */
  async start(): Promise<void> {
    for (const def of this.resources.kinds.all()) {
      if (SKIP_KINDS.has(def.kind) || groupOf(def) === CONSTRAINTS_GROUP || def.kind === 'ConstraintTemplate') continue;
      const inf = new Informer(this.resources, def, this.logger);
      // Namespaces are core v1 objects, where Kubernetes templates look for them in the inventory.
      const add = (o: ResourceObject) => this.client.addData(o as K8sObject);
      inf.addHandlers({
        onAdd: add,
        onUpdate: (_x, o) => add(o),
        onDelete: (o) => this.client.removeData(o as K8sObject),
      });
      this.inventoryInformers.push(inf);
      await inf.start();
    }
    await this.templateInformer.start();
    if (this.opts.auditOnStart !== false) this.startAudit();
  }

  /** startAudit audits periodically and on request, writing constraint status through `writer`. */
  startAudit(writer: ResourceService = this.resources): void {
    this.auditWriter = writer;
    if (this.opts.auditIntervalMs !== 0 && !this.auditTimer) {
      this.auditTimer = setInterval(() => void this.audit().catch((e) => this.logger.warn({ err: (e as Error).message }, 'audit failed')), this.opts.auditIntervalMs ?? 60_000);
      this.auditTimer.unref();
    }
  }

  /** stopAudit ends auditing (this node stopped leading) and waits for a running audit. */
  async stopAudit(): Promise<void> {
    this.auditWriter = undefined;
    if (this.auditTimer) clearInterval(this.auditTimer);
    this.auditTimer = undefined;
    await this.auditing?.catch(() => {});
  }

  /** stop ends the watches and the audit timer and waits for a running audit. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.auditTimer) clearInterval(this.auditTimer);
    this.templateInformer.stop();
    for (const i of this.constraintInformers.values()) i.stop();
    for (const i of this.inventoryInformers) i.stop();
    await this.auditing?.catch(() => {});
  }

  /** audit runs one audit over every stored object and writes each constraint's status; concurrent requests share a run. */
  audit(): Promise<ConstraintAudit[]> {
    if (this.auditing) {
      this.auditAgain = true;
      return this.auditing;
    }
    this.auditing = this.runAudit().finally(() => {
      this.auditing = undefined;
      if (this.auditAgain && !this.stopped) {
        this.auditAgain = false;
        void this.audit().catch(() => {});
      }
    });
    return this.auditing;
  }

  private async runAudit(): Promise<ConstraintAudit[]> {
    const objects: K8sObject[] = [];
    // The audit requests seen before evaluating: `skiff audit` waits until its request is echoed in status.
    const requests = new Map<string, string>();
    for (const def of this.resources.kinds.all()) {
      if (SKIP_KINDS.has(def.kind)) continue;
      const items = (await this.resources.list(def, undefined)).items;
      if (groupOf(def) === CONSTRAINTS_GROUP)
        for (const c of items) {
          const asked = c.metadata.annotations?.[AUDIT_REQUEST_ANNOTATION];
          if (asked) requests.set(`${c.kind}/${c.metadata.name}`, asked);
        }
      if (!POLICY_GROUPS.has(groupOf(def))) objects.push(...(items as K8sObject[]));
    }
    const started = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    const results = auditObjects(this.client, objects, this.opts.violationsLimit ?? DEFAULT_VIOLATIONS_LIMIT);
    const writer = this.auditWriter ?? this.resources;
    for (const r of results) {
      const def = this.resources.kinds.byPluralName(r.kind.toLowerCase(), CONSTRAINTS_GROUP);
      if (!def || this.stopped) continue;
      try {
        const live = await this.resources.get(def, undefined, r.name);
        const asked = requests.get(`${r.kind}/${r.name}`);
        const status = { ...(live.status ?? {}), auditTimestamp: started, totalViolations: r.totalViolations, violations: r.violations, ...(asked ? { auditRequest: asked } : {}) };
        await writer.updateStatus(def, undefined, r.name, { ...live, status, metadata: { ...live.metadata, resourceVersion: undefined } });
      } catch (e) {
        if (!(e instanceof ApiError && e.reason === 'NotFound')) this.logger.warn({ constraint: r.name, err: (e as Error).message }, 'cannot write audit status');
      }
    }
    this.logger.info({ objects: objects.length, constraints: results.length, violations: results.reduce((a, r) => a + r.totalViolations, 0) }, 'audit done');
    return results;
  }

  private checkTemplate(obj: ResourceObject): FieldError[] {
    try {
      compileTemplate(obj as K8sObject, this.ajv);
      return [];
    } catch (e) {
      return [{ field: 'spec', message: (e as Error).message, reason: 'FieldValueInvalid' }];
    }
  }

  private checkConstraint(obj: ResourceObject): FieldError[] {
    const t = this.client.template(obj.kind);
    if (!t) return [{ field: 'kind', message: `no ConstraintTemplate defines ${obj.kind} yet` }];
    try {
      compileConstraint(obj as K8sObject, t);
      return [];
    } catch (e) {
      return [{ field: 'spec', message: (e as Error).message, reason: 'FieldValueInvalid' }];
    }
  }

  private syncTemplate(obj: ResourceObject): void {
    let kind: string;
    try {
      kind = this.client.addTemplate(obj as K8sObject).kind;
    } catch (e) {
      this.logger.warn({ template: obj.metadata.name, err: (e as Error).message }, 'template does not compile');
      return;
    }
    if (this.constraintInformers.has(kind)) {
      // A changed template: constraints were re-checked by the client; re-add the stored ones it may have dropped.
      for (const c of this.constraintInformers.get(kind)!.list()) this.addConstraint(c);
      return;
    }
    const def: KindDefinition = constraintKind(kind, (o) => this.checkConstraint(o), () => (this.client.template(kind)?.source as ResourceObject | undefined)?.spec?.crd?.spec?.validation);
    if (!this.resources.kinds.byPluralName(def.plural, CONSTRAINTS_GROUP)) this.resources.kinds.register(def);
    const inf = new Informer(this.resources, def, this.logger);
    inf.addHandlers({
      onAdd: (c) => this.addConstraint(c),
      onUpdate: (old, c) => {
        this.addConstraint(c);
        const asked = c.metadata.annotations?.[AUDIT_REQUEST_ANNOTATION];
        if (asked && this.auditWriter && asked !== old.metadata.annotations?.[AUDIT_REQUEST_ANNOTATION]) void this.audit().catch((e) => this.logger.warn({ err: (e as Error).message }, 'audit failed'));
      },
      onDelete: (c) => this.client.removeConstraint(c.kind, c.metadata.name),
    });
    this.constraintInformers.set(kind, inf);
    inf.start().catch((e) => this.logger.error({ kind, err: (e as Error).message }, 'cannot watch constraints'));
  }

  private addConstraint(c: ResourceObject): void {
    try {
      this.client.addConstraint(c as K8sObject);
    } catch (e) {
      this.logger.warn({ constraint: c.metadata.name, err: (e as Error).message }, 'constraint ignored');
    }
  }

  private dropTemplate(obj: ResourceObject): void {
    const kind = String(obj.spec?.crd?.spec?.names?.kind ?? '');
    this.client.removeTemplate(kind);
    this.constraintInformers.get(kind)?.stop();
    this.constraintInformers.delete(kind);
    this.resources.kinds.unregister(CONSTRAINTS_GROUP, kind.toLowerCase());
  }

  private async admit(req: AdmissionRequest): Promise<AdmissionResponse> {
    // Like Gatekeeper's default webhook rules (CREATE, UPDATE): a non-compliant object must stay deletable.
    if (SKIP_KINDS.has(req.kind) || req.operation === 'DELETE') return { allowed: true };
    const obj = (req.object ?? req.oldObject) as K8sObject | undefined;
    if (!obj) return { allowed: true };
    const { group, version } = splitApiVersion(obj.apiVersion);
    if (POLICY_GROUPS.has(group)) return { allowed: true };
    const def = this.resources.kinds.byApiVersionKind(String(obj.apiVersion), req.kind);
    const review: AdmissionRequestJSON = {
      uid: randomUUID(),
      kind: { group, version, kind: req.kind },
      resource: { group, version, resource: def?.plural ?? req.kind.toLowerCase() },
      name: req.name,
      ...(req.namespace ? { namespace: req.namespace } : {}),
      operation: req.operation,
      userInfo: { username: req.userInfo.username, groups: req.userInfo.groups },
      object: req.object as K8sObject,
      ...(req.oldObject ? { oldObject: req.oldObject as K8sObject } : {}),
      dryRun: req.dryRun,
    };
    let nsObj: K8sObject | undefined;
    if (req.namespace) {
      const nsDef = this.resources.kinds.byPluralName('namespaces', CORE_GROUP);
      nsObj = nsDef ? ((await this.resources.tryGet(nsDef, undefined, req.namespace)) as K8sObject | undefined) : undefined;
    }
    const externalData = this.client.needsExternalData() && req.object ? await this.opts.externalData?.(req.object) : undefined;
    const d = decide(this.client, review, { namespaceObject: nsObj, externalData }, { namespace: namespacePolicy(nsObj?.metadata?.labels) });
    // dryrun constraints and Pod Security `audit` labels neither refuse nor warn: they are logged, as Kubernetes records audit annotations.
    this.opts.onReview?.({ review, allowed: d.allowed, denials: d.denials, warnings: d.warnings });
    if (d.audited.length) this.logger.info({ kind: req.kind, namespace: req.namespace, name: req.name, operation: req.operation, findings: d.audited }, 'admission audit findings');
    this.stats.record(req.operation, d);
    return { allowed: d.allowed, messages: d.denials.map((f) => f.message), warnings: d.warnings };
  }
}

/**
 * AdmissionStats counts reviews by operation and result, and violations by constraint (or Pod Security
 * level) and action. Keys are bounded by the operations and the installed constraints.
 */
export class AdmissionStats {
  /** `OPERATION allowed|denied` → reviews. */
  readonly reviews = new Map<string, number>();
  /** `deny|audit POLICY` → findings. */
  readonly violations = new Map<string, number>();

  record(operation: string, d: Decision): void {
    const r = `${operation} ${d.allowed ? 'allowed' : 'denied'}`;
    this.reviews.set(r, (this.reviews.get(r) ?? 0) + 1);
    for (const f of d.denials) this.add(`deny ${f.policy}`);
    for (const f of d.audited) this.add(`audit ${f.policy}`);
  }

  private add(key: string): void {
    this.violations.set(key, (this.violations.get(key) ?? 0) + 1);
  }
}

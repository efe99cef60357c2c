import type { Logger } from 'pino';

import { ApiError } from '../api/errors.js';
import { setCondition } from '../api/kinds/conditions.js';
import type { ResourceObject } from '../api/kinds/types.js';
import type { ResourceService } from '../api/resources.js';

import { cacheKey,Controller, Informer } from './runtime/index.js';

/** The slice of the gateway the route controller drives. */
export interface GatewayConfigSink {
  update(config: { routes: ResourceObject[]; services: ResourceObject[] }): Array<{ kind: string; namespace: string; name: string; message: string }>;
}

export interface RouteControllerOptions {
  resources: ResourceService;
  gateway: GatewayConfigSink;
  functions: Informer;
  logger: Logger;
  /** The function names a route sends traffic to (including mirrors). */
  functionRefs: (route: ResourceObject) => string[];
}

const ALL = '__all__';

/**
 * RouteController keeps the gateway's routing table equal to the stored Routes and Services, and
 * reports on each Route whether it can serve: every function it names exists and it compiled.
 * Routing is one table, so every change leads to one full, atomic update of it.
 */
export class RouteController {
  readonly routes: Informer;
  readonly services: Informer;
  readonly controller: Controller;
  private pending?: NodeJS.Timeout;

  constructor(private readonly opts: RouteControllerOptions) {
    this.routes = new Informer(opts.resources, opts.resources.kind('Route'), opts.logger);
    this.services = new Informer(opts.resources, opts.resources.kind('Service'), opts.logger);
    this.controller = new Controller({ name: 'routes', logger: opts.logger, keys: () => [ALL], reconcile: () => this.reconcile(), workers: 1, resyncMs: 30_000 });
    // Every change reprograms the whole table, so coalesce bursts (an apply of many objects) into one pass every 50 ms at most.
    const poke = () => {
      if (this.pending) return;
      this.pending = setTimeout(() => {
        this.pending = undefined;
        this.controller.enqueue(ALL);
      }, 50);
      this.pending.unref();
    };
    const onSpec = { onAdd: poke, onDelete: poke, onUpdate: (a: ResourceObject, b: ResourceObject) => a.metadata.generation !== b.metadata.generation && poke() };
    this.routes.addHandlers(onSpec);
    this.services.addHandlers({ onAdd: poke, onDelete: poke, onUpdate: poke });
    // A function appearing, disappearing or becoming ready changes whether routes to it can serve.
    opts.functions.addHandlers({ onAdd: poke, onDelete: poke, onUpdate: poke });
  }

  async start(): Promise<void> {
    await Promise.all([this.routes.start(), this.services.start()]);
    this.controller.start();
  }

  /** settled resolves once no change is waiting to be programmed and no pass is running. */
  async settled(): Promise<void> {
    while (this.pending) await new Promise((r) => setTimeout(r, 10));
    await this.controller.idle();
  }

  async stop(): Promise<void> {
    if (this.pending) clearTimeout(this.pending);
    this.routes.stop();
    this.services.stop();
    await this.controller.stop();
  }

  private async reconcile(): Promise<void> {
    const routes = this.routes.list();
    const problems = this.opts.gateway.update({ routes, services: this.services.list() });
    const byKey = new Map(problems.filter((p) => p.kind === 'Route').map((p) => [`${p.namespace}/${p.name}`, p.message]));
    for (const route of routes) {
      const key = cacheKey(route);
      const ns = route.metadata.namespace ?? 'default';
      const missing = this.opts.functionRefs(route).filter((fn) => !this.opts.functions.get(`${ns}/${fn}`));
      let cond: { status: 'True' | 'False'; reason: string; message: string };
      if (byKey.has(key)) cond = { status: 'False', reason: 'InvalidRoute', message: byKey.get(key)! };
      else if (missing.length) cond = { status: 'False', reason: 'FunctionNotFound', message: `${missing.length > 1 ? 'functions' : 'function'} ${missing.map((m) => `${ns}/${m}`).join(', ')} ${missing.length > 1 ? 'do' : 'does'} not exist; requests to ${missing.length > 1 ? 'them' : 'it'} get 503` };
      else cond = { status: 'True', reason: 'Accepted', message: 'the route is programmed in the gateway' };
      await this.writeStatus(route, cond);
    }
  }

  private async writeStatus(route: ResourceObject, cond: { status: 'True' | 'False'; reason: string; message: string }): Promise<void> {
    const def = this.opts.resources.kind('Route');
    const old = route.status ?? {};
    const next = { ...old, observedGeneration: route.metadata.generation, conditions: setCondition(old.conditions, { type: 'Ready', ...cond, observedGeneration: route.metadata.generation }) };
    if (JSON.stringify(next) === JSON.stringify(old)) return;
    try {
      await this.opts.resources.updateStatus(def, route.metadata.namespace, route.metadata.name, { metadata: { resourceVersion: route.metadata.resourceVersion }, status: next });
    } catch (err) {
      if (err instanceof ApiError && (err.reason === 'Conflict' || err.reason === 'NotFound')) {
        this.controller.enqueue(ALL);
        return;
      }
      throw err;
    }
  }
}

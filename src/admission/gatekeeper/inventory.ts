import { isNamespaceObject, type K8sObject } from './types.js';

type Tree = Record<string, Record<string, Record<string, Record<string, unknown>>>>;

/**
 * Inventory holds synced objects in Gatekeeper's `data.inventory` layout:
 * `cluster[groupVersion][kind][name]` for cluster-scoped objects and
 * `namespace[ns][groupVersion][kind][name]` for namespaced ones. The tree is handed to evaluation
 * as is (no copy), so an update costs one map write.
 */
export class Inventory {
  readonly tree: { cluster: Tree; namespace: Record<string, Tree> } = { cluster: {}, namespace: {} };
  private count = 0;

  /** add stores (or replaces) an object; objects without apiVersion, kind or name are ignored and reported false. */
  add(obj: K8sObject): boolean {
    const at = this.slot(obj, true);
    if (!at) return false;
    if (!(at.name in at.bucket)) this.count++;
    at.bucket[at.name] = obj;
    return true;
  }

  /** remove drops an object (by apiVersion, kind, namespace and name). */
  remove(obj: K8sObject): void {
    const at = this.slot(obj, false);
    if (at && at.name in at.bucket) {
      delete at.bucket[at.name];
      this.count--;
    }
  }

  /** size is how many objects are stored. */
  get size(): number {
    return this.count;
  }

  /** namespace returns the synced core/v1 Namespace of that name (used by namespaceSelector). */
  namespace(name: string): K8sObject | undefined {
    return (this.tree.cluster['v1']?.['Namespace']?.[name] ?? this.tree.cluster['skiff.dev/v1']?.['Namespace']?.[name]) as K8sObject | undefined;
  }

  /** objects lists every stored object. */
  *objects(): Generator<K8sObject> {
    const walk = function* (t: Tree): Generator<K8sObject> {
      for (const gv of Object.values(t)) for (const k of Object.values(gv)) for (const o of Object.values(k)) yield o as K8sObject;
    };
    yield* walk(this.tree.cluster);
    for (const t of Object.values(this.tree.namespace)) yield* walk(t);
  }

  /** clear empties the inventory in place (evaluations keep seeing the same tree object). */
  clear(): void {
    this.tree.cluster = {};
    this.tree.namespace = {};
    this.count = 0;
  }

  private slot(obj: K8sObject, create: boolean): { bucket: Record<string, unknown>; name: string } | undefined {
    const gv = obj?.apiVersion;
    const kind = obj?.kind;
    const name = obj?.metadata?.name;
    if (!gv || !kind || !name) return undefined;
    const ns = isNamespaceObject(obj) ? '' : (obj.metadata?.namespace ?? '');
    let root: Tree | undefined = ns ? this.tree.namespace[ns] : this.tree.cluster;
    if (!root) {
      if (!create) return undefined;
      root = this.tree.namespace[ns] = {};
    }
    const byKind = root[gv] ?? (create ? (root[gv] = {}) : undefined);
    const bucket = byKind?.[kind] ?? (create && byKind ? (byKind[kind] = {}) : undefined);
    return bucket ? { bucket, name } : undefined;
  }
}

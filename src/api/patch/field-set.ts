import { isJsonObject } from './json-value.js';

/**
 * A path element in Kubernetes' FieldsV1 spelling: `f:NAME` (a field of a map), `k:{"name":"x"}` (an
 * item of a list keyed by its fields), `v:VALUE` (an item of a set), `i:N` (an item by position).
 */
export type PathElement = string;

/** A path from an object's root to one field, as path elements. */
export type FieldPath = PathElement[];

/**
 * FieldSet is a set of field paths kept as a tree (the shape of FieldsV1): a node is a member when the
 * path to it is in the set, and may have members below it whether or not it is one itself.
 */
export class FieldSet {
  member = false;
  readonly children = new Map<PathElement, FieldSet>();

  /** insert adds one path. */
  insert(path: FieldPath, from = 0): void {
    if (from === path.length) {
      this.member = true;
      return;
    }
    let next = this.children.get(path[from]!);
    if (!next) this.children.set(path[from]!, (next = new FieldSet()));
    next.insert(path, from + 1);
  }

  /** has tells whether the exact path is a member. */
  has(path: FieldPath): boolean {
    return this.node(path)?.member ?? false;
  }

  /** hasAtOrBelow tells whether the path or any path under it is a member. */
  hasAtOrBelow(path: FieldPath): boolean {
    const n = this.node(path);
    return !!n && !n.empty();
  }

  /** empty tells whether no path at all is a member. */
  empty(): boolean {
    if (this.member) return false;
    for (const c of this.children.values()) if (!c.empty()) return false;
    return true;
  }

  /** paths lists every member path, depth first in FieldsV1 order. */
  paths(prefix: FieldPath = []): FieldPath[] {
    const out: FieldPath[] = this.member ? [prefix] : [];
    for (const pe of sortedKeys(this.children)) out.push(...this.children.get(pe)!.paths([...prefix, pe]));
    return out;
  }

  union(other: FieldSet): FieldSet {
    const out = this.clone();
    for (const p of other.paths()) out.insert(p);
    return out;
  }

  difference(other: FieldSet): FieldSet {
    const out = new FieldSet();
    for (const p of this.paths()) if (!other.has(p)) out.insert(p);
    return out;
  }

  intersection(other: FieldSet): FieldSet {
    const out = new FieldSet();
    for (const p of this.paths()) if (other.has(p)) out.insert(p);
    return out;
  }

  clone(): FieldSet {
    const out = new FieldSet();
    out.member = this.member;
    for (const [k, v] of this.children) out.children.set(k, v.clone());
    return out;
  }

  /** toFieldsV1 is the set as `metadata.managedFields[].fieldsV1`: `.` marks a member, children by path element. */
  toFieldsV1(): Record<string, unknown> {
    const children: Record<string, unknown> = {};
    for (const pe of sortedKeys(this.children)) {
      const child = this.children.get(pe)!;
      if (!child.empty()) children[pe] = child.toFieldsV1();
    }
    // A leaf is written `{}`; "." marks a member only where there are children beside it.
    return this.member && Object.keys(children).length ? { '.': {}, ...children } : children;
  }

  /** fromFieldsV1 reads a FieldsV1 tree; it throws an Error saying what is malformed. */
  static fromFieldsV1(raw: unknown, where = 'fieldsV1'): FieldSet {
    if (!isJsonObject(raw)) throw new Error(`${where} must be an object`);
    const out = new FieldSet();
    for (const [k, v] of Object.entries(raw)) {
      if (k === '.') {
        out.member = true;
        continue;
      }
      if (!/^[fkvi]:/.test(k)) throw new Error(`${where} has the key ${JSON.stringify(k)}; keys are ".", f:NAME, k:{...}, v:VALUE or i:N`);
      out.children.set(k, FieldSet.fromFieldsV1(v, `${where}.${k}`));
    }
    // A node with neither "." nor children is a member: kube writes leaves as `f:name: {}`.
    if (out.children.size === 0 && where !== 'fieldsV1') out.member = true;
    return out;
  }

  private node(path: FieldPath, from = 0): FieldSet | undefined {
    if (from === path.length) return this;
    return this.children.get(path[from]!)?.node(path, from + 1);
  }
}

const ORDER: Record<string, number> = { f: 0, k: 1, v: 2, i: 3 };

function sortedKeys(m: Map<PathElement, FieldSet>): PathElement[] {
  return [...m.keys()].sort((a, b) => ORDER[a[0]!]! - ORDER[b[0]!]! || (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * pathString spells a path as kube-apiserver does in conflict messages:
 * `.spec.limits.memory`, `.spec.capabilities.dirs[guest="/data"].readOnly`, `.metadata.finalizers[="x"]`.
 */
export function pathString(path: FieldPath): string {
  return path
    .map((pe) => {
      const rest = pe.slice(2);
      switch (pe[0]) {
        case 'f':
          return `.${rest}`;
        case 'k': {
          const keys = JSON.parse(rest) as Record<string, unknown>;
          return `[${Object.entries(keys).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(',')}]`;
        }
        case 'v':
          return `[=${rest}]`;
        default:
          return `[${rest}]`;
      }
    })
    .join('');
}

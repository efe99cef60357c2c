import type { Module, Rule, Term } from '../ast/types.js';

/**
 * RuleNode is one node of the `data` namespace: packages and rule paths. Rules whose head ref is
 * fully ground live at their full path; rules with variables in the head ref (`p[x] := y`,
 * `p contains x`) live at the node of their ground prefix and contribute to an object or set.
 */
export class RuleNode {
  readonly children = new Map<string, RuleNode>();
  /** rules defined exactly at this path (complete rules, functions) */
  readonly rules: Rule[] = [];
  /** rules whose head has variable parts after this path (`tails` gives those parts) */
  readonly dynamic: Array<{ rule: Rule; tail: Term[]; resolved?: Term[] }> = [];
  defaultRule: Rule | undefined;
  /** on the root only: every compiled module (for package annotations) */
  modules: Module[] | undefined;
  constructor(
    readonly path: string[],
    readonly parent: RuleNode | undefined,
  ) {}

  child(name: string): RuleNode {
    let c = this.children.get(name);
    if (!c) {
      c = new RuleNode([...this.path, name], this);
      this.children.set(name, c);
    }
    return c;
  }

  get isFunction(): boolean {
    return (this.rules[0] ?? this.defaultRule)?.kind === 'func';
  }

  /** hasRules tells whether this node or a descendant defines any rule. */
  hasAnyRule(): boolean {
    if (this.rules.length || this.dynamic.length || this.defaultRule) return true;
    for (const c of this.children.values()) if (c.hasAnyRule()) return true;
    return false;
  }

  lookup(path: readonly string[]): RuleNode | undefined {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    let n: RuleNode | undefined = this;
    for (const p of path) {
      n = n.children.get(p);
      if (!n) return undefined;
    }
    return n;
  }
}

/** groundPrefix returns how many leading head-ref terms are string constants. */
export function groundPrefix(ref: Term[]): number {
  let i = 0;
  while (i < ref.length && ref[i]!.type === 'scalar' && typeof (ref[i] as { value: unknown }).value === 'string') i++;
  return i;
}

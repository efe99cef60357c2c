import type { Module } from '../ast/types.js';

import { groundPrefix } from './tree.js';

/** Rules whose name starts with this are tests; `todo_test_` ones are skipped tests. */
export const TEST_PREFIX = 'test_';
export const SKIP_TEST_PREFIX = 'todo_test_';

/**
 * testNameIndex finds the head-ref term that names a test: the first term of the ground prefix
 * that starts with `test_` or `todo_test_` (so `p.test_x[k]` is the test `test_x` of `p`), or -1.
 */
export function testNameIndex(ref: Module['rules'][number]['ref']): number {
  const n = groundPrefix(ref);
  for (let i = 0; i < n; i++) {
    const v = (ref[i] as { value: unknown }).value as string;
    if (v.startsWith(TEST_PREFIX) || v.startsWith(SKIP_TEST_PREFIX)) return i;
  }
  return -1;
}

/**
 * renameDuplicateTests gives the second and later definitions of a test the names `NAME#01`,
 * `NAME#02`, ... in module order, as `opa test` does before it compiles. Without it, two bodies
 * written under one test name would be one rule whose result is true when either body holds, so
 * a failing body would be hidden by a passing one; OPA runs and reports each as its own test.
 * The count is per package path, across modules, as OPA keys it.
 */
export function renameDuplicateTests(modules: readonly Module[]): void {
  const seen = new Map<string, number>();
  for (const m of modules) {
    for (const r of m.rules) {
      const i = testNameIndex(r.ref);
      if (i < 0) continue;
      const name = (r.ref[i] as { value: string }).value;
      // skipped tests keep their names, as in OPA: they are reported, never run
      if (!name.startsWith(TEST_PREFIX)) continue;
      const key = JSON.stringify([...m.pkg, ...r.ref.slice(0, i + 1).map((t) => (t as { value: string }).value)]);
      const k = seen.get(key) ?? 0;
      if (k > 0) r.ref[i] = { type: 'scalar', value: `${name}#${String(k).padStart(2, '0')}`, loc: r.ref[i]!.loc };
      seen.set(key, k + 1);
    }
  }
}

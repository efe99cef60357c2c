import { isMap, isScalar, isSeq, type Node } from 'yaml';

/** A key that appears twice in one object of a request body; the later value is the one kept. */
export interface DuplicateField {
  /** Path of the field from the body's root: `spec.ports[0].hostPort`. */
  path: string;
  key: string;
  /** 1-based line of the second occurrence, for YAML bodies. */
  line?: number;
}

function child(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path === '' ? key : `${path}.${key}`;
}

interface Frame {
  kind: 'object' | 'array';
  path: string;
  keys: Set<string>;
  index: number;
  /** For an object: the key whose value comes next. */
  key?: string;
}

/**
 * jsonDuplicates lists the keys that appear more than once in one object of a JSON text, in document
 * order, with their paths. It expects text that `JSON.parse` accepted and reads it once, without
 * recursion (nesting is bounded before this runs, but a stack of frames costs nothing extra).
 */
export function jsonDuplicates(text: string): DuplicateField[] {
  const out: DuplicateField[] = [];
  const stack: Frame[] = [];
  // The path of the value that starts at the current position.
  const valuePath = (): string => {
    const top = stack[stack.length - 1];
    if (!top) return '';
    return top.kind === 'object' ? child(top.path, top.key ?? '') : child(top.path, top.index);
  };
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"') {
      let j = i + 1;
      let raw = '';
      for (; j < text.length; j++) {
        const d = text[j]!;
        if (d === '\\') {
          raw += d + text[j + 1];
          j++;
        } else if (d === '"') break;
        else raw += d;
      }
      const top = stack[stack.length - 1];
      if (expectKey && top?.kind === 'object') {
        const key = JSON.parse(`"${raw}"`) as string;
        if (top.keys.has(key)) out.push({ path: child(top.path, key), key });
        top.keys.add(key);
        top.key = key;
        expectKey = false;
      }
      i = j;
    } else if (c === '{') {
      stack.push({ kind: 'object', path: valuePath(), keys: new Set(), index: 0 });
      expectKey = true;
    } else if (c === '[') {
      stack.push({ kind: 'array', path: valuePath(), keys: new Set(), index: 0 });
    } else if (c === '}' || c === ']') {
      stack.pop();
    } else if (c === ',') {
      const top = stack[stack.length - 1];
      if (top?.kind === 'object') expectKey = true;
      else if (top) top.index++;
    }
  }
  return out;
}

/**
 * yamlDuplicates lists the keys that appear more than once in one mapping of a parsed YAML document
 * (parsed with `uniqueKeys: false`), in document order, with their paths and lines. `lineOf` turns a
 * source offset into a 1-based line.
 */
export function yamlDuplicates(root: unknown, lineOf: (offset: number) => number): DuplicateField[] {
  const out: DuplicateField[] = [];
  const work: Array<{ node: unknown; path: string }> = [{ node: root, path: '' }];
  // Depth-first in document order, without recursion.
  while (work.length) {
    const { node, path } = work.pop()!;
    const next: Array<{ node: unknown; path: string }> = [];
    if (isMap(node)) {
      const seen = new Set<string>();
      for (const pair of node.items) {
        const keyNode = pair.key as Node | null;
        const key = isScalar(keyNode) ? String(keyNode.value) : String(keyNode);
        if (seen.has(key)) out.push({ path: child(path, key), key, line: keyNode?.range ? lineOf(keyNode.range[0]) : undefined });
        seen.add(key);
        next.push({ node: pair.value, path: child(path, key) });
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => next.push({ node: item, path: child(path, i) }));
    }
    for (let k = next.length - 1; k >= 0; k--) work.push(next[k]!);
  }
  // Document order by line where known (the walk is depth-first, kube's list is by line).
  return out.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
}

import { CST, Lexer } from 'yaml';

/**
 * MAX_NESTING is how deeply objects and arrays may nest in a request body. Skiff's own kinds nest
 * about a dozen levels and a Gatekeeper template's schema a few dozen, so 100 leaves ample room, while
 * everything that walks an object afterwards (schema validation, merge patch, admission input, Rego
 * data, serialisation) recurses and stays far from the stack limit. Kubernetes' JSON decoder allows
 * 10,000 levels, which Go's growable stacks afford and a Node stack does not.
 */
export const MAX_NESTING = 100;

/**
 * YAML_SCAN_LIMIT is the bound {@link yamlNestingBoundExceeds} is held to before parsing. It is looser
 * than MAX_NESTING because that bound counts indentation, not structure; the yaml parser stays cheap
 * well past it, and the exact limit is enforced on the parsed value.
 */
export const YAML_SCAN_LIMIT = 10 * MAX_NESTING;

/**
 * jsonNestingExceeds scans JSON text once, without parsing it, and tells whether arrays and objects
 * nest deeper than `limit`. It runs before JSON.parse so that nothing recursive ever sees a deeper
 * document. Brackets inside strings do not count; the text need not be valid JSON (the parser judges that).
 */
export function jsonNestingExceeds(bytes: Uint8Array, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true;
    } else if ((c === 0x5d || c === 0x7d) && depth > 0) {
      depth--;
    }
  }
  return false;
}

/**
 * yamlNestingBoundExceeds tells whether a YAML text might nest deeper than `limit`, from the yaml
 * library's own lexer (linear, not recursive, and stopped as soon as the bound is passed). The yaml
 * parser's cost grows with depth before its recursion fails, so a body of nothing but `[` would hold
 * the process for seconds and gigabytes: this bound keeps such input away from it.
 *
 * The bound is conservative: a block collection that starts at column c is at most 2(c+1) levels
 * deep (each column holds at most a mapping and a sequence, since only a sequence may share its
 * parent mapping's indentation), and flow collections add their own depth on top of the column
 * where they start. The exact depth is checked after parsing with {@link valueNestingExceeds}.
 */
export function yamlNestingBoundExceeds(text: string, limit: number): boolean {
  let column = 0;
  let flow = 0;
  let flowBase = 0;
  for (const token of new Lexer().lex(text)) {
    const type = CST.tokenType(token);
    switch (type) {
      case 'doc-mode':
      case 'scalar':
      case 'flow-error-end':
        // Control tokens of the lexer, not source text. A flow collection the lexer ends early keeps
        // counting here: overestimating is safe.
        continue;
      case 'newline':
        column = 0;
        continue;
      case 'flow-map-start':
      case 'flow-seq-start':
        if (flow === 0) flowBase = 2 * (column + 1);
        flow++;
        if (flowBase + flow > limit) return true;
        break;
      case 'flow-map-end':
      case 'flow-seq-end':
        if (flow > 0) flow--;
        break;
      default:
        if (flow === 0 && type !== 'space' && type !== 'comment' && type !== 'block-scalar-header' && 2 * (column + 1) > limit) return true;
    }
    const nl = token.lastIndexOf('\n');
    column = nl < 0 ? column + token.length : token.length - nl - 1;
  }
  return false;
}

/**
 * valueNestingExceeds walks a parsed value without recursion and tells whether it nests deeper than
 * `limit`. Values shared through YAML aliases are walked again only when reached at a greater depth,
 * and a cycle (an alias inside its own anchor) counts as too deep.
 */
export function valueNestingExceeds(value: unknown, limit: number): boolean {
  const deepest = new Map<object, number>();
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth > limit) return true;
    if ((deepest.get(v) ?? 0) >= depth) continue;
    deepest.set(v, depth);
    for (const child of Array.isArray(v) ? v : Object.values(v)) if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
  }
  return false;
}

/** K8sLabelSelector is Kubernetes' structured label selector (metav1.LabelSelector). */
export interface K8sLabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: Array<{ key: string; operator: string; values?: string[] }>;
}

/** CompiledSelector answers whether a label set is selected. */
export type CompiledSelector = (labels: Record<string, string> | undefined) => boolean;

const OPERATORS = new Set(['In', 'NotIn', 'Exists', 'DoesNotExist']);

/**
 * selectorProblems lists what is wrong with a selector as Kubernetes' ValidateLabelSelector would
 * (unknown operator, values with Exists, no values with In); empty when it is valid.
 */
export function selectorProblems(sel: unknown, field: string): string[] {
  if (sel === undefined || sel === null) return [];
  if (typeof sel !== 'object' || Array.isArray(sel)) return [`${field} must be an object with matchLabels and/or matchExpressions`];
  const s = sel as K8sLabelSelector;
  const out: string[] = [];
  if (s.matchLabels !== undefined) {
    if (typeof s.matchLabels !== 'object' || s.matchLabels === null || Array.isArray(s.matchLabels)) out.push(`${field}.matchLabels must be a map of strings`);
    else for (const [k, v] of Object.entries(s.matchLabels)) if (typeof v !== 'string') out.push(`${field}.matchLabels.${k} must be a string`);
  }
  if (s.matchExpressions !== undefined) {
    if (!Array.isArray(s.matchExpressions)) out.push(`${field}.matchExpressions must be a list`);
    else
      s.matchExpressions.forEach((e, i) => {
        const f = `${field}.matchExpressions[${i}]`;
        if (!e || typeof e.key !== 'string' || !e.key) out.push(`${f}.key is required`);
        if (!OPERATORS.has(e?.operator)) out.push(`${f}.operator "${e?.operator}" is not one of In, NotIn, Exists, DoesNotExist`);
        else if ((e.operator === 'In' || e.operator === 'NotIn') && !(Array.isArray(e.values) && e.values.length)) out.push(`${f}.values must be non-empty when operator is ${e.operator}`);
        else if ((e.operator === 'Exists' || e.operator === 'DoesNotExist') && e.values?.length) out.push(`${f}.values must be empty when operator is ${e.operator}`);
      });
  }
  return out;
}

/** compileSelector turns a (validated) selector into a predicate; an empty selector selects everything. */
export function compileSelector(sel: K8sLabelSelector): CompiledSelector {
  const tests: CompiledSelector[] = [];
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) tests.push((l) => l?.[k] === v);
  for (const e of sel.matchExpressions ?? []) {
    const values = new Set(e.values ?? []);
    const has = (l: Record<string, string> | undefined) => l !== undefined && Object.prototype.hasOwnProperty.call(l, e.key);
    switch (e.operator) {
      case 'In':
        tests.push((l) => has(l) && values.has(l![e.key]!));
        break;
      case 'NotIn':
        tests.push((l) => !has(l) || !values.has(l![e.key]!));
        break;
      case 'Exists':
        tests.push(has);
        break;
      default:
        tests.push((l) => !has(l));
    }
  }
  return (labels) => tests.every((t) => t(labels));
}

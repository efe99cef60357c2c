import { badRequest } from './errors.js';

type Requirement =
  | { op: 'eq' | 'neq'; key: string; value: string }
  | { op: 'in' | 'notin'; key: string; values: Set<string> }
  | { op: 'exists' | 'notexists'; key: string };

/** A compiled label selector: call `matches(labels)`. */
export interface LabelSelector {
  matches(labels: Record<string, string> | undefined): boolean;
  readonly empty: boolean;
}

const KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const VALUE = /^(|[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$/;

/**
 * parseLabelSelector reads Kubernetes' label selector syntax: `a=b`, `a==b`, `a!=b`, `a in (x,y)`,
 * `a notin (x)`, `a`, `!a`, joined by commas. Throws a 400 ApiError naming the bad requirement.
 */
export function parseLabelSelector(text: string | null | undefined): LabelSelector {
  const reqs: Requirement[] = [];
  const src = (text ?? '').trim();
  let i = 0;
  const fail = (what: string): never => {
    throw badRequest(`invalid labelSelector "${src}": ${what} at position ${i + 1}`);
  };
  const skipWs = () => {
    while (i < src.length && src[i] === ' ') i++;
  };
  const readKey = (): string => {
    skipWs();
    const m = /^[A-Za-z0-9][-A-Za-z0-9_./]*/.exec(src.slice(i));
    if (!m) fail('expected a label key');
    i += m![0].length;
    if (!KEY.test(m![0])) fail(`"${m![0]}" is not a valid label key`);
    return m![0];
  };
  const readValue = (): string => {
    skipWs();
    const m = /^[-A-Za-z0-9_.]*/.exec(src.slice(i))!;
    i += m[0].length;
    if (!VALUE.test(m[0])) fail(`"${m[0]}" is not a valid label value`);
    return m[0];
  };
  while (i < src.length) {
    skipWs();
    if (src[i] === '!') {
      i++;
      reqs.push({ op: 'notexists', key: readKey() });
    } else {
      const key = readKey();
      skipWs();
      const rest = src.slice(i);
      if (rest.startsWith('==') || rest.startsWith('!=')) {
        i += 2;
        reqs.push({ op: rest[0] === '!' ? 'neq' : 'eq', key, value: readValue() });
      } else if (rest.startsWith('=')) {
        i += 1;
        reqs.push({ op: 'eq', key, value: readValue() });
      } else if (/^(in|notin)\s*\(/.test(rest)) {
        const op = rest.startsWith('in') ? 'in' : 'notin';
        i += op.length;
        skipWs();
        i++; // (
        const values = new Set<string>();
        for (;;) {
          values.add(readValue());
          skipWs();
          if (src[i] === ',') {
            i++;
            continue;
          }
          if (src[i] === ')') {
            i++;
            break;
          }
          fail('expected , or ) in the value set');
        }
        reqs.push({ op, key, values });
      } else {
        reqs.push({ op: 'exists', key });
      }
    }
    skipWs();
    if (i < src.length) {
      if (src[i] !== ',') fail('expected ,');
      i++;
    }
  }
  return {
    empty: reqs.length === 0,
    matches(labels) {
      const l = labels ?? {};
      for (const r of reqs) {
        const has = Object.prototype.hasOwnProperty.call(l, r.key);
        const v = l[r.key];
        switch (r.op) {
          case 'eq':
            if (!has || v !== r.value) return false;
            break;
          case 'neq':
            if (has && v === r.value) return false;
            break;
          case 'in':
            if (!has || !r.values.has(v!)) return false;
            break;
          case 'notin':
            if (has && r.values.has(v!)) return false;
            break;
          case 'exists':
            if (!has) return false;
            break;
          case 'notexists':
            if (has) return false;
            break;
        }
      }
      return true;
    },
  };
}

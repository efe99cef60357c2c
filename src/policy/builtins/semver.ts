import { str } from './operands.js';
import { type Builtin,builtinErr } from './types.js';

const SEMVER = /^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/;

function cmpSemver(a: RegExpExecArray, b: RegExpExecArray): number {
  for (let i = 1; i <= 3; i++) {
    const x = BigInt(a[i]!);
    const y = BigInt(b[i]!);
    if (x !== y) return x < y ? -1 : 1;
  }
  const pa = a[4];
  const pb = b[4];
  if (pa === pb) return 0;
  if (pa === undefined) return 1;
  if (pb === undefined) return -1;
  const xa = pa.split('.');
  const xb = pb.split('.');
  for (let i = 0; i < Math.max(xa.length, xb.length); i++) {
    const p = xa[i];
    const q = xb[i];
    if (p === undefined) return -1;
    if (q === undefined) return 1;
    const np = /^\d+$/.test(p);
    const nq = /^\d+$/.test(q);
    if (np && nq) {
      const d = BigInt(p) - BigInt(q);
      if (d !== 0n) return d < 0n ? -1 : 1;
    } else if (np !== nq) return np ? -1 : 1;
    else if (p !== q) return p < q ? -1 : 1;
  }
  return 0;
}

/** Semantic versions (semver 2.0.0). */
export const register: Record<string, Builtin> = {
  'semver.is_valid': { arity: 1, fn: (a) => typeof a[0] === 'string' && SEMVER.test(a[0]) && !a[0].startsWith('v') },
  'semver.compare': {
    arity: 2,
    fn: (a) => {
      const x = str('semver.compare', a, 0);
      const y = str('semver.compare', a, 1);
      const mx = x.startsWith('v') ? null : SEMVER.exec(x);
      if (!mx) throw builtinErr('semver.compare', `operand 1: string ${JSON.stringify(x)} is not a valid SemVer`);
      const my = y.startsWith('v') ? null : SEMVER.exec(y);
      if (!my) throw builtinErr('semver.compare', `operand 2: string ${JSON.stringify(y)} is not a valid SemVer`);
      return cmpSemver(mx, my);
    },
  },
};

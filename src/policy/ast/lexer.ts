import { RegoError } from '../errors.js';

/** Token kinds produced by the lexer. */
/** A number literal (any length: digits beyond a float's are kept as a decimal). */
const NUM = /[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?/y;

export type TokKind = 'ident' | 'string' | 'number' | 'op' | 'template' | 'eof';

/** Tok is one token; `nl` says a newline came before it (Rego bodies are newline-separated). */
export interface Tok {
  k: TokKind;
  v: string;
  row: number;
  col: number;
  nl: boolean;
  /** for templates: literal text and expression sources with their positions */
  parts?: Array<string | { src: string; row: number; col: number }>;
}

const OPS = [':=', '==', '!=', '<=', '>=', '{', '}', '[', ']', '(', ')', '.', ',', ';', ':', '=', '<', '>', '+', '-', '*', '/', '%', '&', '|'];

/** lex splits Rego source into tokens. */
export function lex(src: string, file: string): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  let row = 1;
  let lineStart = 0;
  let nl = false;
  const err = (msg: string, at = i): never => {
    throw new RegoError('rego_parse_error', msg, { file, row, col: at - lineStart + 1 });
  };
  while (i < src.length) {
    const c = src[i]!;
    if (c === '\n') {
      i++;
      row++;
      lineStart = i;
      nl = true;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r') {
      i++;
      continue;
    }
    if (c === '#') {
      while (i < src.length && src[i] !== '\n') i++;
      continue;
    }
    const col = i - lineStart + 1;
    const startRow = row;
    if (/[A-Za-z_]/.test(c)) {
      let j = i + 1;
      while (j < src.length && /[A-Za-z0-9_]/.test(src[j]!)) j++;
      toks.push({ k: 'ident', v: src.slice(i, j), row, col, nl });
      i = j;
    } else if (/[0-9]/.test(c)) {
      NUM.lastIndex = i;
      const m = NUM.exec(src)!;
      toks.push({ k: 'number', v: m[0], row, col, nl });
      i += m[0].length;
    } else if (c === '"') {
      const j = scanQuoted(src, i, err);
      let s: string;
      try {
        s = JSON.parse(src.slice(i, j)) as string;
      } catch {
        err('non-terminated string or bad escape');
      }
      toks.push({ k: 'string', v: s!, row, col, nl });
      i = j;
    } else if (c === '`') {
      const j = src.indexOf('`', i + 1);
      if (j < 0) err('non-terminated raw string');
      const s = src.slice(i + 1, j);
      for (const ch of s) if (ch === '\n') row++;
      if (s.includes('\n')) lineStart = i + 1 + s.lastIndexOf('\n') + 1;
      toks.push({ k: 'string', v: s, row: startRow, col, nl });
      i = j + 1;
    } else if (c === '$' && (src[i + 1] === '"' || src[i + 1] === '`')) {
      const raw = src[i + 1] === '`';
      const parts: Array<string | { src: string; row: number; col: number }> = [];
      let j = i + 2;
      let lit = '';
      for (;;) {
        if (j >= src.length) err('non-terminated template string');
        const ch = src[j]!;
        if ((!raw && ch === '"') || (raw && ch === '`')) break;
        if (ch === '\\' && src[j + 1] === '{') {
          lit += '{';
          j += 2;
          continue;
        }
        if (!raw && ch === '\\') {
          const k = j + 2 + (src[j + 1] === 'u' ? 4 : 0);
          lit += JSON.parse('"' + src.slice(j, k) + '"') as string;
          j = k;
          continue;
        }
        if (ch === '{') {
          if (lit) parts.push(lit);
          lit = '';
          const start = j + 1;
          let depth = 1;
          let k = start;
          while (k < src.length && depth > 0) {
            const d = src[k]!;
            if (d === '"') {
              k = scanQuoted(src, k, err);
              continue;
            }
            if (d === '{') depth++;
            else if (d === '}') depth--;
            k++;
          }
          if (depth) err('non-terminated template expression');
          parts.push({ src: src.slice(start, k - 1), row, col: start - lineStart + 1 });
          j = k;
          continue;
        }
        if (ch === '\n') {
          row++;
          lineStart = j + 1;
        }
        lit += ch;
        j++;
      }
      if (lit) parts.push(lit);
      toks.push({ k: 'template', v: '', row: startRow, col, nl, parts });
      i = j + 1;
    } else {
      const op = OPS.find((o) => src.startsWith(o, i));
      if (!op) err(`illegal token '${c}'`);
      toks.push({ k: 'op', v: op!, row, col, nl });
      i += op!.length;
    }
    nl = false;
  }
  toks.push({ k: 'eof', v: '', row, col: i - lineStart + 1, nl: true });
  return toks;
}

function scanQuoted(src: string, i: number, err: (m: string) => never): number {
  let j = i + 1;
  while (j < src.length && src[j] !== '"') {
    if (src[j] === '\\') j++;
    if (src[j] === '\n') err('non-terminated string');
    j++;
  }
  if (j >= src.length) err('non-terminated string');
  return j + 1;
}

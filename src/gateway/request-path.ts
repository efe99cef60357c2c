import { GatewayError } from './errors.js';

/**
 * EscapedSlashesAction is what the gateway does with `%2F` and `%5C` in a path, named after Envoy's
 * `path_with_escaped_slashes_action`: refuse the request (the default), keep the escapes as they are
 * (they are then not separators), decode them into `/` and forward, or decode them and redirect the
 * client to the decoded path.
 */
export type EscapedSlashesAction = 'reject' | 'keep' | 'unescape-and-forward' | 'unescape-and-redirect';

/** ESCAPED_SLASHES_ACTIONS lists the accepted values of {@link EscapedSlashesAction}, for flag and option checks. */
export const ESCAPED_SLASHES_ACTIONS: readonly EscapedSlashesAction[] = ['reject', 'keep', 'unescape-and-forward', 'unescape-and-redirect'];

/** PathOptions configures request path normalisation; see {@link DEFAULT_PATH_OPTIONS}. */
export interface PathOptions {
  /** What to do with `%2F`/`%5C` (and a raw `\`, which only `reject` refuses). */
  escapedSlashes: EscapedSlashesAction;
  /** Merge runs of `/` into one, as Envoy's `merge_slashes`. */
  mergeSlashes: boolean;
}

/** DEFAULT_PATH_OPTIONS: escaped slashes refused, repeated slashes merged. */
export const DEFAULT_PATH_OPTIONS: Readonly<PathOptions> = Object.freeze({ escapedSlashes: 'reject', mergeSlashes: true });

/** BadPathError: the request path cannot be normalised safely (400); the message says why. */
export class BadPathError extends GatewayError {
  constructor(why: string, status = 400, code = 'bad_path') {
    super(code, status, `${status === 400 ? 'bad request' : 'URI too long'}: ${why}\n`, `request path refused: ${why}`);
  }
}

/**
 * MAX_PATH_LENGTH bounds the paths the gateway routes (414 beyond it, as nginx answers a request line
 * over its buffers). Regex matching is linear in its input but, with re2js, its constant is large
 * enough that an unbounded path would let a hostile route regex take a noticeable slice of the
 * gateway's thread per request; a path this long is never legitimate.
 */
export const MAX_PATH_LENGTH = 8192;

/** PathRedirect: with `unescape-and-redirect`, the client is sent to the decoded `path`. */
export class PathRedirect {
  constructor(readonly path: string) {}
}

const SLASH = 47;
const DOT = 46;
const PERCENT = 37;
const BACKSLASH = 92;
const HASH = 35;
const HEX = '0123456789ABCDEF';

/**
 * isNormalPath tells, in one scan and without allocating, whether a path is already in normal form:
 * it starts with `/` and has no `%`, `\`, `#`, control character, dot segment or (when merging)
 * repeated slash. This is the common case, and normalisation then returns the path itself.
 */
export function isNormalPath(p: string, mergeSlashes: boolean): boolean {
  const n = p.length;
  if (n === 0 || p.charCodeAt(0) !== SLASH) return false;
  for (let i = 0; i < n; i++) {
    const c = p.charCodeAt(i);
    if (c === SLASH) {
      // charCodeAt past the end is NaN, which equals nothing: `end` below is `x !== x`.
      const d = p.charCodeAt(i + 1);
      if (d === SLASH) {
        if (mergeSlashes) return false;
      } else if (d === DOT) {
        const e = p.charCodeAt(i + 2);
        if (e !== e || e === SLASH) return false;
        if (e === DOT) {
          const f = p.charCodeAt(i + 3);
          if (f !== f || f === SLASH) return false;
        }
      }
    } else if (c === PERCENT || c === BACKSLASH || c === HASH || c <= 32 || c === 127) return false;
  }
  return true;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 70) return c - 55;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

/** RFC 3986 §2.3: ALPHA / DIGIT / "-" / "." / "_" / "~" */
function isUnreserved(b: number): boolean {
  return (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || (b >= 48 && b <= 57) || b === 45 || b === 46 || b === 95 || b === 126;
}

/**
 * normalizePath turns an origin-form request path (no query) into the path the gateway matches,
 * authorizes, logs and forwards, as Envoy does by default: percent-escapes of unreserved characters
 * are decoded (`%2e` → `.`, `%7E` → `~`), the others kept with upper-case hex; dot segments are
 * removed (RFC 3986 §5.2.4); repeated slashes merged afterwards (`/a//../b` → `/a/b`). `%2F`/`%5C` and a raw `\` follow
 * `escapedSlashes`. It returns the path (the same string when it was already normal), a
 * {@link PathRedirect}, or a {@link BadPathError} for a malformed escape, a fragment, a control
 * character, a refused escaped slash or a path that does not start with `/`.
 *
 * @example
 * normalizePath('/public/%2e%2e/apis/x', DEFAULT_PATH_OPTIONS) // '/apis/x'
 * normalizePath('/a%2Fb', DEFAULT_PATH_OPTIONS)                // BadPathError (400)
 */
export function normalizePath(p: string, opts: Readonly<PathOptions>): string | PathRedirect | BadPathError {
  if (p.length > MAX_PATH_LENGTH) return new BadPathError(`the path is longer than ${MAX_PATH_LENGTH} characters`, 414, 'path_too_long');
  if (isNormalPath(p, opts.mergeSlashes)) return p;
  if (p.charCodeAt(0) !== SLASH) return new BadPathError('the request target must be a path starting with /');
  const action = opts.escapedSlashes;
  const merge = opts.mergeSlashes;
  const segs: string[] = [];
  let trailing = false;
  let sawEscapedSlash = false;
  let seg = '';
  // Characters from runStart to i that need no change are copied in one slice.
  let runStart = 1;
  const n = p.length;
  const endSegment = (last: boolean) => {
    if (seg === '.' || seg === '..') {
      if (seg === '..') segs.pop();
      if (last) trailing = true;
    } else if (seg === '') {
      // Kept until the end so that `..` removes it, as when Envoy merges slashes after normalising.
      if (last) trailing = true;
      else segs.push('');
    } else segs.push(seg);
    seg = '';
  };
  for (let i = 1; i < n; i++) {
    const c = p.charCodeAt(i);
    if (c === SLASH) {
      seg += p.slice(runStart, i);
      runStart = i + 1;
      endSegment(false);
    } else if (c === PERCENT) {
      const hi = hexValue(p.charCodeAt(i + 1));
      const lo = hexValue(p.charCodeAt(i + 2));
      if (hi < 0 || lo < 0) return new BadPathError('malformed percent-escape in the path');
      seg += p.slice(runStart, i);
      runStart = i + 3;
      const b = hi * 16 + lo;
      if (isUnreserved(b)) seg += String.fromCharCode(b);
      else if (b === SLASH || b === BACKSLASH) {
        sawEscapedSlash = true;
        if (action === 'reject') return new BadPathError('the path contains an escaped slash (%2F or %5C)');
        if (action === 'keep') seg += b === SLASH ? '%2F' : '%5C';
        else endSegment(false);
      } else seg += '%' + HEX[hi] + HEX[lo];
      i += 2;
    } else if (c === BACKSLASH) {
      if (action === 'reject') return new BadPathError('the path contains a backslash');
      // As Envoy's normalisation does: a backslash is a separator the way browsers read it.
      seg += p.slice(runStart, i);
      runStart = i + 1;
      endSegment(false);
    } else if (c === HASH) return new BadPathError('the path contains a fragment (#)');
    else if (c <= 32 || c === 127) return new BadPathError('the path contains a control character or a space');
  }
  seg += p.slice(runStart);
  endSegment(true);
  if (merge) for (let i = segs.length - 1; i >= 0; i--) if (segs[i] === '') segs.splice(i, 1);
  const out = segs.length === 0 ? '/' : trailing ? `/${segs.join('/')}/` : `/${segs.join('/')}`;
  if (sawEscapedSlash && action === 'unescape-and-redirect') return new PathRedirect(out);
  return out === p ? p : out;
}

/**
 * originForm reduces an HTTP/1.1 request target to its path, so no form skips normalisation. The
 * origin form (`/path`) is returned as is. For the absolute form (`http://host/path`), which
 * RFC 9112 §3.2.2 says a server must accept, the path is returned and `authority` is the host the
 * request is for (the Host header is to be replaced by it). Anything else — `*`, an authority form,
 * another scheme, user information, an empty host — is a {@link BadPathError}.
 */
export function originForm(target: string): { path: string; authority?: string } | BadPathError {
  if (target.charCodeAt(0) === SLASH) return { path: target };
  const m = /^(?:https?):\/\/([^/?#]*)(.*)$/i.exec(target);
  if (!m) return new BadPathError('the request target must be a path starting with / (or an absolute http URL)');
  const authority = m[1]!;
  if (!/^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::\d{1,5})?$/.test(authority)) return new BadPathError('the request target has an invalid host');
  return { path: m[2] === '' ? '/' : m[2]!, authority };
}

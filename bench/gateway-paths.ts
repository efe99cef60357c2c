// Micro-benchmark of the gateway's per-request path work: normalising an already-normal path (the
// common case, one scan), normalising paths that need it, and matching a route regex with re2js next
// to the JS RegExp it replaced. Prints ns per call; `--json FILE` writes the usual report.
import { DEFAULT_PATH_OPTIONS, normalizePath } from '../src/gateway/request-path.js';
import { compileRegex } from '../src/gateway/router/values.js';

import { emit, parseBenchArgs } from './lib/report.js';

const { json } = parseBenchArgs();

let sink = 0;
/** nsPerCall runs fn in batches after a warm-up and keeps the fastest batch (the least disturbed by other work). */
function nsPerCall(fn: () => unknown, calls = 2_000_000, batches = 5): number {
  for (let i = 0; i < calls / 10; i++) fn();
  let best = Infinity;
  for (let b = 0; b < batches; b++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < calls; i++) if (fn()) sink++;
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / calls);
  }
  return best;
}

const normal = '/api/v1/namespaces/default/orders/12345/items';
const opts = DEFAULT_PATH_OPTIONS;
const re2 = compileRegex('/items/[0-9]+');
if (typeof re2 === 'string') throw new Error(re2);
const js = /^(?:\/items\/[0-9]+)$/;

const figures = {
  normal_path_ns: nsPerCall(() => normalizePath(normal, opts)),
  dot_segments_path_ns: nsPerCall(() => normalizePath('/public/a/../b/./c', opts), 500_000),
  encoded_dots_path_ns: nsPerCall(() => normalizePath('/public/%2e%2e/apis/x', opts), 500_000),
  prefix_match_ns: nsPerCall(() => normal.startsWith('/api/v1/')),
  regex_match_re2js_ns: nsPerCall(() => re2.matches('/items/12345'), 500_000),
  regex_match_js_regexp_ns: nsPerCall(() => js.test('/items/12345')),
};
if (normalizePath(normal, opts) !== normal) throw new Error('an already-normal path must come back unchanged');
emit({ name: 'gateway-paths', figures, peers: {} }, json);
if (sink < 0) process.stdout.write('');

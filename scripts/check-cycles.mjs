#!/usr/bin/env node
// Fails (exit 1) on an import cycle in src/, at two levels:
//  - between modules: madge's own cycle search over every import and re-export, `import type` included;
//  - between areas (src/<area>/): an area may not import, through any chain of files, an area that
//    imports it back (api must not import the gateway, which imports api). A file-level search misses
//    these when the files involved differ (api/kinds/route.ts -> gateway -> api/kinds/types.ts).
//  - against the layering: each area has a layer, and an area may import only areas of its own layer
//    or below (LAYERS below). A new area must be given a layer here, which is the moment to decide it.
// Unit tests beside the sources (*.test.ts) are left out of the area graph: they may use test helpers.
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import madge from 'madge';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const result = await madge(join(root, 'src'), {
  fileExtensions: ['ts'],
  tsConfig: join(root, 'tsconfig.json'),
  baseDir: join(root, 'src'),
});

const problems = [];
const skipped = result.warnings().skipped;
if (skipped.length) problems.push(`imports madge could not resolve (their cycles would go unseen):\n  ${skipped.join('\n  ')}`);

for (const cycle of result.circular()) problems.push(`module cycle: ${[...cycle, cycle[0]].join(' -> ')}`);

const areaOf = (file) => (file.includes('/') ? file.slice(0, file.indexOf('/')) : null);
/** edges[a][b] is one file-level import that makes area a depend on area b (the first found). */
const edges = new Map();
for (const [file, deps] of Object.entries(result.obj())) {
  const from = areaOf(file);
  if (!from || from === '..' || file.endsWith('.test.ts')) continue;
  for (const dep of deps) {
    const to = areaOf(dep);
    if (!to || to === from || to === '..') continue;
    if (!edges.has(from)) edges.set(from, new Map());
    if (!edges.get(from).has(to)) edges.get(from).set(to, `${file} -> ${dep}`);
  }
}
// Top to bottom. An area may depend on its own layer (cycles are caught above) and on lower ones.
const LAYERS = [
  ['cli'],
  ['server', 'dashboard', 'observability'],
  // gitops (sources, syncs, rollouts) runs on the controller runtime beside the other controllers;
  // cluster (node agent, node lifecycle, leader election, fencing) runs on it too and decides where
  // and whether those controllers run.
  ['controllers', 'gitops', 'cluster'],
  ['functions', 'gateway', 'admission', 'workloads'],
  ['runtime', 'policy', 'manifests', 'signing', 'autoscaling'],
  // oci is a client library beside the API: module references in resources are parsed with it.
  ['api', 'oci'],
  ['store'],
  ['security', 'util'],
];
const layerOf = new Map(LAYERS.flatMap((areas, i) => areas.map((a) => [a, i])));
for (const [from, tos] of edges) {
  if (!layerOf.has(from)) problems.push(`area ${from}/ has no layer: add it to LAYERS in scripts/check-cycles.mjs`);
  for (const [to, via] of tos) {
    if (layerOf.has(from) && layerOf.has(to) && layerOf.get(to) < layerOf.get(from)) {
      problems.push(`layering: ${from}/ may not import ${to}/, a higher layer\n    ${via}`);
    }
  }
}

// Depth-first search over the area graph; a grey area reached again closes a cycle.
const state = new Map();
const stack = [];
const visit = (area) => {
  state.set(area, 'grey');
  stack.push(area);
  for (const next of edges.get(area)?.keys() ?? []) {
    if (state.get(next) === 'grey') {
      const cycle = [...stack.slice(stack.indexOf(next)), next];
      const via = cycle.slice(1).map((b, i) => `    ${edges.get(cycle[i]).get(b)}`);
      problems.push(`area cycle: ${cycle.join(' -> ')}\n${via.join('\n')}`);
    } else if (!state.has(next)) visit(next);
  }
  stack.pop();
  state.set(area, 'black');
};
for (const area of edges.keys()) if (!state.has(area)) visit(area);

if (problems.length) {
  console.error(`import problems in src/:\n${problems.join('\n')}`);
  process.exit(1);
}
console.log(`no import cycles or layering breaks in src/ (${Object.keys(result.obj()).length} modules, ${edges.size} areas)`);

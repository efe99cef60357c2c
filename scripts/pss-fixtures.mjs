#!/usr/bin/env node
// Runs a directory of Pod Security fixtures laid out as Kubernetes' pod-security-admission test
// data (LEVEL/v1.MINOR/{pass,fail}/NAME.yaml) through Skiff's evaluator (dist/, so build first)
// and prints per-version agreement and every disagreement. Upstream's test evaluates each
// directory at its own level and version: a pass pod must be allowed, a fail pod denied; here a
// fail pod must also be denied by the check its name is for (or the restricted check that
// overrides it). With --propagate, a fixture is also evaluated at every later version until a
// fixture of the same name supersedes it. Usage:
//   node scripts/pss-fixtures.mjs DIR [--propagate] [--json]
// Exit status: 0 when every evaluated fixture agrees, 1 otherwise, 2 on bad usage.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { checksAt, evaluatePod, PSS_TABLE, NEWEST_RELEASE } from '../dist/admission/index.js';

const args = process.argv.slice(2);
const dir = args.find((a) => !a.startsWith('--'));
if (!dir) {
  console.error('usage: node scripts/pss-fixtures.mjs DIR [--propagate] [--json]');
  process.exit(2);
}
const propagate = args.includes('--propagate');

// Fixture names are a check id in lower case plus an index; `base*` are the minimal valid pods.
const checkIds = new Map(PSS_TABLE.map((c) => [c.id.toLowerCase(), c.id]));
// One revision of upstream's v1.35 procMount change named the baseline check procMount_baseline;
// its fixtures test the same behaviour as the released procMount check.
checkIds.set('procmount_baseline', 'procMount');
// The restricted checks that replace a baseline check, so a fail fixture for the baseline check is
// expected to fail the restricted one at that level.
const overriddenBy = new Map();
for (const c of PSS_TABLE) for (const o of c.overrides ?? []) overriddenBy.set(o, [...(overriddenBy.get(o) ?? []), c.id]);

const fixtures = [];
const skipped = [];
for (const level of ['baseline', 'restricted']) {
  const levelDir = join(dir, level);
  if (!exists(levelDir)) continue;
  for (const vdir of readdirSync(levelDir)) {
    const m = /^v1\.(\d+)$/.exec(vdir);
    if (!m) continue;
    const minor = Number(m[1]);
    for (const kind of ['pass', 'fail']) {
      const kdir = join(levelDir, vdir, kind);
      if (!exists(kdir)) continue;
      for (const file of readdirSync(kdir).filter((f) => f.endsWith('.yaml')).sort()) {
        const name = file.replace(/\.yaml$/, '');
        const checkName = name.replace(/\d+$/, '');
        const path = join(level, vdir, kind, file);
        const base = /^base(_linux|_windows)?$/.test(name);
        if (!base && !checkIds.has(checkName)) skipped.push({ path, why: `no check "${checkName}" in Skiff's table` });
        else if (minor > NEWEST_RELEASE[1]) skipped.push({ path, why: `newer than v${NEWEST_RELEASE.join('.')}, the newest release the table describes` });
        else fixtures.push({ level, minor, kind, name, check: base ? undefined : checkIds.get(checkName), path, pod: parse(readFileSync(join(dir, path), 'utf8')) });
      }
    }
  }
}

const perVersion = new Map();
const disagreements = [];
const key = (f) => `${f.level}/${f.name}`;
for (const f of fixtures) {
  let until = f.minor;
  if (propagate) {
    const later = fixtures.filter((g) => key(g) === key(f) && g.minor > f.minor).map((g) => g.minor);
    until = later.length ? Math.min(...later) - 1 : NEWEST_RELEASE[1];
  }
  for (let minor = f.minor; minor <= until; minor++) {
    const lv = { level: f.level, version: [1, minor] };
    const active = !f.check || checksAt(lv).some((id) => id === f.check || (overriddenBy.get(f.check) ?? []).includes(id));
    const results = evaluatePod({ metadata: f.pod?.metadata ?? {}, spec: f.pod?.spec ?? {} }, lv);
    const problem = active ? judge(f, results) : `upstream has check ${f.check} at this level and version, Skiff's table does not`;
    const row = perVersion.get(`${f.level} v1.${minor}`) ?? { level: f.level, minor, agree: 0, disagree: 0 };
    if (problem) {
      row.disagree++;
      disagreements.push({ path: f.path, at: `${f.level}:v1.${minor}`, problem, results });
    } else row.agree++;
    perVersion.set(`${f.level} v1.${minor}`, row);
  }
}

const rows = [...perVersion.values()].sort((a, b) => a.level.localeCompare(b.level) || a.minor - b.minor);
const totals = rows.reduce((t, r) => ({ agree: t.agree + r.agree, disagree: t.disagree + r.disagree }), { agree: 0, disagree: 0 });
if (args.includes('--json')) {
  console.log(JSON.stringify({ fixtures: fixtures.length, skipped, rows, disagreements, totals }, null, 2));
} else {
  console.log(`${fixtures.length} fixtures read, ${skipped.length} skipped${propagate ? ', propagated to later versions' : ''}`);
  for (const s of skipped) console.log(`  skipped ${s.path}: ${s.why}`);
  for (const r of rows) console.log(`${r.level.padEnd(10)} v1.${String(r.minor).padEnd(3)} ${r.agree} agree${r.disagree ? `, ${r.disagree} DISAGREE` : ''}`);
  for (const d of disagreements) console.log(`DISAGREE ${d.path} at ${d.at}: ${d.problem}${d.results.length ? `; Skiff says ${d.results.map((r) => `${r.id}: ${r.reason} (${r.detail})`).join(', ')}` : ''}`);
  console.log(`${totals.agree} passed, ${totals.disagree} failed`);
}
process.exit(totals.disagree ? 1 : 0);

function judge(f, results) {
  if (f.kind === 'pass') return results.length ? 'upstream allows this pod, Skiff denies it' : undefined;
  if (!results.length) return 'upstream denies this pod, Skiff allows it';
  const expected = [f.check, ...(overriddenBy.get(f.check) ?? [])];
  if (f.check && !results.some((r) => expected.includes(r.id))) return `denied, but not by ${expected.join(' or ')}`;
  return undefined;
}

function exists(p) {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

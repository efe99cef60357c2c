import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

import type { Command } from 'commander';

import type { ResourceObject } from '../../api/kinds/types.js';
import { compileUnits, type PolicyUnit } from '../../controllers/policy-units.js';
import { readBundle } from '../../policy/bundle/index.js';
import * as policy from '../../policy/index.js';
import { loadPaths } from '../../policy/loader.js';
import { CheckFailedError, UsageError } from '../../util/errors.js';
import { parseDurationMs } from '../../util/quantity.js';
import { addClientOptions, clientFrom } from '../common.js';

interface ReplayFlags {
  since: string;
  kind?: string;
  data: string[];
  dataDir?: string;
  log?: string;
  output: string;
  namespace: string;
  server?: string;
  token?: string;
}

const policyKey = (p: ResourceObject) => `Policy ${p.metadata.namespace}/${p.metadata.name}`;

/** livePolicyUnit is what the server runs for a Policy: status.active while a newer generation is held back, nothing while it has never compiled. */
function livePolicyUnit(p: ResourceObject): PolicyUnit | undefined {
  const active = p.status?.active as { generation: number; rego: string; regoVersion: string } | undefined;
  const file = `${p.metadata.namespace}/${p.metadata.name}.rego`;
  if (active && typeof active.rego === 'string') return { key: policyKey(p), modules: [{ file, text: active.rego, regoVersion: active.regoVersion === 'v0' ? 0 : 1 }] };
  const ready = (p.status?.conditions as Array<{ type: string; status: string }> | undefined)?.find((c) => c.type === 'Ready');
  if (ready?.status === 'False') return undefined;
  return { key: policyKey(p), modules: [{ file, text: String(p.spec.rego), regoVersion: p.spec.regoVersion === 'v0' ? 0 : 1 }] };
}

async function bundleUnit(name: string, path: string): Promise<PolicyUnit> {
  // verified when the server activated or held it; read as it is now
  const b = await readBundle(readFileSync(path), { name, skipVerification: true });
  return { key: `PolicyBundle ${name}`, modules: b.modules.map((m) => ({ file: m.file, text: m.text, regoVersion: m.regoVersion })), data: b.data };
}

/**
 * registerReplay adds `skiff policy replay [--since 1h] NAME`: the recent decisions of the platform's
 * policy engine, re-evaluated against the live policies and against a candidate — the Policy's stored
 * spec, the PolicyBundle revision the server holds back, or local files (-d) — printing every decision
 * that would change. Exit status: 0 when none would, 1 when some would (or the candidate does not
 * compile), 2 on a usage error.
 */
export function registerReplay(policyCmd: Command): void {
  const cmd = policyCmd
    .command('replay')
    .description('Replay recent decisions against a new Policy or PolicyBundle revision and print those that would change (exit 1 if any)')
    .argument('<name>', 'a PolicyBundle, or a Policy in --namespace')
    .option('--since <duration>', 'how far back to replay (such as 30m, 1h)', '1h')
    .option('--kind <kind>', 'policy or policybundle (default: a PolicyBundle of that name if there is one, else a Policy)')
    .option('-d, --data <path>', 'replay these local policy or data files (or a bundle .tar.gz) as the candidate instead of the stored one (repeatable)', (v: string, prev: string[]) => [...prev, v], [])
    .option('--data-dir <dir>', 'the data directory of the running skiff up (default: $SKIFF_DATA_DIR, else ./.skiff)')
    .option('--log <file>', 'the decision log (default: DATA_DIR/decisions.log, as skiff up --decision-log writes it)')
    .option('-o, --output <format>', 'text or json', 'text');
  addClientOptions(cmd).action(async (name: string, opts: ReplayFlags) => {
    const sinceMs = parseDurationMs(opts.since);
    if (sinceMs === undefined) throw new UsageError(`--since must be a duration such as 30m or 1h, not ${opts.since}`);
    const dataDir = resolve(opts.dataDir ?? process.env.SKIFF_DATA_DIR ?? '.skiff');
    const log = opts.log ?? join(dataDir, 'decisions.log');
    if (!existsSync(log)) throw new UsageError(`no decision log at ${log}: start skiff up with --decision-log (or point --log at it)`);
    const client = clientFrom({ ...opts, dataDir });
    const policies = (await client.request<{ items: ResourceObject[] }>('GET', '/apis/skiff.dev/v1/policies')).body.items;
    const bundles = (await client.request<{ items: ResourceObject[] }>('GET', '/apis/skiff.dev/v1/policybundles')).body.items;
    const kind = (opts.kind ?? (bundles.some((b) => b.metadata.name === name) ? 'policybundle' : 'policy')).toLowerCase();
    if (kind !== 'policy' && kind !== 'policybundle') throw new UsageError(`--kind must be policy or policybundle, not ${opts.kind}`);

    const live: PolicyUnit[] = [];
    for (const p of policies) {
      const u = livePolicyUnit(p);
      if (u) live.push(u);
    }
    for (const b of bundles) {
      const path = join(dataDir, 'bundles', b.metadata.name, 'active.tar.gz');
      if (existsSync(path)) live.push(await bundleUnit(b.metadata.name, path));
    }
    const targetKey = kind === 'policy' ? `Policy ${opts.namespace}/${name}` : `PolicyBundle ${name}`;
    let candidate: PolicyUnit;
    if (opts.data.length) {
      const bundlePaths = opts.data.filter((d) => d.endsWith('.tar.gz'));
      const loaded = loadPaths(opts.data.filter((d) => !d.endsWith('.tar.gz')));
      candidate = { key: targetKey, modules: loaded.modules.map((m) => ({ file: m.file, text: m.text, regoVersion: 1 as const })), data: loaded.data as Record<string, unknown> };
      for (const p of bundlePaths) {
        const u = await bundleUnit(p, p);
        candidate.modules.push(...u.modules);
        candidate.data = { ...candidate.data, ...u.data };
      }
    } else if (kind === 'policy') {
      const p = policies.find((x) => x.metadata.name === name && x.metadata.namespace === opts.namespace);
      if (!p) throw new UsageError(`no Policy ${opts.namespace}/${name} and no PolicyBundle ${name}`);
      candidate = { key: targetKey, modules: [{ file: `${opts.namespace}/${name}.rego`, text: String(p.spec.rego), regoVersion: p.spec.regoVersion === 'v0' ? 0 : 1 }] };
    } else {
      const path = join(dataDir, 'bundles', name, 'candidate.tar.gz');
      if (!existsSync(path)) throw new UsageError(`PolicyBundle ${name} has no held-back revision to replay (${path} does not exist); give local files with -d`);
      candidate = await bundleUnit(name, path);
    }
    const trialUnits = [...live.filter((u) => u.key !== targetKey), candidate];
    const current = compileUnits(policy, live);
    const trial = compileUnits(policy, trialUnits);
    const broken = trial.fatal ?? [...trial.problems].filter(([k]) => !current.problems.has(k)).flatMap(([, e]) => e);
    if (broken.length) throw new CheckFailedError(`the candidate does not compile with the live policies:\n${broken.join('\n')}`);
    const since = new Date(Date.now() - sinceMs);
    const json = opts.output === 'json';
    const changes: policy.ReplayChange[] = [];
    const show = (o: policy.ReplayOutcome) => (o.error !== undefined ? `error: ${o.error}` : o.result === undefined ? 'undefined' : JSON.stringify(o.result));
    const summary = await policy.replayDecisions(policy.streamDecisions(log, since), policy.engineRunner(current.engine), policy.engineRunner(trial.engine), {
      since,
      labels: { engine: 'policies' },
      maxDecisions: Number.MAX_SAFE_INTEGER,
      budgetMs: 600_000,
      onChange: (c) => {
        if (json) changes.push(c);
        else process.stdout.write(`${c.timestamp}  ${c.decision_id}  ${c.query}  ${show(c.old)} -> ${show(c.new)}\n`);
      },
    });
    if (json) process.stdout.write(JSON.stringify({ ...summary, examples: undefined, changes }, null, 2) + '\n');
    else process.stdout.write(`${summary.evaluated} evaluated, ${summary.changed} would change, ${summary.notReplayable} not replayable (masked input) since ${summary.since}\n`);
    if (summary.changed) process.exitCode = 1;
  });
}

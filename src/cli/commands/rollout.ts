import type { Command } from 'commander';

import { ROLLOUT_ABORT_ANNOTATION, ROLLOUT_PROMOTE_ANNOTATION } from '../../api/kinds/index.js';
import { CheckFailedError, UsageError } from '../../util/errors.js';
import { parseDurationMs } from '../../util/quantity.js';
import type { ApiClient } from '../client.js';
import { addClientOptions, clientFrom, KindResolver, objectPath, type ResourceObject } from '../common.js';

interface ClientFlags {
  server?: string;
  token?: string;
  namespace?: string;
}

/** `skiff rollout status|promote|abort NAME`: follow and steer a Rollout. */
export function register(program: Command): void {
  const rollout = program.command('rollout').description('follow and steer Rollouts: status, promote, abort');

  addClientOptions(
    rollout
      .command('status')
      .description("print a Rollout's phase, step, weights and last analysis; with --watch wait until it is Healthy, Paused or Degraded (exit 0 Healthy or Paused, 1 Degraded or on timeout)")
      .argument('<name>')
      .option('-w, --watch', 'keep printing changes until the rollout is Healthy, Paused or Degraded')
      .option('--timeout <duration>', 'with --watch, give up after this long (such as 5m)', '10m'),
  ).action(async (name: string, opts: ClientFlags & { watch?: boolean; timeout: string }) => {
    const timeoutMs = parseDurationMs(opts.timeout);
    if (timeoutMs === undefined || typeof timeoutMs !== 'number' || !/[a-z]$/.test(opts.timeout)) throw new UsageError(`--timeout ${opts.timeout}: expected a duration such as 30s or 5m`);
    const client = clientFrom(opts);
    const path = await rolloutPath(client, opts.namespace, name);
    const read = async () => (await client.request<ResourceObject>('GET', path)).body;
    let ro = await read();
    if (!opts.watch) {
      process.stdout.write(describeRollout(ro));
      if (ro.status?.phase === 'Degraded') throw new CheckFailedError(`rollout ${name} is Degraded`, 'rollout_degraded');
      return;
    }
    const end = Date.now() + timeoutMs;
    let shown = '';
    for (;;) {
      const text = describeRollout(ro);
      if (text !== shown) process.stdout.write(shown ? `\n${text}` : text);
      shown = text;
      const phase = settledPhase(ro);
      if (phase === 'Degraded') throw new CheckFailedError(`rollout ${name} is Degraded: ${ro.status?.message ?? ''}`, 'rollout_degraded');
      if (phase === 'Healthy' || phase === 'Paused') return;
      if (Date.now() >= end) throw new CheckFailedError(`rollout ${name} is still ${ro.status?.phase ?? 'pending'} after ${opts.timeout}`, 'rollout_timeout');
      await new Promise((r) => setTimeout(r, 250));
      ro = await read();
    }
  });

  addClientOptions(
    rollout
      .command('promote')
      .description('complete the current step (end a pause or an analysis); with --full skip every remaining step and promote now')
      .argument('<name>')
      .option('--full', 'promote at once, skipping the remaining steps'),
  ).action(async (name: string, opts: ClientFlags & { full?: boolean }) => {
    const client = clientFrom(opts);
    const path = await rolloutPath(client, opts.namespace, name);
    await annotate(client, path, ROLLOUT_PROMOTE_ANNOTATION, `${new Date().toISOString()}${opts.full ? ' full' : ''}`);
    process.stdout.write(`rollout.skiff.dev/${name} ${opts.full ? 'fully promoted' : 'promoted'}\n`);
  });

  addClientOptions(
    rollout
      .command('abort')
      .description('abort the running rollout: all traffic back to the stable version, the canary removed, phase Degraded')
      .argument('<name>'),
  ).action(async (name: string, opts: ClientFlags) => {
    const client = clientFrom(opts);
    const path = await rolloutPath(client, opts.namespace, name);
    await annotate(client, path, ROLLOUT_ABORT_ANNOTATION, new Date().toISOString());
    process.stdout.write(`rollout.skiff.dev/${name} aborted\n`);
  });
}

async function rolloutPath(client: ApiClient, ns: string | undefined, name: string): Promise<string> {
  const def = await new KindResolver(client).resolve('rollouts');
  return objectPath(def, ns, name);
}

async function annotate(client: ApiClient, path: string, key: string, value: string): Promise<void> {
  await client.request('PATCH', path, { metadata: { annotations: { [key]: value } } }, { 'content-type': 'application/merge-patch+json' });
}

/** settledPhase is the phase once the status describes the current spec (a new spec's old Healthy is not an answer). */
function settledPhase(ro: ResourceObject): string | undefined {
  if (ro.status?.observedGeneration !== ro.metadata.generation) return undefined;
  return ro.status?.phase;
}

/** describeRollout renders what `skiff rollout status` prints. */
export function describeRollout(ro: ResourceObject): string {
  const st = ro.status ?? {};
  const steps: number = Array.isArray(ro.spec?.strategy?.canary?.steps) ? ro.spec.strategy.canary.steps.length : 1;
  const weight = Number(st.canaryWeight ?? 0);
  const strategy = ro.spec?.strategy?.blueGreen ? 'blue-green' : 'canary';
  const lines: Array<[string, string]> = [
    ['Name', ro.metadata.name],
    ['Namespace', ro.metadata.namespace ?? 'default'],
    ['Strategy', strategy],
    ['Phase', String(st.phase ?? 'Pending')],
    ['Step', `${Math.min(Number(st.currentStepIndex ?? 0), steps)}/${steps}`],
    ['Weights', strategy === 'canary' ? `stable ${100 - weight}%, canary ${weight}%` : `active: stable; preview: ${st.phase === 'Progressing' || st.phase === 'Paused' ? 'canary' : 'stable'}`],
    ['Stable', String(st.stableModule ?? '<unknown>')],
    ['Canary', String(st.canaryModule ?? ro.spec?.canary?.module ?? ro.spec?.canary?.image ?? '')],
    ['Message', String(st.message ?? '')],
  ];
  const width = Math.max(...lines.map(([k]) => k.length)) + 2;
  let out = lines.map(([k, v]) => `${`${k}:`.padEnd(width)}${v}\n`).join('');
  const a = st.analysis;
  if (a?.verdict) {
    out += `${'Analysis:'.padEnd(width)}${a.verdict} over ${a.requests} requests at ${a.measuredAt} (passes ${a.passes ?? 0}, failures ${a.failures ?? 0}, inconclusive ${a.inconclusive ?? 0})\n`;
    for (const [m, r] of Object.entries((a.metrics ?? {}) as Record<string, { value?: unknown; limit: string; ok?: boolean; error?: string }>)) {
      const verdict = r.ok === undefined ? '-' : r.ok ? 'ok' : 'FAILED';
      out += `  ${m.padEnd(20)} ${String(r.value ?? '-').padEnd(10)} ${r.limit.padEnd(14)} ${verdict}${r.error ? ` (${r.error})` : ''}\n`;
    }
  }
  return out;
}

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { DecisionLogger, engineRunner, PolicyEngine, replayDecisions, streamDecisions } from '../../src/policy/index.js';

function engine(rego: string): PolicyEngine {
  const e = new PolicyEngine();
  e.addModule('p.rego', rego);
  return e;
}

describe('replay before rollout', () => {
  it('re-runs labelled decisions against live and candidate, counts masked inputs as not replayable', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'skiff-replay-')), 'decisions.log');
    const live = engine('package p\ndefault allow := false\nallow if input.user == "alice"');
    const log = new DecisionLogger({ path, mask: ['token'] }).withLabels({ engine: 'policies' });
    const q = live.prepare('data.p.allow', { decisionLog: log });
    for (const user of ['alice', 'bob', 'carol']) q.eval({ input: { user } });
    q.eval({ input: { user: 'dave', token: 'secret' } });
    // a decision another engine made is not this engine's to replay
    engine('package p\nallow := true').prepare('data.p.allow', { decisionLog: new DecisionLogger({ path }).withLabels({ engine: 'admission' }) }).eval({ input: { user: 'x' } });
    const candidate = engine('package p\ndefault allow := false\nallow if input.user in {"alice", "bob"}');
    const changes: unknown[] = [];
    const since = new Date(Date.now() - 60_000);
    const s = await replayDecisions(streamDecisions(path, since), engineRunner(live), engineRunner(candidate), { since, labels: { engine: 'policies' }, onChange: (c) => changes.push(c) });
    expect(s).toMatchObject({ evaluated: 3, changed: 1, notReplayable: 1 });
    expect(s.examples).toEqual([expect.objectContaining({ query: 'data.p.allow', input: { user: 'bob' }, old: { result: false }, new: { result: true } })]);
    expect(changes).toHaveLength(1);
    const later = await replayDecisions(streamDecisions(path, new Date(Date.now() + 60_000)), engineRunner(live), engineRunner(candidate), { since: new Date() });
    expect(later.evaluated).toBe(0);
  });

  it('compares errors and undefined results too, and keeps only the most recent decisions', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'skiff-replay-')), 'decisions.log');
    const live = engine('package p\nx := input.n');
    const log = new DecisionLogger({ path });
    const q = live.prepare('data.p.x', { decisionLog: log });
    for (let n = 0; n < 10; n++) q.eval({ input: { n } });
    const candidate = engine('package p\nx := input.n if input.n < 8');
    const since = new Date(0);
    const s = await replayDecisions(streamDecisions(path, since), engineRunner(live), engineRunner(candidate), { since, maxDecisions: 5 });
    expect(s).toMatchObject({ evaluated: 5, changed: 2, truncated: true });
    expect(s.examples.map((e) => e.new)).toEqual([{}, {}]);
  });
});

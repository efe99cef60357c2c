import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { hasKubectl, type Kubectl, kubectlFor } from '../helpers/kubectl.js';
import { apiFetch, cli, type RunningSkiff, startSkiff } from '../helpers/skiff-process.js';

let s: RunningSkiff;
let kubectl: Kubectl;

beforeAll(async () => {
  s = await startSkiff({ args: ['--node-name', 'it-node-1'] });
  kubectl = kubectlFor(s);
});
afterAll(async () => {
  await s?.stop();
});

describe('this process as a Node', () => {
  it('skiff get nodes shows this node Ready, and its heartbeat Lease', async () => {
    expect(s.readyLine).toMatch(/^skiff ready api=\S+ gateway=\S+$/);
    const nodes = await cli(['get', 'nodes'], { skiff: s });
    expect(nodes.code).toBe(0);
    const [head, row] = nodes.stdout.trim().split('\n');
    expect(head!.split(/\s+/)).toEqual(['NAME', 'STATUS', 'ROLES', 'AGE', 'VERSION']);
    expect(row!.split(/\s+/)).toEqual(['it-node-1', 'Ready', '<none>', expect.stringMatching(/^\d+s$/), expect.stringMatching(/^v\d+\.\d+\.\d+/)]);
    const leases = await cli(['get', 'leases', '-A'], { skiff: s });
    expect(leases.code).toBe(0);
    expect(leases.stdout).toMatch(/^NAMESPACE\s+NAME\s+HOLDER\s+AGE\n/);
    expect(leases.stdout).toMatch(/\nkube-node-lease\s+it-node-1\s+it-node-1\s+\d+s\n/);
    const json = JSON.parse((await cli(['get', 'node', 'it-node-1', '-o', 'json'], { skiff: s })).stdout);
    expect(json.status.runtimeClasses).toContain('wasm');
    expect(json.metadata.labels['skiff.dev/runtime-class-wasm']).toBe('true');
    expect(Number(json.status.capacity.cpu)).toBeGreaterThan(0);
  });

  it('leads the once-per-cluster controllers alone: skiff-system/skiff-leader names it, the metrics say so', async () => {
    // A lone node takes the free lease on its first attempt, before it reports ready.
    const leases = await cli(['get', 'leases', '-A'], { skiff: s });
    expect(leases.stdout).toMatch(/\nskiff-system\s+skiff-leader\s+it-node-1\s+\d+s\n/);
    const lease = JSON.parse((await cli(['get', 'lease', 'skiff-leader', '-n', 'skiff-system', '-o', 'json'], { skiff: s })).stdout);
    expect(lease.spec).toMatchObject({ holderIdentity: 'it-node-1', leaseDurationSeconds: 15, leaseTransitions: 0 });
    const metrics = await (await apiFetch(s, '/metrics')).text();
    expect(metrics).toMatch(/^skiff_leader_is_leader 1$/m);
    expect(metrics).toMatch(/^skiff_leader_transitions_total 1$/m);
    expect(metrics).toMatch(/^skiff_leader_fenced_writes_refused_total 0$/m);
    // The leader-only controllers are running: their reconciles are counted.
    expect(metrics).toMatch(/^skiff_controller_queue_depth\{controller="gitrepositories"\} \d+$/m);
  });

  it('leads at once after a restart under another name, though the killed run still held the lease', async () => {
    const first = await startSkiff({ args: ['--node-name', 'old-name'] });
    await first.stop('SIGKILL');
    const again = await startSkiff({ dataDir: first.dataDir, args: ['--node-name', 'new-name'] });
    try {
      // Only this process can open the data directory's store: the old holder is not waited out.
      const leases = await cli(['get', 'leases', '-A'], { skiff: again });
      expect(leases.stdout).toMatch(/\nskiff-system\s+skiff-leader\s+new-name\s/);
      expect(await (await apiFetch(again, '/metrics')).text()).toMatch(/^skiff_leader_is_leader 1$/m);
    } finally {
      await again.stop();
    }
  });

  it('refuses leader election timings that cannot work, naming the flag', async () => {
    const bad = await cli(['up', '--leader-elect-lease-duration', '10s', '--leader-elect-renew-deadline', '10s', '--api', '127.0.0.1:0', '--gateway', '127.0.0.1:0']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--leader-elect-renew-deadline (10s) must be shorter than --leader-elect-lease-duration (10s)');
    const retry = await cli(['up', '--leader-elect-retry-period', '12s', '--api', '127.0.0.1:0', '--gateway', '127.0.0.1:0']);
    expect(retry.code).toBe(2);
    expect(retry.stderr).toContain('--leader-elect-retry-period (12s) must be shorter than --leader-elect-renew-deadline (10s)');
    const junk = await cli(['up', '--leader-elect-lease-duration', 'soon', '--api', '127.0.0.1:0', '--gateway', '127.0.0.1:0']);
    expect(junk.code).toBe(2);
    expect(junk.stderr).toContain('--leader-elect-lease-duration must be a positive duration');
  });

  it('cordons and uncordons', async () => {
    const c = await cli(['cordon', 'it-node-1'], { skiff: s });
    expect(c).toMatchObject({ code: 0, stdout: 'node/it-node-1 cordoned\n' });
    expect((await cli(['get', 'nodes'], { skiff: s })).stdout).toMatch(/it-node-1\s+Ready,SchedulingDisabled\s/);
    expect((await cli(['cordon', 'it-node-1'], { skiff: s })).stdout).toBe('node/it-node-1 already cordoned\n');
    const u = await cli(['uncordon', 'it-node-1'], { skiff: s });
    expect(u).toMatchObject({ code: 0, stdout: 'node/it-node-1 uncordoned\n' });
    const json = JSON.parse((await cli(['get', 'node', 'it-node-1', '-o', 'json'], { skiff: s })).stdout);
    expect(json.spec.unschedulable).toBeUndefined();
    const missing = await cli(['cordon', 'no-such-node'], { skiff: s });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('NotFound');
  });

  it('refuses a --node-name that is not a DNS name before starting', async () => {
    const r = await cli(['up', '--node-name', 'Not_A_Name', '--api', '127.0.0.1:0', '--gateway', '127.0.0.1:0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--node-name must be a lower-case DNS name');
  });

  it.runIf(hasKubectl())('kubectl get nodes and kubectl get leases -A print the same columns', async () => {
    const nodes = await kubectl(['get', 'nodes']);
    expect(nodes.stderr).toBe('');
    expect(nodes.stdout).toMatch(/^NAME\s+STATUS\s+ROLES\s+AGE\s+VERSION\nit-node-1\s+Ready\s+<none>\s+\S+\s+v\d/);
    const leases = await kubectl(['get', 'leases', '-A']);
    expect(leases.stdout).toMatch(/^NAMESPACE\s+NAME\s+HOLDER\s+AGE\n/);
    expect(leases.stdout).toMatch(/kube-node-lease\s+it-node-1\s+it-node-1\s/);
    expect((await kubectl(['cordon', 'it-node-1'])).stdout).toBe('node/it-node-1 cordoned\n');
    expect((await cli(['get', 'nodes'], { skiff: s })).stdout).toMatch(/Ready,SchedulingDisabled/);
    expect((await kubectl(['uncordon', 'it-node-1'])).stdout).toBe('node/it-node-1 uncordoned\n');
  });
});

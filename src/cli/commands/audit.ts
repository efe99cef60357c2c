import type { Command } from 'commander';

import { AUDIT_REQUEST_ANNOTATION, CONSTRAINT_GROUP } from '../../admission/index.js';
import { CheckFailedError, UsageError } from '../../util/errors.js';
import { addClientOptions, clientFrom, table } from '../common.js';

interface ConstraintObject {
  kind: string;
  metadata: { name: string; annotations?: Record<string, string> };
  spec?: { enforcementAction?: string };
  status?: { auditTimestamp?: string; auditRequest?: string; totalViolations?: number; violations?: Array<{ kind: string; name: string; namespace?: string; message: string; enforcementAction: string }> };
}

/**
 * register adds `skiff audit`: asks the server to audit every stored object against every
 * constraint now (by annotating the constraints), waits for the results in their status and prints
 * them as Gatekeeper reports them.
 */
export function register(program: Command): void {
  addClientOptions(program.command('audit'), false)
    .description('Audit all stored objects against all constraints now and print each constraint\'s violations')
    .option('--timeout <ms>', 'how long to wait for the audit', '30000')
    .option('-o, --output <format>', 'text or json', 'text')
    .option('--fail', 'exit 1 when any deny constraint has violations')
    .action(async (opts: { server?: string; token?: string; timeout: string; output: string; fail?: boolean }) => {
      if (!['text', 'json'].includes(opts.output)) throw new UsageError(`-o must be text or json, not ${opts.output}`);
      const client = clientFrom(opts);
      const base = `/apis/${CONSTRAINT_GROUP}/v1beta1`;
      let plurals: string[] = [];
      try {
        // `PLURAL/status` entries are subresources, not kinds.
        plurals = (await client.request<{ resources: Array<{ name: string }> }>('GET', base)).body.resources.map((r) => r.name).filter((n) => !n.includes('/'));
      } catch {
        plurals = [];
      }
      const list = async () => {
        const out: ConstraintObject[] = [];
        for (const p of plurals) out.push(...(await client.request<{ items: ConstraintObject[] }>('GET', `${base}/${p}`)).body.items);
        return out;
      };
      const before = await list();
      if (!before.length) {
        process.stdout.write(opts.output === 'json' ? '[]\n' : 'No constraints.\n');
        return;
      }
      const asked = new Date().toISOString();
      for (const c of before) await client.request('PATCH', `${base}/${c.kind.toLowerCase()}/${encodeURIComponent(c.metadata.name)}`, { metadata: { annotations: { [AUDIT_REQUEST_ANNOTATION]: asked } } }, { 'content-type': 'application/merge-patch+json' });
      const deadline = Date.now() + Number(opts.timeout);
      let after: ConstraintObject[];
      for (;;) {
        after = await list();
        // The server echoes the request it audited for in status.auditRequest.
        if (after.every((c) => c.status?.auditRequest === asked || !before.some((b) => b.kind === c.kind && b.metadata.name === c.metadata.name))) break;
        if (Date.now() > deadline) throw new CheckFailedError(`the audit did not finish within ${opts.timeout} ms; is the server running admission (skiff up)?`, 'audit_timeout');
        await new Promise((r) => setTimeout(r, 200));
      }
      if (opts.output === 'json') process.stdout.write(JSON.stringify(after.map((c) => ({ kind: c.kind, name: c.metadata.name, enforcementAction: c.spec?.enforcementAction ?? 'deny', auditTimestamp: c.status?.auditTimestamp, totalViolations: c.status?.totalViolations ?? 0, violations: c.status?.violations ?? [] })), null, 2) + '\n');
      else {
        process.stdout.write(table(['CONSTRAINT', 'ENFORCEMENT-ACTION', 'TOTAL-VIOLATIONS'], after.map((c) => [`${c.kind.toLowerCase()}/${c.metadata.name}`, c.spec?.enforcementAction ?? 'deny', String(c.status?.totalViolations ?? 0)])));
        for (const c of after)
          for (const v of c.status?.violations ?? []) process.stdout.write(`${c.metadata.name}: ${v.kind} ${v.namespace ? `${v.namespace}/` : ''}${v.name}: ${v.message}\n`);
      }
      if (opts.fail && after.some((c) => (c.spec?.enforcementAction ?? 'deny') === 'deny' && (c.status?.totalViolations ?? 0) > 0)) process.exitCode = 1;
    });
}

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { hasKubectl } from '../helpers/kubectl.js';
import { REPO, type RunningSkiff, startSkiff } from '../helpers/skiff-process.js';

/**
 * Keeps the README's kubectl tour true: its shell blocks run, in order, as one script against
 * `skiff up --demo`, from a folder whose `.skiff` is that server's data dir (as in the repository).
 */

const run = hasKubectl();
let s: RunningSkiff;

/** tourScript is the README section "The same with kubectl": its ```sh blocks joined. */
function tourScript(): string {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## The same with kubectl\n');
  expect(start).toBeGreaterThan(0);
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  const blocks = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
  expect(blocks.length).toBeGreaterThanOrEqual(2);
  return blocks.join('\n');
}

beforeAll(async () => {
  if (run) s = await startSkiff({ demo: true });
});
afterAll(async () => {
  await s?.stop();
});

describe.runIf(run)('the README kubectl tour', () => {
  it('runs as written', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'skiff-tour-'));
    symlinkSync(s.dataDir, join(cwd, '.skiff'));
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: mkdtempSync(join(tmpdir(), 'skiff-tour-home-')) };
    const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn('bash', ['-e', '-o', 'pipefail', '-c', tourScript()], { cwd, env });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^hello\s/m);
    expect(r.stdout).toMatch(/^Name:\s+hello$/m);
    expect(r.stdout).toMatch(/^functions\.skiff\.dev\/status\s+\[\]\s+\[\]\s+\[get list watch\]$/m);
    // The labelled Function alone is listed, then deleted.
    expect(r.stdout).toMatch(/function\.skiff\.dev\/hello2 created\nfunction\.skiff\.dev\/hello2 condition met\nfunction\.skiff\.dev\/hello2 labeled\nNAME\s[^\n]*\nhello2\s[^\n]*\nfunction\.skiff\.dev "hello2" deleted\n$/);
  });
});

import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { CliResult, RunningSkiff } from './skiff-process.js';
import { hasBinary } from './system-deps.js';

/**
 * hasKubectl tells whether the real kubectl is installed (Debian package `kubectl`); with
 * SKIFF_REQUIRE_SYSTEM_DEPS=1 its absence throws instead.
 */
export function hasKubectl(): boolean {
  return hasBinary('kubectl');
}

/** A kubectl bound to one running Skiff through its DATA_DIR/kubeconfig, with a discovery cache of its own. */
export interface Kubectl {
  (args: string[], opts?: { stdin?: string; timeoutMs?: number; env?: Record<string, string> }): Promise<CliResult>;
  /** The environment kubectl runs with (KUBECONFIG, HOME), for tools that start it themselves. */
  env: Record<string, string>;
}

/**
 * kubectlFor runs `/usr/bin/kubectl` against `skiff` exactly as a user would: only KUBECONFIG points
 * at the server. HOME is a fresh directory, so the discovery cache under ~/.kube/cache never carries
 * one server's API list over to another test's. Each run is killed after `timeoutMs` (15 s by default).
 */
export function kubectlFor(skiff: Pick<RunningSkiff, 'dataDir'>): Kubectl {
  const home = mkdtempSync(join(tmpdir(), 'skiff-kubectl-home-'));
  const env: Record<string, string> = { KUBECONFIG: join(skiff.dataDir, 'kubeconfig'), HOME: home, PATH: process.env.PATH ?? '/usr/bin:/bin' };
  const run = (args: string[], opts: { stdin?: string; timeoutMs?: number; env?: Record<string, string> } = {}) =>
    new Promise<CliResult>((resolve, reject) => {
      const child = spawn('kubectl', args, { env: { ...env, ...(opts.env ?? {}) }, stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 15_000);
      child.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ code: code ?? (signal ? 128 : -1), stdout, stderr });
      });
      child.stdin.end(opts.stdin ?? '');
    });
  return Object.assign(run, { env });
}

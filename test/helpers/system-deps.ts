import { execFileSync } from 'node:child_process';

/**
 * hasBinary tells whether a system tool (from a Debian package) is on PATH. Tests use it to skip
 * work that needs the tool; with SKIFF_REQUIRE_SYSTEM_DEPS=1 (set by .ci/run) a missing tool throws,
 * so CI never passes by silently skipping.
 */
export function hasBinary(name: string): boolean {
  let found = false;
  try {
    execFileSync('sh', ['-c', `command -v ${JSON.stringify(name)}`], { stdio: 'ignore' });
    found = true;
  } catch {
    found = false;
  }
  if (!found && process.env.SKIFF_REQUIRE_SYSTEM_DEPS === '1') {
    throw new Error(`system dependency '${name}' is missing and SKIFF_REQUIRE_SYSTEM_DEPS=1: add its Debian package to .ci/apt-packages.txt`);
  }
  return found;
}

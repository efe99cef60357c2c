import { accessSync, constants, readdirSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

import type { HandlerAvailability, RuntimeClassName } from './advise-figures.js';
import { nativeBinary } from './native.js';
import type { RuntimeHandler } from './types.js';

/** Where probeRuntimeClasses looks; every field defaults to this host's (tests point them elsewhere). */
export interface ProbeOptions {
  /** Directories searched for programs, as $PATH. */
  path?: string;
  /** Where a kernel for the vm class is looked for (`vmlinuz-*`). */
  bootDir?: string;
  /** The KVM device; without it QEMU emulates the CPU (TCG). */
  kvmDevice?: string;
  /** Finds a native helper built by `npm run build` (`skiff-init`, `skiff-vminit`). */
  nativeBinary?: (name: string) => string | undefined;
}

/**
 * probeRuntimeClasses says, per runtime class, which handler would run it here and, when none can,
 * what to install. It only looks for the programs and files the handlers need; the handlers' own
 * `unavailable()` checks go further (whether bwrap can create a user namespace, whether the kernel
 * boots), and the server, which has the handlers, should pass their answers to `classFacts` instead.
 */
export function probeRuntimeClasses(opts: ProbeOptions = {}): Record<RuntimeClassName, HandlerAvailability> {
  const dirs = (opts.path ?? process.env.PATH ?? '').split(delimiter).filter(Boolean);
  const which = (name: string) => dirs.map((d) => join(d, name)).find(executable);
  const native = opts.nativeBinary ?? nativeBinary;
  return { wasm: { handler: 'sandbox', available: true }, container: container(which, native), vm: vm(which, native, opts) };
}

/**
 * availabilityOf asks a handler itself whether it can run here, for `classFacts` in place of the
 * probe: the server, which holds the handlers, knows more than a look for programs can.
 */
export async function availabilityOf(handler: Pick<RuntimeHandler, 'name' | 'unavailable'>, acceleration?: 'kvm' | 'tcg'): Promise<HandlerAvailability> {
  const reason = await handler.unavailable();
  return { handler: handler.name, available: reason === undefined, ...(reason !== undefined ? { reason } : {}), ...(acceleration ? { acceleration } : {}) };
}

function container(which: (n: string) => string | undefined, native: (n: string) => string | undefined): HandlerAvailability {
  const handler = ['bwrap', 'runc', 'crun'].find((h) => which(h)) ?? 'bwrap';
  if (!which(handler)) return { handler, available: false, reason: 'install bubblewrap' };
  if (!native('skiff-init')) return { handler, available: false, reason: 'build dist/native/skiff-init with npm run build, which needs a C compiler with static glibc' };
  return { handler, available: true };
}

function vm(which: (n: string) => string | undefined, native: (n: string) => string | undefined, opts: ProbeOptions): HandlerAvailability {
  const acceleration = exists(opts.kvmDevice ?? '/dev/kvm') ? 'kvm' : 'tcg';
  const missing: string[] = [];
  if (!which('qemu-system-x86_64')) missing.push('install qemu-system-x86');
  const boot = opts.bootDir ?? '/boot';
  let kernels: string[] = [];
  try {
    kernels = readdirSync(boot).filter((f) => f.startsWith('vmlinuz-'));
  } catch {
    // No boot directory: the same as no kernel in it.
  }
  if (!kernels.length) missing.push(`install linux-image-cloud-amd64, as there is no vmlinuz-* under ${boot}`);
  if (!native('skiff-vminit')) missing.push('build dist/native/skiff-vminit with npm run build, which needs a C compiler with static glibc');
  return missing.length ? { handler: 'qemu', available: false, reason: missing.join('; '), acceleration } : { handler: 'qemu', available: true, acceleration };
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function exists(path: string): boolean {
  try {
    accessSync(path, constants.F_OK);
    return true;
  } catch {
    return false;
  }
}

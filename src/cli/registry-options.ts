import { readFileSync } from 'node:fs';

import type { Command } from 'commander';

import { createRegistryClient, defaultDockerConfigPath, DockerConfig, type ImageReference, OciError, parseReference, type RegistryClient } from '../oci/index.js';
import { UpstreamGuard } from '../security/index.js';
import { CheckFailedError, UsageError } from '../util/errors.js';

/** The registry flags every command that talks to a registry shares. */
export interface RegistryFlags {
  insecureRegistry: string[];
  registryConfig?: string;
  registryCa?: string;
}

const collect = (v: string, prev: string[]) => [...prev, v];

/**
 * addRegistryOptions adds `--insecure-registry HOST:PORT` (repeatable), `--registry-config FILE` (a
 * docker config.json; default `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`) and
 * `--registry-ca FILE` (PEM CA bundle trusted beside the system's).
 */
export function addRegistryOptions(cmd: Command): Command {
  return cmd
    .option('--insecure-registry <host:port>', 'a registry reached over plain HTTP (repeatable); every other one over HTTPS', collect, [])
    .option('--registry-config <file>', 'registry credentials: a docker config.json (default $DOCKER_CONFIG/config.json or ~/.docker/config.json)')
    .option('--registry-ca <file>', 'PEM CA certificates to trust for HTTPS registries, beside the system\'s');
}

/**
 * registryFrom builds the CLI's registry client. The CLI acts for the person running it, on their
 * machine, so every network target is allowed (the upstream guard protects the server, not the CLI).
 */
export function registryFrom(flags: RegistryFlags): RegistryClient {
  const path = flags.registryConfig ?? defaultDockerConfigPath();
  let config: DockerConfig;
  try {
    config = DockerConfig.load(path, { optional: flags.registryConfig === undefined });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  let ca: string | undefined;
  if (flags.registryCa) {
    try {
      ca = readFileSync(flags.registryCa, 'utf8');
    } catch (err) {
      throw new UsageError(`--registry-ca ${flags.registryCa}: cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  for (const h of flags.insecureRegistry) if (!/^(\[[^\]]+\]|[^:/\s]+)(:\d{1,5})?$/.test(h)) throw new UsageError(`--insecure-registry ${h}: expected HOST:PORT, e.g. 127.0.0.1:5000`);
  return createRegistryClient({ upstreams: UpstreamGuard.permissive(), insecure: flags.insecureRegistry, credentials: config.provider(), ca });
}

/** referenceArg parses a reference given on the command line; a bad one is a usage error (exit 2). */
export function referenceArg(text: string, what: string): ImageReference {
  try {
    return parseReference(text);
  } catch (err) {
    throw new UsageError(`${what}: ${(err as Error).message}`);
  }
}

/** registryFailure turns a registry's refusal into a failed check (exit 1) prefixed with the command. */
export function registryFailure(command: string, err: unknown): unknown {
  return err instanceof OciError ? new CheckFailedError(`${command}: ${err.message}`, err.code) : err;
}

import { DOCKER_CONFIG_JSON_SECRET, secretValue } from '../api/kinds/index.js';
import type { ResourceService } from '../api/resources.js';
import { chainProviders, DockerConfig, OciCredentialsError } from '../oci/index.js';

import { ModuleLoadError } from './errors.js';
import type { PullSecrets } from './module-source.js';

/**
 * secretPullCredentials reads a Function's `spec.imagePullSecrets`: each names a
 * `kubernetes.io/dockerconfigjson` Secret in the Function's namespace, whose `.dockerconfigjson` is a
 * docker config.json. The first Secret with an entry for a registry supplies its credentials. A
 * missing or malformed Secret fails the load, naming it (never its contents).
 */
export function secretPullCredentials(resources: ResourceService): PullSecrets {
  return async (namespace, names) => {
    const def = resources.kind('Secret');
    const configs: DockerConfig[] = [];
    for (const [i, name] of names.entries()) {
      const where = `spec.imagePullSecrets[${i}]: Secret ${namespace}/${name}`;
      const secret = await resources.tryGet(def, namespace, name);
      if (!secret) throw new ModuleLoadError('PullSecretNotFound', `${where} does not exist; create it (type ${DOCKER_CONFIG_JSON_SECRET}, key .dockerconfigjson) or remove it from the Function`);
      if (secret.type !== DOCKER_CONFIG_JSON_SECRET) throw new ModuleLoadError('PullSecretInvalid', `${where} has type ${String(secret.type ?? 'Opaque')}; registry credentials need type ${DOCKER_CONFIG_JSON_SECRET}`);
      const text = secretValue(secret, '.dockerconfigjson');
      if (text === undefined) throw new ModuleLoadError('PullSecretInvalid', `${where} has no .dockerconfigjson key`);
      try {
        configs.push(DockerConfig.parse(text, `Secret ${namespace}/${name}`));
      } catch (err) {
        if (err instanceof OciCredentialsError) throw new ModuleLoadError('PullSecretInvalid', `spec.imagePullSecrets[${i}]: ${err.message}`, err);
        throw err;
      }
    }
    return chainProviders(...configs.map((c) => c.provider()));
  };
}

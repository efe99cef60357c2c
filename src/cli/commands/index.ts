import type { Command } from 'commander';

import { register as admission } from './admission.js';
import { register as advise } from './advise.js';
import { register as apply } from './apply.js';
import { register as attest } from './attest.js';
import { register as audit } from './audit.js';
import { register as cluster } from './cluster.js';
import { register as conformance } from './conformance.js';
import { register as cordon } from './cordon.js';
import { register as del } from './delete.js';
import { register as describe } from './describe.js';
import { register as generateKeyPair } from './generate-key-pair.js';
import { register as get } from './get.js';
import { register as inspect } from './inspect.js';
import { register as kubeconfig } from './kubeconfig.js';
import { register as logs } from './logs.js';
import { register as policy } from './policy.js';
import { register as push } from './push.js';
import { register as rollout } from './rollout.js';
import { register as run } from './run.js';
import { register as sign } from './sign.js';
import { register as signBlob } from './sign-blob.js';
import { register as sync } from './sync.js';
import { register as top } from './top.js';
import { register as up } from './up.js';
import { register as verify } from './verify.js';
import { register as verifyAttestation } from './verify-attestation.js';
import { register as verifyBlob } from './verify-blob.js';
import { register as version } from './version.js';
import { register as webhook } from './webhook.js';

// One file per command; each exports `register(program)`. Keep this list sorted.
const registrars: Array<(program: Command) => void> = [
  admission,
  advise,
  apply,
  attest,
  audit,
  cluster,
  conformance,
  cordon,
  del,
  describe,
  generateKeyPair,
  get,
  inspect,
  kubeconfig,
  logs,
  policy,
  push,
  rollout,
  run,
  sign,
  signBlob,
  sync,
  top,
  up,
  verify,
  verifyAttestation,
  verifyBlob,
  version,
  webhook,
];

/** registerAll attaches every CLI command to the program. */
export function registerAll(program: Command): void {
  for (const register of registrars) register(program);
}

import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type http from 'node:http';

import type { Logger } from 'pino';

import type { Principal } from '../../api/authn.js';
import { ApiError } from '../../api/errors.js';
import { secretValue } from '../../api/kinds/index.js';
import type { ResourceObject } from '../../api/kinds/types.js';
import { readBodyBytes } from '../../api/request-body.js';
import type { ResourceService } from '../../api/resources.js';
import type { ApiMount } from '../../api/server.js';

/** Where Git hosts post: `/hooks/git/NAMESPACE/NAME`. */
export const GIT_WEBHOOK_PREFIX = '/hooks/git/';

/** What the webhook needs from the source controller. */
export interface WebhookSources {
  get(namespace: string, name: string): ResourceObject | undefined;
  /** Asks for a fetch now; false when the GitRepository is not known. In a cluster a node that does not lead asks the leader. */
  refresh(namespace: string, name: string): boolean | Promise<boolean>;
}

export interface GitWebhookOptions {
  sources: WebhookSources;
  /** Reads the Secret that spec.webhook.secretRef names. */
  resources: ResourceService;
  logger: Logger;
  /** Largest body accepted (default 1 MiB: push payloads are a few KiB). */
  maxBodyBytes?: number;
}

const NOT_AUTHENTICATED = 'this webhook needs the API bearer token, or a signature made with the GitRepository\'s spec.webhook secret (X-Hub-Signature-256 or X-Gitlab-Token)';

/** sameSecret compares two strings in constant time whatever their lengths, by their digests. */
function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}

/** signedWith says whether the request carries a valid GitHub HMAC over the body or the GitLab token. */
export function signedWith(secret: string, headers: http.IncomingHttpHeaders, body: Buffer): boolean {
  const hub = headers['x-hub-signature-256'];
  if (typeof hub === 'string') {
    const expected = `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
    if (sameSecret(hub.trim().toLowerCase(), expected)) return true;
  }
  const gitlab = headers['x-gitlab-token'];
  if (typeof gitlab === 'string' && sameSecret(gitlab, secret)) return true;
  return false;
}

/**
 * gitWebhookMount serves `POST /hooks/git/NAMESPACE/NAME` on the API listener: a push notification
 * that makes the GitRepository fetch at once (202). The caller is either an API client with the
 * token, or a Git host signing with the secret in spec.webhook.secretRef. Every unauthenticated
 * failure is the same 401, so the answer does not tell whether the object exists.
 */
export function gitWebhookMount(opts: GitWebhookOptions): ApiMount {
  const maxBody = opts.maxBodyBytes ?? 1024 * 1024;
  return {
    matches: (path) => path.startsWith(GIT_WEBHOOK_PREFIX),
    authenticatesItself: (_path, method) => method === 'POST',
    handle: async (req, res, path, _query, principal: Principal | undefined) => {
      const deny = () => new ApiError(401, 'Unauthorized', NOT_AUTHENTICATED);
      const m = /^\/hooks\/git\/([a-z0-9][a-z0-9-]{0,62})\/([a-z0-9][a-z0-9.-]{0,252})$/.exec(path);
      const method = req.method ?? 'GET';
      if (method !== 'POST') {
        if (!principal) throw deny();
        res.setHeader('allow', 'POST');
        throw new ApiError(405, 'MethodNotAllowed', `${method} is not supported on ${path}: Git hosts POST push notifications here`);
      }
      const body = await readBodyBytes(req, res, maxBody);
      if (!m) {
        if (!principal) throw deny();
        throw new ApiError(404, 'NotFound', `${path} is not a webhook path: use ${GIT_WEBHOOK_PREFIX}NAMESPACE/NAME`);
      }
      const [, ns, name] = m as unknown as [string, string, string];
      const obj = opts.sources.get(ns, name);
      if (!principal) {
        const ref = obj?.spec?.webhook?.secretRef?.name as string | undefined;
        const secret = ref ? await opts.resources.tryGet(opts.resources.kind('Secret'), ns, ref) : undefined;
        const token = secret ? secretValue(secret, 'token') : undefined;
        if (!token || !signedWith(token, req.headers, body)) {
          opts.logger.info({ gitrepository: `${ns}/${name}` }, 'refused an unauthenticated git webhook');
          throw deny();
        }
      }
      if (!obj || !(await opts.sources.refresh(ns, name))) throw new ApiError(404, 'NotFound', `gitrepositories "${name}" not found in namespace ${ns}`);
      res.writeHead(202, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Success', message: `a fetch of GitRepository ${ns}/${name} is queued`, code: 202 }) + '\n');
    },
  };
}

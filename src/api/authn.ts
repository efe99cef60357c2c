import { createHash, timingSafeEqual } from 'node:crypto';
import type http from 'node:http';

import { ApiError } from './errors.js';

/** Who a request authenticated as: the person's token or the controllers' token. */
export type Principal = 'user' | 'controller';

/** Where the token lives, for messages that tell a person how to authenticate. */
export const TOKEN_HELP =
  'send "Authorization: Bearer TOKEN" with the token from the server\'s DATA_DIR/token (the CLI reads it from --token, $SKIFF_TOKEN, $SKIFF_DATA_DIR/token or ./.skiff/token)';

/**
 * TokenAuthenticator checks bearer tokens. Each presented token is hashed and compared with
 * timingSafeEqual against the hashes of the known tokens, so neither the content nor the length of a
 * secret leaks through timing.
 */
export class TokenAuthenticator {
  private readonly user: Buffer;
  private readonly controller?: Buffer;

  constructor(token: string, controllerToken?: string) {
    if (!token) throw new Error('the API needs a token');
    this.user = digest(token);
    this.controller = controllerToken ? digest(controllerToken) : undefined;
  }

  /** authenticate answers who presented the request's bearer token; 401 `Unauthorized` when none matches. */
  authenticate(req: http.IncomingMessage): Principal {
    const header = req.headers.authorization;
    const m = header === undefined ? undefined : /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
    if (!m) throw unauthorized(header === undefined ? 'this request needs a bearer token' : 'the Authorization header is not of the form "Bearer TOKEN"');
    const presented = digest(m[1]!);
    // Compare with both so that the time taken does not tell which one matched.
    const isUser = timingSafeEqual(presented, this.user);
    const isController = this.controller !== undefined && timingSafeEqual(presented, this.controller);
    if (isController) return 'controller';
    if (isUser) return 'user';
    throw unauthorized('the bearer token is not valid for this server');
  }
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/**
 * unauthorized starts its message with the word kube-apiserver answers alone, so kubectl's usual
 * "You must be logged in to the server (Unauthorized...)" reads as it does with any cluster.
 */
function unauthorized(why: string): ApiError {
  return new ApiError(401, 'Unauthorized', `Unauthorized: ${why}: ${TOKEN_HELP}`);
}

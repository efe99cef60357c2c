import type http from 'node:http';
import { isIPv4 } from 'node:net';

import { ApiError } from './errors.js';

/**
 * checkHost refuses, on an API that listens on loopback only, a request whose Host is not a loopback
 * name. A web page can make a browser resolve its own domain to 127.0.0.1 (DNS rebinding) and then
 * reach the API as a same-origin page would; the Host header still carries the page's domain. An API
 * bound beyond loopback is reached under names Skiff cannot know, so any Host is accepted there (every
 * request needs the token anyway).
 */
export function checkHost(req: http.IncomingMessage, loopbackOnly: boolean): void {
  if (!loopbackOnly) return;
  const host = req.headers.host;
  if (host !== undefined && isLoopbackHost(host)) return;
  throw new ApiError(
    403,
    'Forbidden',
    `${host === undefined ? 'the request has no Host header' : `the Host header "${host}" is not a loopback name`}: this API listens on loopback and answers only requests addressed to localhost, *.localhost or a loopback IP, so that a web page cannot reach it by DNS rebinding; to serve other names, listen beyond loopback (--api 0.0.0.0:PORT), where every request needs the token`,
  );
}

/**
 * checkCrossSite refuses requests that a browser sends on behalf of another site: an `Origin` other
 * than the API's own, or `Sec-Fetch-Site` of `cross-site` or `same-site` (other ports of the same host
 * are the same site, and the gateway there serves untrusted Functions). The API sends no CORS headers,
 * so a refused preflight stays refused; the token remains the main gate.
 */
export function checkCrossSite(req: http.IncomingMessage): void {
  const site = req.headers['sec-fetch-site'];
  if (site === 'cross-site' || site === 'same-site') throw crossSite(`Sec-Fetch-Site: ${site}`);
  const origin = req.headers.origin;
  if (origin === undefined) return;
  const own = req.headers.host === undefined ? undefined : `http://${req.headers.host.toLowerCase()}`;
  if (origin.toLowerCase() !== own) throw crossSite(`Origin ${origin}`);
}

function crossSite(what: string): ApiError {
  return new ApiError(403, 'Forbidden', `the API does not answer requests from web pages of other origins (${what}); use the CLI or send the token from a non-browser client`);
}

/**
 * isLoopbackHost tells whether a Host header (with or without a port) names this machine's loopback:
 * `localhost`, a `*.localhost` name (RFC 6761 keeps both on loopback), an IPv4 address in 127.0.0.0/8
 * or `[::1]`.
 */
export function isLoopbackHost(host: string): boolean {
  let name: string;
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    if (end < 0) return false;
    name = host.slice(1, end).toLowerCase();
    const rest = host.slice(end + 1);
    if (rest !== '' && !/^:\d{1,5}$/.test(rest)) return false;
    return name === '::1' || name === '0:0:0:0:0:0:0:1';
  }
  const colon = host.indexOf(':');
  name = (colon < 0 ? host : host.slice(0, colon)).toLowerCase();
  if (colon >= 0 && !/^\d{1,5}$/.test(host.slice(colon + 1))) return false;
  if (name === 'localhost') return true;
  if (name.endsWith('.localhost')) return /^([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+localhost$/.test(name);
  return isIPv4(name) && name.startsWith('127.') && name.split('.').every((o) => o === '0' || !o.startsWith('0'));
}

import semver from 'semver';

import { formatAge, parseDurationMs } from '../../util/quantity.js';

import { readyOf } from './conditions.js';
import type { FieldError, KindDefinition, ResourceObject } from './types.js';

/** The shortest interval a GitRepository may be polled at. */
export const MIN_GIT_INTERVAL_MS = 1000;
/** The longest a single fetch may take. */
export const MAX_GIT_TIMEOUT_MS = 10 * 60_000;

const REF_KINDS = ['branch', 'tag', 'semver', 'commit'] as const;

/**
 * checkGitUrl returns why a GitRepository URL is refused, or undefined when it is acceptable. Git
 * treats some URL forms as commands (`ext::`, `fd::`) or options (a leading `-`), and credentials in
 * a URL end up in logs and status: all of those are refused here, before anything runs git.
 */
export function checkGitUrl(url: string): string | undefined {
  if (url.length === 0) return 'is required';
  if (url.length > 2048) return 'is longer than 2048 characters';
  if (url.startsWith('-')) return 'must not start with "-" (git would read it as an option)';
  if (/^[a-z][a-z0-9+.-]*::/i.test(url)) return 'remote helpers such as ext:: and fd:: run commands and are not allowed; use https://, ssh://, git@host:path or a local path';
  if (/[\s\0]/.test(url) || /[\x00-\x1f\x7f]/.test(url)) return 'must not contain whitespace or control characters';
  if (url.startsWith('/')) return url.split('/').includes('..') ? 'a local path must not contain ".." segments' : undefined;
  const scp = /^([A-Za-z0-9._-]+)@([A-Za-z0-9.-]+):(?!\/\/)(.+)$/.exec(url);
  if (scp) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'is not a URL: use https://HOST/REPO.git, ssh://git@HOST/REPO.git, git@HOST:REPO.git, file:///PATH or an absolute path';
  }
  const scheme = parsed.protocol.slice(0, -1);
  if (!['http', 'https', 'ssh', 'file'].includes(scheme)) return `scheme ${scheme}:// is not supported: use https://, http://, ssh://, git@host:path, file:// or an absolute path`;
  if (parsed.password || (parsed.username && scheme !== 'ssh')) return 'must not carry credentials; put them in a Secret and name it in spec.secretRef';
  if (scheme === 'file' && parsed.host !== '') return 'a file:// URL must name a local path (file:///PATH)';
  if (scheme !== 'file' && !parsed.hostname) return 'must name a host';
  return undefined;
}

function durationError(field: string, value: unknown, min: number, max: number | undefined, errs: FieldError[]): void {
  if (value === undefined) return;
  const ms = parseDurationMs(String(value));
  if (ms === undefined || ms < min || (max !== undefined && ms > max)) {
    errs.push({ field, message: `must be a duration such as 2s, 1m or 1m30s, at least ${min / 1000}s${max ? ` and at most ${max / 60_000}m` : ''}`, reason: 'FieldValueInvalid' });
  }
}

function validate(o: ResourceObject): FieldError[] {
  const errs: FieldError[] = [];
  const spec = o.spec ?? {};
  const urlProblem = checkGitUrl(String(spec.url ?? ''));
  if (urlProblem) errs.push({ field: 'spec.url', message: urlProblem, reason: 'FieldValueInvalid' });
  const ref = (spec.ref ?? {}) as Record<string, unknown>;
  const given = REF_KINDS.filter((k) => ref[k] !== undefined);
  if (spec.ref !== undefined && given.length !== 1) errs.push({ field: 'spec.ref', message: `give exactly one of branch, tag, semver or commit (found ${given.length ? given.join(', ') : 'none'})`, reason: 'FieldValueInvalid' });
  for (const k of ['branch', 'tag'] as const) {
    const v = ref[k];
    if (typeof v === 'string' && (v.startsWith('-') || v.includes('..') || /[\s~^:?*[\\\x00-\x1f\x7f]/.test(v) || v.endsWith('/') || v.endsWith('.lock') || v.startsWith('/'))) {
      errs.push({ field: `spec.ref.${k}`, message: `${JSON.stringify(v)} is not a valid git ${k} name`, reason: 'FieldValueInvalid' });
    }
  }
  if (typeof ref.commit === 'string' && !/^[0-9a-f]{40}$/.test(ref.commit)) errs.push({ field: 'spec.ref.commit', message: 'must be a full 40-character lowercase hex commit sha', reason: 'FieldValueInvalid' });
  if (typeof ref.semver === 'string' && semver.validRange(ref.semver) === null) errs.push({ field: 'spec.ref.semver', message: `${JSON.stringify(ref.semver)} is not a valid semver range (such as ">=1.0.0 <2.0.0" or "1.x")`, reason: 'FieldValueInvalid' });
  durationError('spec.interval', spec.interval, MIN_GIT_INTERVAL_MS, undefined, errs);
  durationError('spec.timeout', spec.timeout, MIN_GIT_INTERVAL_MS, MAX_GIT_TIMEOUT_MS, errs);
  if (typeof spec.ignore === 'string' && spec.ignore.length > 64 * 1024) errs.push({ field: 'spec.ignore', message: 'is longer than 64 KiB', reason: 'FieldValueInvalid' });
  const url = String(spec.url ?? '');
  if (spec.secretRef && (url.startsWith('/') || url.startsWith('file:'))) errs.push({ field: 'spec.secretRef', message: 'a local path takes no credentials; remove spec.secretRef', reason: 'FieldValueInvalid' });
  return errs;
}

const refSchema = { type: 'object', additionalProperties: false, required: ['name'], properties: { name: { type: 'string', minLength: 1 } } };

/**
 * GitRepository: a Git repository fetched at an interval; each revision's tree (minus ignored and
 * unsafe entries) is stored as a content-addressed artifact that Syncs apply.
 *
 * @example
 * apiVersion: skiff.dev/v1
 * kind: GitRepository
 * metadata: { name: app, namespace: default }
 * spec:
 *   url: https://git.example.com/team/app.git
 *   ref: { branch: main }
 *   interval: 1m
 *   secretRef: { name: git-auth }
 */
export const gitRepositoryKind: KindDefinition = {
  kind: 'GitRepository',
  plural: 'gitrepositories',
  singular: 'gitrepository',
  shortNames: ['gitrepo'],
  namespaced: true,
  description:
    'GitRepository fetches a branch, tag, semver range or commit of a Git repository at an interval (or at once on a webhook), optionally checks the commit signature, and stores the tree as a content-addressed artifact for Syncs. A failed fetch keeps the previous artifact.',
  specSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['url'],
    properties: {
      url: { type: 'string', description: 'https:// or http:// (auth from secretRef), ssh://git@HOST/REPO.git or git@HOST:REPO.git (identity and known_hosts from secretRef), or a local path / file:// for development. No credentials inside the URL.' },
      ref: {
        type: 'object',
        additionalProperties: false,
        description: 'What to fetch: exactly one of branch, tag, semver (the highest tag matching the range) or commit (a full sha). Default: branch main.',
        properties: {
          branch: { type: 'string', minLength: 1 },
          tag: { type: 'string', minLength: 1 },
          semver: { type: 'string', minLength: 1 },
          commit: { type: 'string' },
        },
      },
      interval: { type: 'string', description: 'How often the repository is fetched (default 1m, at least 1s), such as 2s or 1m30s.' },
      timeout: { type: 'string', description: 'How long one fetch may take before git is stopped (default 60s, at most 10m).' },
      ignore: { type: 'string', description: '.gitignore-style lines; matching files are left out of the artifact.' },
      secretRef: { ...refSchema, description: 'A Secret in the same namespace: username and password, or bearerToken (http/https); identity (a private key) and known_hosts (ssh).' },
      verify: {
        type: 'object',
        additionalProperties: false,
        required: ['secretRef'],
        description: 'Check the signature of the fetched commit; an unsigned or wrongly signed commit gives no new artifact.',
        properties: {
          mode: { type: 'string', enum: ['HEAD'], description: 'What is verified: HEAD, the fetched commit (default).' },
          secretRef: { ...refSchema, description: 'A Secret whose *.asc keys are OpenPGP public keys and whose *.pub or allowed_signers keys are SSH public keys.' },
        },
      },
      webhook: {
        type: 'object',
        additionalProperties: false,
        required: ['secretRef'],
        description: 'Lets POST /hooks/git/NAMESPACE/NAME trigger a fetch when signed with this secret (GitHub X-Hub-Signature-256 or GitLab X-Gitlab-Token), without an API token.',
        properties: { secretRef: { ...refSchema, description: 'A Secret in the same namespace whose key `token` is the webhook secret.' } },
      },
      suspend: { type: 'boolean', description: 'Stop fetching; the last artifact stays.' },
    },
  },
  statusSchema: {
    type: 'object',
    properties: {
      artifact: {
        type: 'object',
        description: 'The stored artifact of the last good revision.',
        properties: { revision: { type: 'string' }, digest: { type: 'string' }, size: { type: 'integer' }, lastUpdateTime: { type: 'string', format: 'date-time' } },
      },
      observedGeneration: { type: 'integer' },
      lastHandledReconcileAt: { type: 'string', description: 'The last skiff.dev/reconcile-at annotation value a fetch acted on.' },
      conditions: { type: 'array', items: { $ref: '#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Condition' }, description: 'Ready: the newest revision is stored as the artifact (False with the reason). SourceVerified: its commit signature was checked (with spec.verify).' },
    },
  },
  validate,
  printerColumns: [
    { name: 'URL', jsonPath: '.spec.url', value: (o) => String(o.spec?.url ?? '') },
    { name: 'REVISION', jsonPath: '.status.artifact.revision', value: (o) => String(o.status?.artifact?.revision ?? '<none>') },
    { name: 'READY', jsonPath: '.status.conditions[?(@.type=="Ready")].status', value: (o) => readyOf(o) },
    { name: 'AGE', type: 'date', value: (o) => formatAge(o.metadata.creationTimestamp) },
  ],
};

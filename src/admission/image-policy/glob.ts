import { RE2JS } from 're2js';

const DOCKER_HUB = 'index.docker.io';

/**
 * normalizeName writes a `REGISTRY/REPOSITORY` name the way registries and policy-controller compare
 * them: a name without a registry host (its first segment has no `.` or `:` and is not `localhost`)
 * lives on Docker Hub, `docker.io` is spelled `index.docker.io`, and a one-segment Hub repository is
 * in `library/`.
 */
export function normalizeName(name: string): string {
  const slash = name.indexOf('/');
  const first = slash < 0 ? '' : name.slice(0, slash);
  const hasHost = slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost');
  let host = hasHost ? first : DOCKER_HUB;
  let repo = hasHost ? name.slice(slash + 1) : name;
  if (host === 'docker.io' || host === 'registry-1.docker.io') host = DOCKER_HUB;
  if (host === DOCKER_HUB && !repo.includes('/') && !repo.startsWith('*')) repo = `library/${repo}`;
  return `${host}/${repo}`;
}

/** ImageGlob is one compiled `spec.images[].glob`. */
export interface ImageGlob {
  readonly glob: string;
  /** matches tells whether a reference (`REGISTRY/REPO[:TAG][@DIGEST]`, normalized) falls under the glob. */
  matches(reference: string): boolean;
}

/**
 * compileGlob turns a glob into a matcher: `**` matches any run of characters, `*` any run without a
 * `/`, `?` one character other than `/`; everything else is literal. A glob without a tag or digest
 * matches the reference's name, so `registry/team/*` covers `registry/team/app:v1` and
 * `registry/team/app@sha256:...`. RE2 semantics keep matching linear in the reference's length,
 * whatever the glob.
 */
export function compileGlob(glob: string): ImageGlob {
  const lastSlash = glob.lastIndexOf('/');
  const tail = glob.slice(lastSlash + 1);
  const withVersion = tail.includes('@') || (tail.includes(':') && lastSlash >= 0);
  const normalized = withVersion ? normalizeVersioned(glob) : normalizeName(glob);
  let pattern = '';
  for (let i = 0; i < normalized.length; i++) {
    const c = normalized[i]!;
    if (c === '*' && normalized[i + 1] === '*') {
      pattern += '.*';
      i++;
    } else if (c === '*') pattern += '[^/]*';
    else if (c === '?') pattern += '[^/]';
    else pattern += RE2JS.quote(c);
  }
  const re = RE2JS.compile(`^${pattern}$`);
  return {
    glob,
    matches(reference: string): boolean {
      const target = withVersion ? reference : nameOf(reference);
      return re.matches(target);
    },
  };
}

function normalizeVersioned(glob: string): string {
  const at = glob.indexOf('@');
  const cut = at >= 0 ? at : glob.lastIndexOf(':');
  return normalizeName(glob.slice(0, cut)) + glob.slice(cut);
}

/** nameOf strips a reference's tag and digest. */
export function nameOf(reference: string): string {
  const at = reference.indexOf('@');
  const noDigest = at >= 0 ? reference.slice(0, at) : reference;
  const colon = noDigest.lastIndexOf(':');
  return colon > noDigest.lastIndexOf('/') ? noDigest.slice(0, colon) : noDigest;
}

import { SkiffError } from '../util/errors.js';

/**
 * The contract between Git sources and what consumes them (Syncs): a source fetches a revision and
 * stores the tree as a content-addressed artifact; a consumer reads the artifact's files by digest and
 * never touches Git itself. The source controller implements both interfaces (`source/`), tests of
 * consumers use `MemoryArtifacts`.
 */

/** ArtifactRef is `status.artifact` of a GitRepository. */
export interface ArtifactRef {
  /** `BRANCH@sha1:FULLSHA`, `TAG@sha1:FULLSHA`, or `sha1:FULLSHA` for a pinned commit. */
  revision: string;
  /** `sha256:HEX` of the artifact's canonical bytes: the same tree gives the same digest. */
  digest: string;
  /** Bytes of the stored artifact. */
  size: number;
  /** RFC 3339 time the artifact was stored. */
  lastUpdateTime: string;
}

/** ArtifactFiles maps POSIX paths relative to the repository root (no leading `./`) to their bytes. */
export type ArtifactFiles = ReadonlyMap<string, Uint8Array>;

/** ArtifactReader gives a consumer the files of a stored artifact. */
export interface ArtifactReader {
  /** read returns the files of the artifact with this digest; it rejects with `ArtifactMissingError` when it is not stored. */
  read(digest: string): Promise<ArtifactFiles>;
}

/** ArtifactMissingError: no artifact with that digest is stored (collected, or never fetched here). */
export class ArtifactMissingError extends SkiffError {
  constructor(readonly digest: string) {
    super('artifact_missing', `artifact ${digest} is not stored; the source will fetch it again on its next interval`);
  }
}

/** MemoryArtifacts is an ArtifactReader over a map, for tests of consumers. */
export class MemoryArtifacts implements ArtifactReader {
  private readonly byDigest = new Map<string, ArtifactFiles>();

  put(digest: string, files: Record<string, string | Uint8Array>): void {
    this.byDigest.set(digest, new Map(Object.entries(files).map(([p, v]) => [p, typeof v === 'string' ? new TextEncoder().encode(v) : v])));
  }

  async read(digest: string): Promise<ArtifactFiles> {
    const files = this.byDigest.get(digest);
    if (!files) throw new ArtifactMissingError(digest);
    return files;
  }
}

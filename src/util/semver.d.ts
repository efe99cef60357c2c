// The semver package ships no type declarations and @types/semver is not installed: these are the
// few functions the Git source uses, typed as the package documents them.
declare module 'semver' {
  interface SemverFunctions {
    validRange(range: string): string | null;
    valid(version: string): string | null;
    maxSatisfying(versions: readonly string[], range: string): string | null;
  }
  const semver: SemverFunctions;
  export default semver;
}

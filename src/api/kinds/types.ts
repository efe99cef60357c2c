/**
 * FieldError names one bad field by its path from the object's root (`spec.http[0].match[0].uri.regex`)
 * and says what is wrong with it. Validation collects every FieldError before refusing an object.
 */
export interface FieldError {
  field: string;
  message: string;
  /** A Kubernetes-style cause reason: FieldValueRequired, FieldValueInvalid, FieldValueNotSupported, FieldValueDuplicate. */
  reason?: string;
}

/**
 * A printer column: a header and how to render the cell from an object. The server turns a kind's
 * columns into the `Table` that `kubectl get` and `skiff get` both print (`api/table.ts`).
 */
export interface PrinterColumn {
  name: string;
  /** Shown only with `-o wide` (the Table column's `priority` 1). */
  wide?: boolean;
  /** Renders the cell. */
  value: (obj: ResourceObject) => string;
  /**
   * The same column as a simple path (`.status.totalViolations`), published in discovery so that a
   * client that does not know the kind (one registered at run time) can print it too.
   */
  jsonPath?: string;
  /** The Table column's OpenAPI type: `string` (default), `integer`, `number`, `boolean` or `date` (an age). */
  type?: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  /** The Table column's description (what `kubectl get` shows nowhere, but clients may). */
  description?: string;
  /**
   * Whether `<none>` is sent as that text rather than as a missing value (null, which kubectl prints
   * as an empty cell): kube-apiserver's own printers write it so for some columns (a node's ROLES).
   */
  noneAsText?: boolean;
}

/** ResourceObject is any stored object: Kubernetes-shaped JSON. */
export interface ResourceObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  // spec and status differ per kind; each kind's code reads them after schema validation.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  spec?: any;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  status?: any;
  [extra: string]: unknown;
}

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  [extra: string]: unknown;
}

/**
 * KindDefinition describes one resource kind: its group and names, the JSON Schema of its `spec`
 * (checked with ajv, every error reported at once), optional semantic checks the schema cannot express,
 * how `skiff get` prints it, and what discovery says about it.
 */
export interface KindDefinition {
  /** API group; `skiff.dev` when absent, `''` for Kubernetes' core group (served under `/api/v1`). */
  group?: string;
  /** API version within the group; `v1` when absent. */
  version?: string;
  kind: string;
  plural: string;
  singular: string;
  shortNames?: string[];
  namespaced: boolean;
  /** What the kind is for, in a sentence or two: published in OpenAPI and shown by `kubectl explain KIND`. */
  description?: string;
  /** JSON Schema (draft-07) for `spec`. */
  specSchema: Record<string, unknown>;
  /**
   * JSON Schema of `status` as controllers write it. Documentation only (OpenAPI, `kubectl explain`):
   * status arrives through the status subresource and is never validated against it.
   */
  statusSchema?: Record<string, unknown>;
  /**
   * For kinds without `spec` (Event): JSON Schemas of the other top-level fields, by name. They are
   * the kind's known fields for field validation and are published in OpenAPI.
   */
  rootFields?: Record<string, Record<string, unknown>>;
  /**
   * The `spec` schema to publish in OpenAPI when it differs from `specSchema` (a constraint's
   * `parameters` come from its template and are checked by `validate`). Read at each request, so a
   * changed template shows at once. Also the schema that field validation prunes by.
   */
  publishedSpecSchema?: () => Record<string, unknown>;
  /** Checks beyond the schema (regexes compile, references are well-formed). Paths start at the object root. */
  validate?: KindValidator;
  /**
   * Which spec fields are required when that depends on other fields (a Function needs `module` or
   * `image` by its runtime class): run with the schema, so a missing field is reported beside the others.
   */
  requiredFields?: (spec: Record<string, unknown>) => FieldError[];
  /**
   * Rewrites an object in place before it is checked and stored, as kube-apiserver's strategies do
   * (a Secret's write-only `stringData` is folded into `data`).
   */
  normalize?: (obj: ResourceObject) => void;
  /** Whether spec is required (true for most kinds; false for e.g. Event). */
  specRequired?: boolean;
  printerColumns: PrinterColumn[];
  /**
   * Older `GROUP/VERSION`s the kind is still served and accepted under, as an alias of the same objects
   * (same store keys): Namespace and Event under `skiff.dev/v1`, from before they moved to the core
   * group. Objects always come back with the kind's own apiVersion, and discovery lists only that one.
   */
  legacyApiVersions?: string[];
  /**
   * Further versions of the kind's group it is served in besides `version`, with the same schema, as
   * a CustomResourceDefinition's `served` versions (ConstraintTemplate: v1beta1 and v1alpha1 beside
   * v1). `version` is the storage version: objects are stored under it and come back in the version a
   * request names; a manifest may name any of them. Unlike `legacyApiVersions`, discovery lists them.
   */
  servedVersions?: string[];
  /**
   * The defaults of each served version's schema, applied to an object written in that version before
   * it is validated and stored (a CRD's structural defaulting; Gatekeeper's v1beta1 templates default
   * `legacySchema` to true, v1 to false).
   */
  versionDefaults?: (obj: ResourceObject, version: string) => void;
  /** Discovery categories: `all` puts the kind in `kubectl get all`. */
  categories?: string[];
  /** Whether the kind has a `status` subresource (true when absent). */
  statusSubresource?: boolean;
  /**
   * Field selector keys beyond `metadata.name` and `metadata.namespace` (dotted paths into the object,
   * e.g. `involvedObject.name` for Events).
   */
  selectableFields?: string[];
}

/** KindValidator checks an object beyond its schema; the paths of its errors start at the object root. */
export type KindValidator = (obj: ResourceObject) => FieldError[];

/**
 * KindValidators are checks that areas above the API supply for built-in kinds, by kind name (the
 * gateway's compilers for Route and Service). The composition root hands them to `builtinKinds`, so
 * the API validates what the gateway will run without importing the gateway.
 */
export type KindValidators = Readonly<Partial<Record<string, KindValidator>>>;

export const DEFAULT_GROUP = 'skiff.dev';

/** CORE_GROUP is Kubernetes' legacy group, named by the empty string and served under `/api`. */
export const CORE_GROUP = '';

/** groupOf is a kind's API group. */
export function groupOf(def: KindDefinition): string {
  return def.group ?? DEFAULT_GROUP;
}

/** versionOf is a kind's version within its group. */
export function versionOf(def: KindDefinition): string {
  return def.version ?? 'v1';
}

/** versionsOf lists every version a kind is served in: its storage version first, then `servedVersions`. */
export function versionsOf(def: KindDefinition): string[] {
  return [versionOf(def), ...(def.servedVersions ?? [])];
}

/**
 * compareVersions orders API versions as Kubernetes ranks them (kube-aware version priority): GA
 * before beta before alpha, a higher major version first, then a higher minor one; names that are not
 * of the `vN[alpha|betaM]` form come last, alphabetically. Negative when `a` ranks first.
 */
export function compareVersions(a: string, b: string): number {
  const rank = (v: string): [number, number, number] | undefined => {
    const m = /^v(\d+)(?:(alpha|beta)(\d+))?$/.exec(v);
    if (!m) return undefined;
    return [m[2] === undefined ? 2 : m[2] === 'beta' ? 1 : 0, Number(m[1]), m[3] === undefined ? 0 : Number(m[3])];
  };
  const ra = rank(a);
  const rb = rank(b);
  if (!ra || !rb) return ra ? -1 : rb ? 1 : a.localeCompare(b);
  return rb[0] - ra[0] || rb[1] - ra[1] || rb[2] - ra[2];
}

/** groupVersionString is `GROUP/VERSION`, or just `VERSION` for the core group (`v1`). */
export function groupVersionString(group: string, version: string): string {
  return group === CORE_GROUP ? version : `${group}/${version}`;
}

/** apiVersionOf is the `apiVersion` objects of a kind carry: GROUP/VERSION (`v1` in the core group). */
export function apiVersionOf(def: KindDefinition): string {
  return groupVersionString(groupOf(def), versionOf(def));
}

/** apiPathOf is the URL prefix of a group/version: `/api/v1` for the core group, `/apis/GROUP/VERSION` otherwise. */
export function apiPathOf(group: string, version: string): string {
  return group === CORE_GROUP ? `/api/${version}` : `/apis/${group}/${version}`;
}

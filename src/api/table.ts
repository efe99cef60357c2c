import { acceptedRanges, isJsonRange } from './accept.js';
import { ApiError, badRequest } from './errors.js';
import { type KindDefinition, type PrinterColumn, type ResourceObject } from './kinds/types.js';

/** The meta.k8s.io versions that serve Tables and partial metadata. */
export type MetaVersion = 'v1' | 'v1beta1';

/**
 * What a GET answers with, from its Accept header: the objects themselves, a `Table` of printer
 * columns (kubectl get), or only their metadata (`PartialObjectMetadata[List]`, the metadata client).
 */
export type ResponseShape = { as: 'object' } | { as: 'Table'; version: MetaVersion } | { as: 'PartialObjectMetadata'; version: MetaVersion };

/** A Table column as meta.k8s.io/v1 defines it. */
export interface TableColumnDefinition {
  name: string;
  type: string;
  format: string;
  description: string;
  /** 0: always shown; 1: only with `-o wide`. */
  priority: number;
}

export interface TableRow {
  cells: unknown[];
  object?: unknown;
}

export interface Table {
  kind: 'Table';
  apiVersion: string;
  metadata: { resourceVersion?: string; continue?: string; remainingItemCount?: number };
  columnDefinitions?: TableColumnDefinition[];
  rows: TableRow[];
}

/** What each Table row carries besides its cells (the `includeObject` query parameter). */
export type IncludeObject = 'None' | 'Metadata' | 'Object';

const META_GROUP = 'meta.k8s.io';

const OFFERED = ['application/json', `application/json;as=Table;v=v1;g=${META_GROUP}`, `application/json;as=Table;v=v1beta1;g=${META_GROUP}`, `application/json;as=PartialObjectMetadata;v=v1;g=${META_GROUP}`];

/**
 * negotiate picks the response shape from an Accept header the way kube-apiserver does: the first
 * acceptable entry (by `q`, then order) wins, so `...;as=Table;...,application/json` gets a Table and a
 * client that cannot take one falls back to JSON; nothing acceptable is 406. `list` says the request
 * is for a collection, whose metadata-only form is `PartialObjectMetadataList`.
 */
export function negotiate(accept: string | undefined, list: boolean): ResponseShape {
  if (!accept || accept.trim() === '') return { as: 'object' };
  for (const r of acceptedRanges(accept)) {
    if (!isJsonRange(r)) continue;
    const as = r.params.get('as');
    if (as === undefined) return { as: 'object' };
    const version = r.params.get('v');
    if (r.params.get('g') !== META_GROUP || (version !== 'v1' && version !== 'v1beta1')) continue;
    if (as === 'Table') return { as: 'Table', version };
    if (as === (list ? 'PartialObjectMetadataList' : 'PartialObjectMetadata')) return { as: 'PartialObjectMetadata', version };
  }
  throw new ApiError(406, 'NotAcceptable', `none of the media types in the Accept header can be served; this server offers ${OFFERED.join(', ')}${list ? ' (PartialObjectMetadataList for lists)' : ''}`);
}

/** parseIncludeObject reads the `includeObject` query parameter (Metadata when absent, as in Kubernetes). */
export function parseIncludeObject(value: string | null): IncludeObject {
  if (value === null || value === '' || value === 'Metadata') return 'Metadata';
  if (value === 'None' || value === 'Object') return value;
  throw badRequest(`unrecognized includeObject value: "${value}" (use None, Metadata or Object)`);
}

const NAME_COLUMN: TableColumnDefinition = { name: 'NAME', type: 'string', format: 'name', description: "The object's name, unique within its namespace (or the cluster, for cluster-scoped kinds)", priority: 0 };

const DEFAULT_DESCRIPTIONS: Record<string, string> = {
  READY: "Status of the object's Ready condition: True, False or Unknown",
  AGE: 'Time since the object was created',
};

/** columnDefinitions lists a kind's Table columns: NAME first, then the kind's printer columns. */
export function columnDefinitions(def: KindDefinition): TableColumnDefinition[] {
  return [NAME_COLUMN, ...def.printerColumns.map((c) => columnDefinition(c))];
}

function columnDefinition(c: PrinterColumn): TableColumnDefinition {
  const description = c.description ?? DEFAULT_DESCRIPTIONS[c.name] ?? (c.jsonPath ? `The value at ${c.jsonPath}` : c.name.toLowerCase());
  return { name: c.name, type: c.type ?? 'string', format: '', description, priority: c.wide ? 1 : 0 };
}

/** partialObjectMetadata is an object reduced to its metadata, as the metadata client receives it. */
export function partialObjectMetadata(obj: ResourceObject, version: MetaVersion = 'v1'): { kind: 'PartialObjectMetadata'; apiVersion: string; metadata: ResourceObject['metadata'] } {
  return { kind: 'PartialObjectMetadata', apiVersion: `${META_GROUP}/${version}`, metadata: obj.metadata };
}

/**
 * tableRow renders one object's cells (NAME first) and what `includeObject` asks to carry along. A
 * watch bookmark's object has nothing but a resourceVersion: its row has an empty name and null cells,
 * as kube-apiserver's Table conversion renders an object whose columns all find nothing.
 */
export function tableRow(def: KindDefinition, obj: ResourceObject, include: IncludeObject, version: MetaVersion = 'v1'): TableRow {
  const bookmark = obj.metadata.name === undefined;
  const cells = bookmark ? ['', ...def.printerColumns.map(() => null)] : [obj.metadata.name, ...def.printerColumns.map((c) => typedCell(c, c.value(obj)))];
  if (include === 'None') return { cells };
  if (include === 'Object') return { cells, object: obj };
  return { cells, object: partialObjectMetadata(obj, version) };
}

/**
 * typedCell turns a printed value into the cell its column type promises: a number for `integer` and
 * `number`, a boolean for `boolean`, and null (which clients print as `<none>`) for a missing value.
 */
function typedCell(c: PrinterColumn, v: string): string | number | boolean | null {
  if (v === '<none>') return c.noneAsText ? v : null;
  if ((c.type === 'integer' && /^-?\d+$/.test(v)) || (c.type === 'number' && v.trim() !== '' && Number.isFinite(Number(v)))) return Number(v);
  if (c.type === 'boolean' && (v === 'true' || v === 'false')) return v === 'true';
  return v;
}

export interface TableOptions {
  version?: MetaVersion;
  include?: IncludeObject;
  /** Leave out `columnDefinitions` (watch events after the first, as kube-apiserver does). */
  noHeaders?: boolean;
  resourceVersion?: string;
  continue?: string;
  remainingItemCount?: number;
}

/** toTable renders objects of one kind as a meta.k8s.io Table. */
export function toTable(def: KindDefinition, objects: ResourceObject[], opts: TableOptions = {}): Table {
  const version = opts.version ?? 'v1';
  return {
    kind: 'Table',
    apiVersion: `${META_GROUP}/${version}`,
    metadata: {
      ...(opts.resourceVersion !== undefined ? { resourceVersion: opts.resourceVersion } : {}),
      ...(opts.continue ? { continue: opts.continue } : {}),
      ...(opts.remainingItemCount !== undefined ? { remainingItemCount: opts.remainingItemCount } : {}),
    },
    ...(opts.noHeaders ? {} : { columnDefinitions: columnDefinitions(def) }),
    rows: objects.map((o) => tableRow(def, o, opts.include ?? 'Metadata', version)),
  };
}

import { useEffect, useState } from 'preact/hooks';

import { type Api, collectionPath, type KindInfo, type Obj, objectPath, ready } from '../api';
import { type Live, useLiveList } from '../live';

import { ago, ErrorNote, kindRef, objectHref, ReadyBadge, SKIFF } from './common';

function findKind(kinds: KindInfo[], ref: string | undefined): KindInfo | undefined {
  if (!ref) return kinds.find((k) => k.group === SKIFF && k.plural === 'functions');
  return kinds.find((k) => kindRef(k) === ref);
}

/** Skiff's own kinds first, then the others by group. */
function ordered(kinds: KindInfo[]): KindInfo[] {
  const rank = (k: KindInfo) => (k.group === SKIFF ? 0 : k.group === '' ? 1 : 2);
  return [...kinds].sort((a, b) => rank(a) - rank(b) || a.group.localeCompare(b.group) || a.kind.localeCompare(b.kind));
}

export function ResourcesView(props: { api: Api; live: Live; kinds: KindInfo[]; path: string[] }) {
  const [ref, ns, name] = props.path;
  const kind = findKind(props.kinds, ref);
  return (
    <div class="split">
      <nav class="kinds" aria-label="Kinds">
        <ul>
          {ordered(props.kinds).map((k) => (
            <li>
              <a href={`#/resources/${kindRef(k)}`} aria-current={k === kind ? 'page' : undefined} title={`${k.kind} (${k.group || 'core'}/${k.version})`}>
                {k.kind}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <div class="pane">
        {!kind ? <p class="quiet">{props.kinds.length ? `The API serves no ${ref}.` : 'Loading kinds…'}</p> : name ? <Detail api={props.api} live={props.live} kind={kind} ns={ns === '-' ? undefined : ns} name={name} /> : <List api={props.api} live={props.live} kind={kind} />}
      </div>
    </div>
  );
}

function List(props: { api: Api; live: Live; kind: KindInfo }) {
  const { items, error, loaded } = useLiveList(props.api, props.live, kindRef(props.kind), collectionPath(props.kind));
  const [filter, setFilter] = useState('');
  const shown = items.filter((o) => !filter || o.metadata.name.includes(filter) || (o.metadata.namespace ?? '').includes(filter));
  const functions = props.kind.group === SKIFF && props.kind.plural === 'functions';
  return (
    <>
      <h1>{props.kind.kind}</h1>
      <label class="filter">
        Filter <input type="search" value={filter} onInput={(e) => setFilter((e.target as HTMLInputElement).value)} />
      </label>
      <ErrorNote error={error} />
      {loaded && !shown.length ? (
        <p class="quiet">None.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>Name</th>
              {props.kind.namespaced && <th>Namespace</th>}
              <th>Ready</th>
              <th>Reason</th>
              {functions && <th class="num">Replicas</th>}
              {functions && <th>Scaling</th>}
              <th>Age</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((o) => (
              <tr>
                <td>
                  <a href={objectHref(props.kind, o)}>{o.metadata.name}</a>
                </td>
                {props.kind.namespaced && <td>{o.metadata.namespace}</td>}
                <td>
                  <ReadyBadge o={o} />
                </td>
                <td>{ready(o)?.reason ?? ''}</td>
                {functions && <td class="num">{replicasText(o)}</td>}
                {functions && <td>{scalingText(o)}</td>}
                <td>{ago(o.metadata.creationTimestamp)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

function Detail(props: { api: Api; live: Live; kind: KindInfo; ns?: string; name: string }) {
  const { api, live, kind, ns, name } = props;
  const [obj, setObj] = useState<Obj>();
  const [error, setError] = useState<string>();
  // The object itself, read again when its kind changes, so conditions update live.
  const watched = useLiveList(api, live, kindRef(kind), collectionPath(kind, ns), `metadata.name=${name}`);
  useEffect(() => {
    setObj(undefined);
    api.json<Obj>(objectPath(kind, ns, name)).then(setObj, (e: Error) => setError(e.message));
  }, [api, kind, ns, name]);
  const current = watched.items[0] ?? obj;
  const events = useLiveList(api, live, 'events', ns ? `/api/v1/namespaces/${encodeURIComponent(ns)}/events` : '/api/v1/events', `involvedObject.name=${name},involvedObject.kind=${kind.kind}`);
  const full = ns ? `${ns}/${name}` : name;
  const [yaml, setYaml] = useState<string>();
  useEffect(() => {
    if (!current) return;
    // The YAML printer is loaded when an object is first shown, not with the page.
    void import('yaml').then(({ stringify }) => setYaml(stringify(withoutManagedFields(current))));
  }, [current]);
  return (
    <>
      <p class="crumbs">
        <a href={`#/resources/${kindRef(kind)}`}>{kind.kind}</a> / {full}
      </p>
      <h1>
        {name} {current && <ReadyBadge o={current} />}
      </h1>
      {kind.group === SKIFF && (kind.plural === 'functions' || kind.plural === 'routes') && (
        <p class="actions">
          <a href={`#/traffic/${kind.plural === 'functions' ? 'function' : 'route'}/${ns ?? 'default'}/${name}`}>Traffic charts</a>
          {kind.plural === 'functions' && <a href={`#/logs/${ns ?? 'default'}/${name}`}>Logs</a>}
        </p>
      )}
      <ErrorNote error={error} />
      <section aria-labelledby="cond">
        <h2 id="cond">Conditions</h2>
        {current?.status?.conditions?.length ? (
          <table>
            <thead>
              <tr>
                <th>Type</th>
                <th>Status</th>
                <th>Reason</th>
                <th>Message</th>
                <th>Since</th>
              </tr>
            </thead>
            <tbody>
              {current.status.conditions.map((c) => (
                <tr class={c.status === 'False' ? 'warn' : ''}>
                  <td>{c.type}</td>
                  <td>{c.status}</td>
                  <td>{c.reason}</td>
                  <td class="msg">{c.message}</td>
                  <td>{ago(c.lastTransitionTime)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : (
          <p class="quiet">No conditions.</p>
        )}
      </section>
      <section aria-labelledby="evts">
        <h2 id="evts">Events</h2>
        {events.items.length ? (
          <table>
            <thead>
              <tr>
                <th>Age</th>
                <th>Type</th>
                <th>Reason</th>
                <th>Count</th>
                <th>Message</th>
              </tr>
            </thead>
            <tbody>
              {[...events.items]
                .sort((a, b) => String(b.lastTimestamp ?? '').localeCompare(String(a.lastTimestamp ?? '')))
                .map((e) => (
                  <tr class={e.type === 'Warning' ? 'warn' : ''}>
                    <td>{ago(String(e.lastTimestamp ?? ''))}</td>
                    <td>{String(e.type ?? '')}</td>
                    <td>{String(e.reason ?? '')}</td>
                    <td>{String(e.count ?? 1)}</td>
                    <td class="msg">{String(e.message ?? '')}</td>
                  </tr>
                ))}
            </tbody>
          </table>
        ) : (
          <p class="quiet">No events.</p>
        )}
      </section>
      <section aria-labelledby="yaml">
        <h2 id="yaml">YAML</h2>
        <pre class="yaml" tabIndex={0}>
          {yaml ?? '…'}
        </pre>
      </section>
    </>
  );
}

/** replicasText is a Function's `ready/desired` from its status, as `kubectl get` shows a Deployment's READY. */
function replicasText(o: Obj): string {
  const st = o.status as { readyReplicas?: number; desiredReplicas?: number; replicas?: number } | undefined;
  const desired = st?.desiredReplicas ?? (typeof o.spec?.replicas === 'number' ? o.spec.replicas : undefined);
  if (desired === undefined && st?.replicas === undefined) return '';
  return `${st?.readyReplicas ?? 0}/${desired ?? st?.replicas ?? 0}`;
}

/** scalingText is why the autoscaler chose that many (its last reason), with panic called out. */
function scalingText(o: Obj): string {
  const a = (o.status as { autoscaler?: { reason?: string; panic?: boolean } } | undefined)?.autoscaler;
  if (!a?.reason) return '';
  return a.panic && a.reason !== 'panic' ? `${a.reason} (panic)` : a.reason;
}

/** As `kubectl get -o yaml` shows it by default: managedFields are bookkeeping, not the object. */
function withoutManagedFields(o: Obj): Obj {
  const { managedFields: _m, ...metadata } = o.metadata as Obj['metadata'] & { managedFields?: unknown };
  return { ...o, metadata };
}

import { useEffect, useState } from 'preact/hooks';

import { type Api, fullName, type KindInfo, type Obj, ready } from '../api';
import { type Live, useLiveList } from '../live';

import { ago, ErrorNote, formatMs, objectHref, ReadyBadge, SKIFF } from './common';

const MAIN_KINDS = [
  { plural: 'functions', label: 'Functions' },
  { plural: 'routes', label: 'Routes' },
  { plural: 'services', label: 'Services' },
  { plural: 'policies', label: 'Policies' },
];

function KindCard(props: { api: Api; live: Live; plural: string; label: string; onNotReady: (plural: string, items: Obj[]) => void }) {
  const { items, error, loaded } = useLiveList(props.api, props.live, `${props.plural}.${SKIFF}`, `/apis/${SKIFF}/v1/${props.plural}`);
  const notReady = items.filter((o) => ready(o) && ready(o)!.status !== 'True');
  useEffect(() => props.onNotReady(props.plural, notReady), [items]);
  return (
    <a class="card" href={`#/resources/${props.plural}.${SKIFF}`}>
      <span class="count">{loaded ? items.length : '…'}</span>
      <span class="label">{props.label}</span>
      <span class={notReady.length ? 'sub bad' : 'sub'}>{error ? 'unavailable' : notReady.length ? `${notReady.length} not Ready` : 'all Ready'}</span>
    </a>
  );
}

export function Overview(props: { api: Api; live: Live; kinds: KindInfo[] }) {
  const [notReady, setNotReady] = useState<Record<string, Obj[]>>({});
  const [, setTick] = useState(0);
  useEffect(() => props.live.onTick((t) => setTick(t.t)), [props.live]);
  const events = useLiveList(props.api, props.live, 'events', '/api/v1/events');
  const recent = [...events.items].sort((a, b) => String(b.lastTimestamp ?? '').localeCompare(String(a.lastTimestamp ?? ''))).slice(0, 12);
  const traffic = [...props.live.latest.values()].sort((a, b) => b[1] - a[1]);
  const broken = Object.entries(notReady).flatMap(([plural, list]) => list.map((o) => ({ plural, o })));
  return (
    <>
      <h1>Overview</h1>
      <section class="cards" aria-label="What runs">
        {MAIN_KINDS.map((k) => (
          <KindCard api={props.api} live={props.live} plural={k.plural} label={k.label} onNotReady={(p, items) => setNotReady((s) => ({ ...s, [p]: items }))} />
        ))}
      </section>
      <section aria-labelledby="nr">
        <h2 id="nr">Not Ready</h2>
        {broken.length === 0 ? (
          <p class="quiet">Everything reports Ready.</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th>Kind</th>
                <th>Name</th>
                <th>Ready</th>
                <th>Reason</th>
                <th>Message</th>
              </tr>
            </thead>
            <tbody>
              {broken.map(({ plural, o }) => (
                <tr>
                  <td>{o.kind}</td>
                  <td>
                    <a href={objectHref({ plural, group: SKIFF }, o)}>{fullName(o)}</a>
                  </td>
                  <td>
                    <ReadyBadge o={o} />
                  </td>
                  <td>{ready(o)?.reason}</td>
                  <td class="msg">{ready(o)?.message}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <section aria-labelledby="tr">
        <h2 id="tr">Traffic now</h2>
        {traffic.length === 0 ? (
          <p class="quiet">No requests in the last second. Try <code>curl http://127.0.0.1:8080/hello</code>.</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th>Series</th>
                <th class="num">req/s</th>
                <th class="num">errors</th>
                <th class="num">p99</th>
              </tr>
            </thead>
            <tbody>
              {traffic.map(([key, rps, err, , p99]) => (
                <tr>
                  <td>
                    <a href={`#/traffic/${key.replace(':', '/')}`}>{key.replace(':', ' ')}</a>
                  </td>
                  <td class="num">{rps.toFixed(1)}</td>
                  <td class="num">{(err * 100).toFixed(1)}%</td>
                  <td class="num">{formatMs(p99)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <section aria-labelledby="ev">
        <h2 id="ev">Recent events</h2>
        <ErrorNote error={events.error} />
        <table>
          <thead>
            <tr>
              <th>Age</th>
              <th>Type</th>
              <th>Object</th>
              <th>Reason</th>
              <th>Message</th>
            </tr>
          </thead>
          <tbody>
            {recent.map((e) => {
              const io = e.involvedObject as { kind?: string; name?: string; namespace?: string } | undefined;
              return (
                <tr class={e.type === 'Warning' ? 'warn' : ''}>
                  <td>{ago(String(e.lastTimestamp ?? ''))}</td>
                  <td>{String(e.type ?? '')}</td>
                  <td>
                    {io?.kind} {io?.namespace ? `${io.namespace}/` : ''}
                    {io?.name}
                  </td>
                  <td>{String(e.reason ?? '')}</td>
                  <td class="msg">{String(e.message ?? '')}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </section>
    </>
  );
}

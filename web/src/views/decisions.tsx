import { useEffect, useState } from 'preact/hooks';

import { type Api } from '../api';
import { type Live, type RecentDecision } from '../live';

import { ErrorNote } from './common';

const KEEP = 200;

export function DecisionsView(props: { api: Api; live: Live }) {
  const [items, setItems] = useState<RecentDecision[]>([]);
  const [error, setError] = useState<string>();
  const [open, setOpen] = useState<number>();
  const [only, setOnly] = useState<'all' | 'denied'>('all');
  useEffect(() => {
    const early: RecentDecision[] = [];
    let loaded = false;
    const off = props.live.onDecision((d) => (loaded ? setItems((old) => [d, ...old.filter((x) => x.id !== d.id)].slice(0, KEEP)) : early.push(d)));
    props.api.json<{ items: RecentDecision[] }>('/ui/api/decisions').then(
      (r) => {
        loaded = true;
        const seen = new Set(r.items.map((d) => d.id));
        setItems([...early.filter((d) => !seen.has(d.id)).reverse(), ...r.items].slice(0, KEEP));
      },
      (e: Error) => setError(e.message),
    );
    return off;
  }, [props.api, props.live]);
  const shown = only === 'denied' ? items.filter((d) => !d.allowed) : items;
  return (
    <>
      <h1>Policy decisions</h1>
      <p class="quiet">Gateway authorization decisions and admission violations, newest first, with their inputs (credentials and Secret values masked).</p>
      <fieldset class="segmented">
        <legend>Show</legend>
        <label>
          <input type="radio" name="only" checked={only === 'all'} onChange={() => setOnly('all')} /> all
        </label>
        <label>
          <input type="radio" name="only" checked={only === 'denied'} onChange={() => setOnly('denied')} /> denied only
        </label>
      </fieldset>
      <ErrorNote error={error} />
      {shown.length === 0 ? (
        <p class="quiet">No decisions yet. They appear when a Route with an authz filter serves a request or admission refuses or warns about an object.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>Time</th>
              <th>Source</th>
              <th>Policy / object</th>
              <th>Result</th>
              <th>Why</th>
              <th>Input</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((d) => (
              <>
                <tr class={d.allowed ? '' : 'warn'}>
                  <td>{d.time.slice(11, 19)}</td>
                  <td>{d.source}</td>
                  <td>{d.policy}</td>
                  <td>
                    <span class={`badge ${d.allowed ? 'ok' : 'bad'}`}>{d.allowed ? 'allowed' : 'denied'}</span>
                  </td>
                  <td class="msg">{d.messages.join('; ')}</td>
                  <td>
                    <button class="link" aria-expanded={open === d.id} onClick={() => setOpen(open === d.id ? undefined : d.id)}>
                      {open === d.id ? 'hide' : 'show'}
                    </button>
                  </td>
                </tr>
                {open === d.id && (
                  <tr>
                    <td colSpan={6}>
                      <pre class="yaml" tabIndex={0}>
                        {JSON.stringify(d.input, null, 2)}
                      </pre>
                      {d.erased.length > 0 && <p class="quiet">Masked: {d.erased.join(', ')}</p>}
                    </td>
                  </tr>
                )}
              </>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

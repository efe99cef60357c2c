import { useEffect, useRef, useState } from 'preact/hooks';

import { type Api, fullName, type KindInfo } from '../api';
import { type Live, useLiveList } from '../live';

import { ErrorNote, SKIFF } from './common';

/** Lines kept on the page; older ones scroll away. */
const MAX_LINES = 2000;

export function LogsView(props: { api: Api; live: Live; kinds: KindInfo[]; path: string[] }) {
  const [ns, name] = props.path;
  const fns = useLiveList(props.api, props.live, `functions.${SKIFF}`, `/apis/${SKIFF}/v1/functions`);
  return (
    <div class="split">
      <nav class="kinds" aria-label="Functions">
        <ul>
          {fns.items.map((f) => (
            <li>
              <a href={`#/logs/${f.metadata.namespace}/${f.metadata.name}`} aria-current={f.metadata.namespace === ns && f.metadata.name === name ? 'page' : undefined}>
                {fullName(f)}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <div class="pane">{ns && name ? <Follow api={props.api} ns={ns} name={name} /> : (
          <>
            <h1>Logs</h1>
            <p class="quiet">Choose a Function to follow its log.</p>
          </>
        )}</div>
    </div>
  );
}

function Follow(props: { api: Api; ns: string; name: string }) {
  const [lines, setLines] = useState<string[]>([]);
  const [error, setError] = useState<string>();
  const [follow, setFollow] = useState(true);
  const [state, setState] = useState('connecting');
  const pre = useRef<HTMLPreElement>(null);
  useEffect(() => {
    setLines([]);
    setError(undefined);
    const abort = new AbortController();
    let buf: string[] = [];
    let frame = 0;
    // Lines arriving in a burst are added once per animation frame.
    const flush = () => {
      frame = 0;
      const add = buf;
      buf = [];
      setLines((old) => {
        const next = old.concat(add);
        return next.length > MAX_LINES ? next.slice(next.length - MAX_LINES) : next;
      });
    };
    const path = `/apis/${SKIFF}/v1/namespaces/${encodeURIComponent(props.ns)}/functions/${encodeURIComponent(props.name)}/log?follow=true&tailLines=200`;
    setState('following');
    props.api
      .lines(path, abort.signal, (l) => {
        buf.push(l);
        if (!frame) frame = requestAnimationFrame(flush);
      })
      .then(
        () => setState('ended'),
        (e: Error) => {
          if (!abort.signal.aborted) {
            setError(e.message);
            setState('ended');
          }
        },
      );
    return () => {
      abort.abort();
      cancelAnimationFrame(frame);
    };
  }, [props.api, props.ns, props.name]);
  useEffect(() => {
    if (follow && pre.current) pre.current.scrollTop = pre.current.scrollHeight;
  }, [lines, follow]);
  return (
    <>
      <h1>
        Logs of {props.ns}/{props.name}
      </h1>
      <p class="actions">
        <label>
          <input type="checkbox" checked={follow} onChange={(e) => setFollow((e.target as HTMLInputElement).checked)} /> Follow (scroll to new lines)
        </label>
        <span class="quiet" aria-live="polite">
          {state === 'following' ? 'live' : state}
        </span>
      </p>
      <ErrorNote error={error} />
      <pre class="log" ref={pre} tabIndex={0} aria-label="Log lines" data-testid="log">
        {lines.length ? lines.join('\n') : 'No lines yet: the function writes here when it logs to stderr.'}
      </pre>
    </>
  );
}

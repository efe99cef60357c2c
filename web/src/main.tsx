import { render } from 'preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';

import { Api, discoverKinds, forgetToken, type KindInfo, readToken, saveToken } from './api';
import { Live } from './live';
import { DecisionsView } from './views/decisions';
import { GraphView } from './views/graph';
import { LogsView } from './views/logs';
import { Overview } from './views/overview';
import { ResourcesView } from './views/resources';
import { TrafficView } from './views/traffic';

import './style.css';

/** The main views, their keyboard shortcuts and where they live in the address (`#/NAME/...`). */
const VIEWS = [
  { id: 'overview', label: 'Overview', key: 'o' },
  { id: 'resources', label: 'Resources', key: 'r' },
  { id: 'traffic', label: 'Traffic', key: 't' },
  { id: 'logs', label: 'Logs', key: 'l' },
  { id: 'decisions', label: 'Decisions', key: 'd' },
  { id: 'graph', label: 'Route graph', key: 'g' },
] as const;

function useHash(): string[] {
  const parse = () => location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  const [parts, setParts] = useState(parse);
  useEffect(() => {
    const on = () => setParts(parse());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return parts;
}

function Login(props: { onToken: (t: string) => void; refused: boolean }) {
  const [value, setValue] = useState('');
  return (
    <main class="login" id="main">
      <h1>Skiff</h1>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (value.trim()) props.onToken(value.trim());
        }}
      >
        <label for="token">API token</label>
        <p class="hint">
          The token is in <code>DATA_DIR/token</code> (<code>cat .skiff/token</code>). It is kept for this tab only.
        </p>
        {props.refused && <p class="error" role="alert">The server refused that token.</p>}
        <input id="token" name="token" type="password" autocomplete="off" autofocus value={value} onInput={(e) => setValue((e.target as HTMLInputElement).value)} />
        <button type="submit">Open the dashboard</button>
      </form>
    </main>
  );
}

function App() {
  const [token, setToken] = useState<string | null>(() => readToken());
  const [refused, setRefused] = useState(false);
  // A 401 logs out only if it answers the token in use: requests of a refused token may still be in
  // flight when the next one is entered, and their late 401s must not log that one out.
  const current = useRef(token);
  current.current = token;
  const api = useMemo(
    () =>
      token
        ? new Api(token, () => {
            if (current.current !== token) return;
            forgetToken();
            setRefused(true);
            setToken(null);
          })
        : undefined,
    [token],
  );
  const live = useMemo(() => (api ? new Live(api) : undefined), [api]);
  const [kinds, setKinds] = useState<KindInfo[]>([]);
  const [help, setHelp] = useState(false);
  const parts = useHash();
  const view = VIEWS.find((v) => v.id === parts[0])?.id ?? 'overview';

  useEffect(() => {
    if (!live) return;
    live.start();
    return () => live.stop();
  }, [live]);
  useEffect(() => {
    if (api) discoverKinds(api).then(setKinds, () => undefined);
  }, [api]);
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      const t = e.target as HTMLElement;
      if (t.closest('input, textarea, select, [contenteditable]')) return;
      if (e.key === '?') return setHelp((h) => !h);
      if (e.key === 'Escape') return setHelp(false);
      const v = VIEWS.find((x) => x.key === e.key);
      if (v) {
        e.preventDefault();
        location.hash = `#/${v.id}`;
        requestAnimationFrame(() => document.getElementById('main')?.focus());
      }
    };
    addEventListener('keydown', onKey);
    return () => removeEventListener('keydown', onKey);
  }, []);

  if (!api || !live)
    return (
      <Login
        refused={refused}
        onToken={(t) => {
          saveToken(t);
          setRefused(false);
          setToken(t);
        }}
      />
    );

  return (
    <>
      <a class="skip" href="#main" onClick={(e) => (e.preventDefault(), document.getElementById('main')?.focus())}>
        Skip to content
      </a>
      <header>
        <span class="brand">Skiff</span>
        <nav aria-label="Views">
          {VIEWS.map((v) => (
            <a href={`#/${v.id}`} aria-current={v.id === view ? 'page' : undefined} aria-keyshortcuts={v.key} title={`${v.label} (${v.key})`}>
              {v.label}
            </a>
          ))}
        </nav>
        <button class="link" onClick={() => setHelp((h) => !h)} aria-expanded={help}>
          Keys (?)
        </button>
        <button
          class="link"
          onClick={() => {
            forgetToken();
            setToken(null);
          }}
        >
          Log out
        </button>
      </header>
      {help && (
        <aside class="help" aria-label="Keyboard shortcuts">
          <ul>
            {VIEWS.map((v) => (
              <li>
                <kbd>{v.key}</kbd> {v.label}
              </li>
            ))}
            <li>
              <kbd>?</kbd> this list, <kbd>Tab</kbd> moves through links and buttons
            </li>
          </ul>
        </aside>
      )}
      <main id="main" tabIndex={-1}>
        {view === 'overview' && <Overview api={api} live={live} kinds={kinds} />}
        {view === 'resources' && <ResourcesView api={api} live={live} kinds={kinds} path={parts.slice(1)} />}
        {view === 'traffic' && <TrafficView api={api} live={live} path={parts.slice(1)} />}
        {view === 'logs' && <LogsView api={api} live={live} kinds={kinds} path={parts.slice(1)} />}
        {view === 'decisions' && <DecisionsView api={api} live={live} />}
        {view === 'graph' && <GraphView api={api} live={live} />}
      </main>
    </>
  );
}

const root = document.getElementById('app')!;
root.textContent = '';
render(<App />, root);

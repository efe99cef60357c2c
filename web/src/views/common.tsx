import { type KindInfo, type Obj, ready } from '../api';

export const SKIFF = 'skiff.dev';

/** kindRef is how a kind appears in the address: `PLURAL.GROUP` (core kinds: `PLURAL`). */
export function kindRef(k: Pick<KindInfo, 'plural' | 'group'>): string {
  return k.group ? `${k.plural}.${k.group}` : k.plural;
}

export function objectHref(k: Pick<KindInfo, 'plural' | 'group'>, o: Obj): string {
  return `#/resources/${kindRef(k)}/${encodeURIComponent(o.metadata.namespace ?? '-')}/${encodeURIComponent(o.metadata.name)}`;
}

export function ReadyBadge(props: { o: Obj }) {
  const c = ready(props.o);
  if (!c) return <span class="badge none">—</span>;
  const cls = c.status === 'True' ? 'ok' : c.status === 'False' ? 'bad' : 'wait';
  return (
    <span class={`badge ${cls}`} title={c.message}>
      {c.status === 'True' ? 'Ready' : c.status === 'False' ? 'Not Ready' : 'Unknown'}
    </span>
  );
}

export function ago(iso?: string): string {
  if (!iso) return '';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m` : s < 86400 ? `${Math.floor(s / 3600)}h` : `${Math.floor(s / 86400)}d`;
}

export function formatMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '–';
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : ms >= 1 ? `${Math.round(ms)} ms` : `${Math.round(ms * 1000)} µs`;
}

export function ErrorNote(props: { error?: string }) {
  return props.error ? (
    <p class="error" role="alert">
      {props.error}
    </p>
  ) : null;
}

import { useEffect, useRef, useState } from 'preact/hooks';
import type uPlot from 'uplot';

import { type Api } from '../api';
import { type Live, type Tick } from '../live';

import { ErrorNote, formatMs } from './common';

import 'uplot/dist/uPlot.min.css';

interface SeriesHistory {
  key: string;
  kind: 'route' | 'function';
  name: string;
  t: number[];
  rps: number[];
  errorRate: number[];
  p50Ms: (number | null)[];
  p99Ms: (number | null)[];
}

const HOUR = 3600;

/**
 * Columns is the chart data of one series, kept as plain arrays that uPlot reads directly: a tick appends
 * and trims, and the charts redraw at most once per animation frame however fast ticks arrive.
 */
class Columns {
  t: number[] = [];
  rps: number[] = [];
  err: number[] = [];
  p50: (number | null)[] = [];
  p99: (number | null)[] = [];

  static from(h: SeriesHistory): Columns {
    const c = new Columns();
    c.t = h.t.slice();
    c.rps = h.rps.slice();
    c.err = h.errorRate.map((e) => e * 100);
    c.p50 = h.p50Ms.slice();
    c.p99 = h.p99Ms.slice();
    return c;
  }

  add(t: number, p: Tick['points'][number] | undefined): void {
    this.t.push(t);
    this.rps.push(p ? p[1] : 0);
    this.err.push(p ? p[2] * 100 : 0);
    this.p50.push(p ? p[3] : null);
    this.p99.push(p ? p[4] : null);
    let drop = 0;
    while (drop < this.t.length && this.t[drop]! < t - HOUR) drop++;
    if (drop) for (const col of [this.t, this.rps, this.err, this.p50, this.p99]) col.splice(0, drop);
  }
}

function Chart(props: { title: string; data: () => uPlot.AlignedData; series: { label: string; stroke: string; unit: string }[]; version: number }) {
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | undefined>(undefined);
  useEffect(() => {
    const el = host.current!;
    const width = () => Math.max(320, el.clientWidth);
    let gone = false;
    let ro: ResizeObserver | undefined;
    // uPlot is loaded with the first chart, so the rest of the page paints without waiting for it.
    void import('uplot').then(({ default: UPlot }) => {
      if (gone) return;
      const u = new UPlot(
        {
          width: width(),
          height: 180,
          cursor: { drag: { x: false, y: false } },
          scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
          axes: [{ stroke: '#667' }, { stroke: '#667', size: 60 }],
          series: [{}, ...props.series.map((s) => ({ label: s.label, stroke: s.stroke, width: 1.5, spanGaps: false, value: (_u: uPlot, v: number | null) => (v === null ? '–' : `${v.toFixed(s.unit === 'ms' ? 2 : 1)} ${s.unit}`) }))],
        },
        props.data(),
        el,
      );
      plot.current = u;
      ro = new ResizeObserver(() => u.setSize({ width: width(), height: 180 }));
      ro.observe(el);
    });
    return () => {
      gone = true;
      ro?.disconnect();
      plot.current?.destroy();
      plot.current = undefined;
    };
  }, []);
  useEffect(() => {
    plot.current?.setData(props.data());
  }, [props.version]);
  return (
    <figure class="chart">
      <figcaption>{props.title}</figcaption>
      <div ref={host} role="img" aria-label={props.title} />
    </figure>
  );
}

function SeriesCharts(props: { api: Api; live: Live; kind: string; name: string }) {
  const key = `${props.kind}:${props.name}`;
  const cols = useRef(new Columns());
  const [version, setVersion] = useState(0);
  const [error, setError] = useState<string>();
  const [loaded, setLoaded] = useState(false);
  useEffect(() => {
    let frame = 0;
    let ready = false;
    const pending: Tick[] = [];
    // Redraws are batched per animation frame, so many ticks a second cost one draw each frame.
    const redraw = () => {
      if (!frame) frame = requestAnimationFrame(() => ((frame = 0), setVersion((v) => v + 1)));
    };
    const off = props.live.onTick((t) => {
      if (!ready) return void pending.push(t);
      cols.current.add(t.t, t.points.find((p) => p[0] === key));
      redraw();
    });
    props.api.json<{ series: SeriesHistory[] }>(`/ui/api/samples?key=${encodeURIComponent(key)}`).then(
      (r) => {
        const h = r.series[0];
        cols.current = h ? Columns.from(h) : new Columns();
        const last = cols.current.t[cols.current.t.length - 1] ?? 0;
        for (const t of pending) if (t.t > last) cols.current.add(t.t, t.points.find((p) => p[0] === key));
        ready = true;
        setLoaded(true);
        redraw();
      },
      (e: Error) => setError(e.message),
    );
    return () => {
      off();
      cancelAnimationFrame(frame);
    };
  }, [key]);
  const c = cols.current;
  const n = c.t.length;
  return (
    <>
      <h1>
        {props.kind === 'function' ? 'Function' : 'Route'} {props.name}
      </h1>
      <p class="actions">
        <a href={`#/resources/${props.kind === 'function' ? 'functions' : 'routes'}.skiff.dev/${props.name}`}>Resource</a>
        {props.kind === 'function' && <a href={`#/logs/${props.name}`}>Logs</a>}
      </p>
      <ErrorNote error={error} />
      <p class="stats" aria-live="polite" data-testid="current-rps">
        now: <strong>{n ? c.rps[n - 1]!.toFixed(1) : '0.0'}</strong> req/s · errors {n ? c.err[n - 1]!.toFixed(1) : '0.0'}% · p50 {formatMs(c.p50[n - 1])} · p99 {formatMs(c.p99[n - 1])} · peak{' '}
        <span data-testid="peak-rps">{c.rps.reduce((a, b) => Math.max(a, b), 0).toFixed(1)}</span> req/s
      </p>
      {loaded && (
        <div class="charts" data-points={n}>
          <Chart title="Requests per second" version={version} data={() => [c.t, c.rps]} series={[{ label: 'req/s', stroke: '#2f6fb3', unit: 'req/s' }]} />
          <Chart title="Error rate (5xx)" version={version} data={() => [c.t, c.err]} series={[{ label: 'errors', stroke: '#c0392b', unit: '%' }]} />
          <Chart
            title="Latency"
            version={version}
            data={() => [c.t, c.p50, c.p99] as uPlot.AlignedData}
            series={[
              { label: 'p50', stroke: '#3a8f5c', unit: 'ms' },
              { label: 'p99', stroke: '#b7791f', unit: 'ms' },
            ]}
          />
        </div>
      )}
    </>
  );
}

export function TrafficView(props: { api: Api; live: Live; path: string[] }) {
  const [kind, ns, name] = props.path;
  if (kind && ns && name) return <SeriesCharts api={props.api} live={props.live} kind={kind} name={`${ns}/${name}`} />;
  return <TrafficList api={props.api} live={props.live} />;
}

function TrafficList(props: { api: Api; live: Live }) {
  const [rows, setRows] = useState<{ key: string; kind: string; name: string; rps: number; errors: number; p99Ms: number | null }[]>([]);
  const [error, setError] = useState<string>();
  useEffect(() => {
    let busy = false;
    const load = () => {
      if (busy) return;
      busy = true;
      props.api
        .json<{ series: { kind: string; name: string; rps: number; errors: number; p99Ms: number | null }[] }>('/ui/api/top')
        .then((r) => setRows(r.series.map((s) => ({ ...s, key: `${s.kind}:${s.name}` }))), (e: Error) => setError(e.message))
        .finally(() => (busy = false));
    };
    load();
    // Refreshed when the server says a new interval is in, not on a timer of the page's own.
    return props.live.onTick(load);
  }, [props.api, props.live]);
  return (
    <>
      <h1>Traffic</h1>
      <p class="quiet">Rates over the last ten seconds; choose a series for its charts over the last hour.</p>
      <ErrorNote error={error} />
      <table>
        <thead>
          <tr>
            <th>Kind</th>
            <th>Name</th>
            <th class="num">req/s</th>
            <th class="num">errors</th>
            <th class="num">p99</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr>
              <td>{r.kind}</td>
              <td>
                <a href={`#/traffic/${r.kind}/${r.name}`}>{r.name}</a>
              </td>
              <td class="num">{r.rps.toFixed(1)}</td>
              <td class="num">{r.errors}</td>
              <td class="num">{formatMs(r.p99Ms)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

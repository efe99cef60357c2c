import { useEffect, useRef, useState } from 'preact/hooks';
import type uPlot from 'uplot';

import { type Api } from '../api';
import { type Live, type ReplicaPoint, type Tick } from '../live';

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
  /** With the autoscaler wired in, a Function's scaling per interval (null: not reported then). */
  desired?: (number | null)[];
  ready?: (number | null)[];
  panic?: (0 | 1 | null)[];
  coldStarts?: (number | null)[];
  forecastRate?: (number | null)[];
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
  /** Whether the server reports this series' replicas (a Function, with the autoscaler wired in). */
  scaled = false;
  desired: (number | null)[] = [];
  ready: (number | null)[] = [];
  panic: (0 | 1 | null)[] = [];
  /** Cold starts per interval, null where there were none, so the chart marks only the intervals that had some. */
  cold: (number | null)[] = [];

  static from(h: SeriesHistory): Columns {
    const c = new Columns();
    c.t = h.t.slice();
    c.rps = h.rps.slice();
    c.err = h.errorRate.map((e) => e * 100);
    c.p50 = h.p50Ms.slice();
    c.p99 = h.p99Ms.slice();
    if (h.desired && h.ready && h.panic && h.coldStarts) {
      c.scaled = true;
      c.desired = h.desired.slice();
      c.ready = h.ready.slice();
      c.panic = h.panic.slice();
      c.cold = h.coldStarts.map((n) => (n ? n : null));
    } else {
      c.desired = h.t.map(() => null);
      c.ready = h.t.map(() => null);
      c.panic = h.t.map(() => null);
      c.cold = h.t.map(() => null);
    }
    return c;
  }

  /** add appends one tick: `p` is this series' traffic if it had any; `replicas` the tick's scaling list if the server sends one. */
  add(t: number, p: Tick['points'][number] | undefined, replicas: ReplicaPoint[] | undefined, key: string): void {
    this.t.push(t);
    this.rps.push(p ? p[1] : 0);
    this.err.push(p ? p[2] * 100 : 0);
    this.p50.push(p ? p[3] : null);
    this.p99.push(p ? p[4] : null);
    const r = replicas?.find((x) => x[0] === key);
    if (r) this.scaled = true;
    this.desired.push(r ? r[1] : null);
    this.ready.push(r ? r[2] : null);
    this.panic.push(r ? r[3] : null);
    this.cold.push(r && r[4] ? r[4] : null);
    let drop = 0;
    while (drop < this.t.length && this.t[drop]! < t - HOUR) drop++;
    if (drop) for (const col of [this.t, this.rps, this.err, this.p50, this.p99, this.desired, this.ready, this.panic, this.cold]) col.splice(0, drop);
  }
}

interface ChartSeries {
  label: string;
  stroke: string;
  unit: string;
  /** Drawn as steps: the value holds over the interval that ends at its time (replica counts change in steps). */
  step?: boolean;
  dash?: number[];
  /** Points only, no line (events such as cold starts). */
  pointsOnly?: boolean;
}

/**
 * Chart is one uPlot chart over the series' time axis. Charts of one series share `sync`, so the cursor
 * moves on all of them at once; `shade` marks the intervals where it returns 1 (panic) behind the lines.
 */
function Chart(props: { title: string; data: () => uPlot.AlignedData; series: ChartSeries[]; version: number; sync?: string; shade?: () => (number | null)[]; note?: string; testId?: string }) {
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
      const stepped = UPlot.paths.stepped?.({ align: -1 });
      const u = new UPlot(
        {
          width: width(),
          height: 180,
          cursor: { drag: { x: false, y: false }, ...(props.sync ? { sync: { key: props.sync } } : {}) },
          scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
          // The same axis sizes on every chart, so charts stacked on one time axis line up.
          axes: [{ stroke: '#667' }, { stroke: '#667', size: 60 }],
          series: [
            {},
            ...props.series.map((s) => ({
              label: s.label,
              stroke: s.stroke,
              width: 1.5,
              spanGaps: false,
              ...(s.step && stepped ? { paths: stepped } : {}),
              ...(s.dash ? { dash: s.dash } : {}),
              ...(s.pointsOnly ? { paths: () => null, points: { show: true, size: 7, fill: s.stroke, stroke: s.stroke } } : {}),
              value: (_u: uPlot, v: number | null) => (v === null ? '–' : s.unit === '' ? String(v) : `${v.toFixed(s.unit === 'ms' ? 2 : 1)} ${s.unit}`),
            })),
          ],
          hooks: props.shade ? { drawClear: [(p: uPlot) => shadeIntervals(p, props.shade!())] } : {},
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
    <figure class="chart" data-testid={props.testId}>
      <figcaption>
        {props.title}
        {props.note && <span class="note"> {props.note}</span>}
      </figcaption>
      <div ref={host} role="img" aria-label={props.title} />
    </figure>
  );
}

/** shadeIntervals fills, behind the series, each interval whose flag is 1; a point's time is the end of its interval. */
function shadeIntervals(u: uPlot, flags: (number | null)[]): void {
  const t = u.data[0];
  const { ctx, bbox } = u;
  ctx.save();
  ctx.fillStyle = 'rgba(192, 57, 43, 0.16)';
  for (let i = 0; i < t.length; i++) {
    if (flags[i] !== 1) continue;
    const start = i > 0 ? t[i - 1]! : t[i]! - 1;
    const x0 = Math.max(bbox.left, u.valToPos(start, 'x', true));
    const x1 = Math.min(bbox.left + bbox.width, u.valToPos(t[i]!, 'x', true));
    if (x1 > x0) ctx.fillRect(x0, bbox.top, x1 - x0, bbox.height);
  }
  ctx.restore();
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
      cols.current.add(t.t, t.points.find((p) => p[0] === key), t.replicas, key);
      redraw();
    });
    props.api.json<{ series: SeriesHistory[] }>(`/ui/api/samples?key=${encodeURIComponent(key)}`).then(
      (r) => {
        const h = r.series[0];
        cols.current = h ? Columns.from(h) : new Columns();
        const last = cols.current.t[cols.current.t.length - 1] ?? 0;
        for (const t of pending) if (t.t > last) cols.current.add(t.t, t.points.find((p) => p[0] === key), t.replicas, key);
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
  const sync = `series:${key}`;
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
      {c.scaled && (
        <p class="stats" data-testid="current-replicas">
          replicas: <strong>{c.ready[n - 1] ?? '–'}</strong> ready of <strong>{c.desired[n - 1] ?? '–'}</strong> desired{c.panic[n - 1] === 1 && <span class="badge bad"> panic</span>} · cold starts in view{' '}
          <span data-testid="cold-starts">{c.cold.reduce<number>((a, b) => a + (b ?? 0), 0)}</span>
        </p>
      )}
      {loaded && (
        <div class="charts" data-points={n}>
          <Chart title="Requests per second" version={version} sync={sync} data={() => [c.t, c.rps]} series={[{ label: 'req/s', stroke: '#2f6fb3', unit: 'req/s' }]} />
          {c.scaled && (
            <Chart
              title="Replicas"
              note="(shaded: autoscaler in panic mode)"
              testId="replicas-chart"
              version={version}
              sync={sync}
              shade={() => c.panic}
              data={() => [c.t, c.ready, c.desired, c.cold] as uPlot.AlignedData}
              series={[
                { label: 'ready', stroke: '#2f6fb3', unit: '', step: true },
                { label: 'desired', stroke: '#667', unit: '', step: true, dash: [6, 4] },
                { label: 'cold starts', stroke: '#b7791f', unit: '', pointsOnly: true },
              ]}
            />
          )}
          <Chart title="Error rate (5xx)" version={version} sync={sync} data={() => [c.t, c.err]} series={[{ label: 'errors', stroke: '#c0392b', unit: '%' }]} />
          <Chart
            title="Latency"
            version={version}
            sync={sync}
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

interface TopRow {
  key: string;
  kind: string;
  name: string;
  rps: number;
  errors: number;
  p99Ms: number | null;
  /** Present for a Function once the autoscaler reports it. */
  ready?: number;
  desired?: number;
  panic?: boolean;
  reason?: string;
}

function TrafficList(props: { api: Api; live: Live }) {
  const [rows, setRows] = useState<TopRow[]>([]);
  const [error, setError] = useState<string>();
  useEffect(() => {
    let busy = false;
    const load = () => {
      if (busy) return;
      busy = true;
      props.api
        .json<{ series: Omit<TopRow, 'key'>[] }>('/ui/api/top')
        .then((r) => setRows(r.series.map((s) => ({ ...s, key: `${s.kind}:${s.name}` }))), (e: Error) => setError(e.message))
        .finally(() => (busy = false));
    };
    load();
    // Refreshed when the server says a new interval is in, not on a timer of the page's own.
    return props.live.onTick(load);
  }, [props.api, props.live]);
  const scaled = rows.some((r) => r.desired !== undefined);
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
            {scaled && <th class="num">replicas</th>}
            {scaled && <th>scaling</th>}
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
              {scaled && <td class="num">{r.desired === undefined ? '' : `${r.ready ?? 0}/${r.desired}`}</td>}
              {scaled && <td>{r.reason === undefined ? '' : r.panic && r.reason !== 'panic' ? `${r.reason} (panic)` : r.reason}</td>}
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

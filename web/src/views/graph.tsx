import { type Api, fullName, type Obj, ready } from '../api';
import { type Live, useLiveList } from '../live';

import { ErrorNote, SKIFF } from './common';

interface Node {
  id: string;
  label: string;
  sub?: string;
  col: number;
  row: number;
  href?: string;
  bad?: boolean;
}

interface Edge {
  from: string;
  to: string;
  label?: string;
}

type Dest = { function?: string; service?: string; namespace?: string; port?: unknown };
type Rule = { route?: { destination?: Dest; weight?: number }[]; filters?: Record<string, unknown>[]; redirect?: unknown; directResponse?: unknown };

const filterNames = (list: unknown): string[] => (Array.isArray(list) ? list.map((f) => Object.keys(f as object)[0] ?? '?') : []);

/** layout builds the four columns of the picture: hosts → routes → filter chains → destinations. */
function layout(routes: Obj[], fnReady: Map<string, boolean>): { nodes: Node[]; edges: Edge[] } {
  const nodes = new Map<string, Node>();
  const edges: Edge[] = [];
  const rows = [0, 0, 0, 0];
  const add = (n: Omit<Node, 'row'>) => {
    if (!nodes.has(n.id)) nodes.set(n.id, { ...n, row: rows[n.col]!++ });
    return n.id;
  };
  for (const r of routes) {
    const ns = r.metadata.namespace ?? 'default';
    const spec = r.spec ?? {};
    const routeId = add({ id: `route:${fullName(r)}`, label: fullName(r), sub: ready(r)?.status === 'False' ? ready(r)?.reason : undefined, col: 1, href: `#/traffic/route/${ns}/${r.metadata.name}`, bad: ready(r)?.status === 'False' });
    const hosts = Array.isArray(spec.hosts) && spec.hosts.length ? (spec.hosts as string[]) : ['*'];
    for (const h of hosts) edges.push({ from: add({ id: `host:${h}`, label: h, col: 0 }), to: routeId });
    const routeFilters = filterNames(spec.filters);
    const rules = Array.isArray(spec.http) ? (spec.http as Rule[]) : [];
    rules.forEach((rule, i) => {
      const chain = [...routeFilters, ...filterNames(rule.filters)];
      const chainId = add({ id: `filters:${fullName(r)}#${i}`, label: chain.length ? chain.join(' → ') : 'no filters', sub: rules.length > 1 ? `rule ${i + 1}` : undefined, col: 2 });
      edges.push({ from: routeId, to: chainId });
      const dests = rule.route ?? [];
      const total = dests.reduce((a, d) => a + (d.weight ?? 0), 0);
      for (const d of dests) {
        const dn = d.destination?.namespace ?? ns;
        const fn = d.destination?.function;
        const id = fn ? `fn:${dn}/${fn}` : `svc:${dn}/${d.destination?.service ?? '?'}`;
        const destId = add({ id, label: fn ? `${dn}/${fn}` : `${dn}/${d.destination?.service ?? '?'}`, sub: fn ? 'Function' : 'Service', col: 3, href: fn ? `#/traffic/function/${dn}/${fn}` : undefined, bad: fn ? fnReady.get(`${dn}/${fn}`) === false : false });
        const share = total > 0 ? Math.round(((d.weight ?? 0) / total) * 100) : Math.round(100 / dests.length);
        edges.push({ from: chainId, to: destId, label: `${share}%` });
      }
      if (!dests.length) edges.push({ from: chainId, to: add({ id: `fixed:${fullName(r)}#${i}`, label: rule.redirect ? 'redirect' : 'direct response', col: 3 }) });
    });
  }
  return { nodes: [...nodes.values()], edges };
}

const COL_W = 250;
const NODE_W = 200;
const NODE_H = 44;
const ROW_H = 64;
const HEADS = ['Hosts', 'Routes', 'Filters', 'Destinations'];

export function GraphView(props: { api: Api; live: Live }) {
  const routes = useLiveList(props.api, props.live, `routes.${SKIFF}`, `/apis/${SKIFF}/v1/routes`);
  const fns = useLiveList(props.api, props.live, `functions.${SKIFF}`, `/apis/${SKIFF}/v1/functions`);
  const fnReady = new Map(fns.items.map((f) => [fullName(f), ready(f)?.status === 'True']));
  const { nodes, edges } = layout(routes.items, fnReady);
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const rowsMax = Math.max(1, ...nodes.map((n) => n.row + 1));
  const width = COL_W * 3 + NODE_W + 20;
  const height = rowsMax * ROW_H + 40;
  const x = (n: Node) => 10 + n.col * COL_W;
  const y = (n: Node) => 36 + n.row * ROW_H;
  return (
    <>
      <h1>Route graph</h1>
      <p class="quiet">How a request finds its way: host → Route → filter chain → destinations, with the share of traffic each gets.</p>
      <ErrorNote error={routes.error} />
      {routes.loaded && !routes.items.length ? (
        <p class="quiet">No Routes yet.</p>
      ) : (
        <div class="graph">
          <svg viewBox={`0 0 ${width} ${height}`} width={width} height={height} role="img" aria-label={`Route graph: ${routes.items.length} routes`}>
            {HEADS.map((h, i) => (
              <text class="head" x={10 + i * COL_W} y={18}>
                {h}
              </text>
            ))}
            {edges.map((e) => {
              const a = byId.get(e.from)!;
              const b = byId.get(e.to)!;
              const x1 = x(a) + NODE_W;
              const y1 = y(a) + NODE_H / 2;
              const x2 = x(b);
              const y2 = y(b) + NODE_H / 2;
              const mx = (x1 + x2) / 2;
              return (
                <g class="edge">
                  <path d={`M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`} />
                  {e.label && (
                    <text x={mx} y={(y1 + y2) / 2 - 4} text-anchor="middle">
                      {e.label}
                    </text>
                  )}
                </g>
              );
            })}
            {nodes.map((n) => {
              const body = (
                <g class={`node col${n.col}${n.bad ? ' bad' : ''}`}>
                  <rect x={x(n)} y={y(n)} width={NODE_W} height={NODE_H} rx={6} />
                  <text x={x(n) + 10} y={y(n) + (n.sub ? 18 : 27)}>
                    {n.label.length > 28 ? n.label.slice(0, 27) + '…' : n.label}
                  </text>
                  {n.sub && (
                    <text class="sub" x={x(n) + 10} y={y(n) + 35}>
                      {n.sub}
                    </text>
                  )}
                </g>
              );
              return n.href ? <a href={n.href}>{body}</a> : body;
            })}
          </svg>
        </div>
      )}
    </>
  );
}

import type { Metric, Registry } from 'prom-client';

/** Labels of one series: every family declares its label names and each series sets all of them. */
export type Labels = Record<string, string>;

export type MetricKind = 'counter' | 'gauge' | 'histogram';

/**
 * LabelSet is one series' labels with their exposition text rendered once. Families keep the sets of
 * long-lived series (routes, upstreams) between scrapes, so a scrape of a thousand routes escapes
 * no label values again.
 */
export class LabelSet {
  /** `a="x",b="y"`: the text between the braces. */
  readonly inner: string;

  constructor(readonly labels: Labels) {
    this.inner = Object.entries(labels)
      .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
      .join(',');
  }
}

export const NO_LABELS = new LabelSet({});

/** SeriesWriter receives a family's series; the exporter renders them as text, prom-client's JSON gets them as values. */
export interface SeriesWriter {
  sample(labels: LabelSet, value: number): void;
  /**
   * histogram writes cumulative `_bucket` series, then `_sum` and `_count`. `counts` are per bucket as
   * the areas keep them (not cumulative, +Inf last); `sum` is in the bounds' unit. Bounds and sum are
   * divided by the family's divisor (microseconds to seconds by default).
   */
  histogram(labels: LabelSet, counts: ArrayLike<number>, count: number, sum: number): void;
}

type Collect = (w: SeriesWriter) => void | Promise<void>;

/**
 * ReadMetric is a metric family whose series are read from an area's own counters when a scrape
 * renders. prom-client's Counter, Gauge and Histogram keep their values themselves, which would put
 * prom-client on the hot paths; its Registry renders any object that answers `get()` with a name,
 * help, type and values, which this does. The exporter renders these families' text itself
 * ({@link ReadMetric.text}): a scrape of a thousand routes is tens of thousands of lines, and
 * prom-client's renderer copies and escapes every sample's labels on every scrape.
 */
export class ReadMetric {
  readonly aggregator = 'sum';
  private readonly header: string;
  /** `_bucket{` prefixes and `le="..."` labels per bucket, rendered once. */
  private readonly le: string[];

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: MetricKind,
    private readonly collect: Collect,
    private readonly bounds: readonly number[] = [],
    private readonly divisor = 1e6,
  ) {
    this.header = `# HELP ${name} ${help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}\n# TYPE ${name} ${type}\n`;
    this.le = bounds.map((b) => `le="${b / divisor}"`);
  }

  /** text renders the family in the Prometheus text format (0.0.4), one line per sample. */
  async text(): Promise<string> {
    const name = this.name;
    const le = this.le;
    const n = le.length;
    const divisor = this.divisor;
    let out = this.header;
    await this.collect({
      sample(labels, value) {
        out += labels.inner ? `${name}{${labels.inner}} ${num(value)}\n` : `${name} ${num(value)}\n`;
      },
      histogram(labels, counts, count, sum) {
        const pre = labels.inner ? `${name}_bucket{${labels.inner},` : `${name}_bucket{`;
        let seen = 0;
        for (let i = 0; i < n; i++) {
          seen += counts[i]!;
          out += `${pre}${le[i]}} ${seen}\n`;
        }
        out += `${pre}le="+Inf"} ${count}\n`;
        const l = labels.inner ? `{${labels.inner}}` : '';
        out += `${name}_sum${l} ${num(sum / divisor)}\n${name}_count${l} ${count}\n`;
      },
    });
    return out;
  }

  /** get answers prom-client's collector contract (used by its JSON output and by registries merged elsewhere). */
  async get(): Promise<{ name: string; help: string; type: MetricKind; aggregator: 'sum'; values: Array<{ labels: Labels; value: number; metricName?: string }> }> {
    const values: Array<{ labels: Labels; value: number; metricName?: string }> = [];
    const name = this.name;
    const bounds = this.bounds;
    const divisor = this.divisor;
    await this.collect({
      sample: (labels, value) => values.push({ labels: labels.labels, value }),
      histogram: (labels, counts, count, sum) => {
        let seen = 0;
        for (let i = 0; i < bounds.length; i++) {
          seen += counts[i]!;
          values.push({ metricName: `${name}_bucket`, labels: { ...labels.labels, le: String(bounds[i]! / divisor) }, value: seen });
        }
        values.push({ metricName: `${name}_bucket`, labels: { ...labels.labels, le: '+Inf' }, value: count });
        values.push({ metricName: `${name}_sum`, labels: labels.labels, value: sum / divisor });
        values.push({ metricName: `${name}_count`, labels: labels.labels, value: count });
      },
    });
    return { name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** reset is part of the registry's contract; the counters belong to the areas and are never reset from here. */
  reset(): void {}

  /** register adds the family to a registry (the cast: prom-client's types list only its own classes). */
  register(registry: Registry): this {
    registry.registerMetric(this as unknown as Metric);
    return this;
  }
}

/** LabelCache keeps the LabelSet of each long-lived series key (a route, an upstream) across scrapes. */
export class LabelCache {
  private readonly sets = new Map<string, LabelSet>();

  constructor(private readonly make: (key: string) => Labels) {}

  get(key: string): LabelSet {
    let s = this.sets.get(key);
    if (!s) this.sets.set(key, (s = new LabelSet(this.make(key))));
    return s;
  }
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/** num writes a value as Prometheus reads it. */
function num(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

/** PerScrape reads a source once per scrape, however many families use it. */
export class PerScrape<T> {
  private value?: T;
  private stamp = -1;

  constructor(
    private readonly clock: { scrape: number },
    private readonly read: () => T,
  ) {}

  get(): T {
    if (this.stamp !== this.clock.scrape) {
      this.value = this.read();
      this.stamp = this.clock.scrape;
    }
    return this.value!;
  }
}

import type { Metric, Registry } from 'prom-client';

/** Labels of one sample: every family declares its label names and each sample sets all of them. */
export type Labels = Record<string, string>;

/** Sample is one line of exposition: a value, its labels, and for histograms the `_bucket`/`_sum`/`_count` name. */
export interface Sample {
  labels: Labels;
  value: number;
  metricName?: string;
}

export type MetricKind = 'counter' | 'gauge' | 'histogram';

/**
 * ReadMetric is a metric family whose samples are read from an area's own counters when the registry
 * renders. prom-client's Counter, Gauge and Histogram keep their values themselves, which would put
 * prom-client on the hot paths; its Registry renders any object that answers `get()` with a name,
 * help, type and values, which is what this is.
 */
export class ReadMetric {
  readonly aggregator = 'sum';

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: MetricKind,
    private readonly read: () => Sample[] | Promise<Sample[]>,
  ) {}

  async get(): Promise<{ name: string; help: string; type: MetricKind; aggregator: 'sum'; values: Sample[] }> {
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: await this.read() };
  }

  /** reset is part of the registry's contract; the counters belong to the areas and are never reset from here. */
  reset(): void {}

  /** register adds the family to a registry (the cast: prom-client's types list only its own classes). */
  register(registry: Registry): this {
    registry.registerMetric(this as unknown as Metric);
    return this;
  }
}

/**
 * pushHistogram appends one histogram series in Prometheus' shape: cumulative `_bucket` samples with
 * `le` in seconds (the last `+Inf`), then `_sum` (seconds) and `_count`. `counts` are per bucket, not
 * cumulative, with the +Inf bucket last, as the areas keep them.
 */
export function pushHistogram(out: Sample[], name: string, labels: Labels, boundsUs: readonly number[], counts: ArrayLike<number>, count: number, sumUs: number, le: readonly string[]): void {
  let seen = 0;
  for (let i = 0; i < boundsUs.length; i++) {
    seen += counts[i]!;
    out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: le[i]! }, value: seen });
  }
  out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: count });
  out.push({ metricName: `${name}_sum`, labels, value: sumUs / 1e6 });
  out.push({ metricName: `${name}_count`, labels, value: count });
}

/** leLabels turns bucket bounds in microseconds into `le` label values in seconds, once per family. */
export function leLabels(boundsUs: readonly number[]): string[] {
  return boundsUs.map((us) => String(us / 1e6));
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

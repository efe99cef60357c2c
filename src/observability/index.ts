export { MetricsExporter, METRICS_PATH, isLoopback, type MetricSources, type MetricsListenerAuth } from './metrics/exporter.js';

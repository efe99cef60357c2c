import { SkiffError } from '../../util/errors.js';

/** TracingConfigError names the environment variable or flag whose value cannot be used. */
export class TracingConfigError extends SkiffError {
  constructor(readonly variable: string, message: string) {
    super('tracing_config_error', `${variable}: ${message}`);
  }
}

export type OtlpProtocol = 'http/protobuf' | 'http/json';
export type SamplerName = 'always_on' | 'always_off' | 'traceidratio' | 'parentbased_always_on' | 'parentbased_always_off' | 'parentbased_traceidratio';

/** SamplerConfig is a parsed `OTEL_TRACES_SAMPLER` with its argument. */
export interface SamplerConfig {
  name: SamplerName;
  /** The root ratio for the `traceidratio` samplers (1 for the others). */
  ratio: number;
}

/** TracingConfig is where spans go and which are kept; without one, tracing is off. */
export interface TracingConfig {
  /** The full OTLP/HTTP traces URL (ending in /v1/traces when it came from the base endpoint). */
  url: string;
  protocol: OtlpProtocol;
  headers: Record<string, string>;
  sampler: SamplerConfig;
  serviceName: string;
  /** Longest wait before a batch of spans is sent (the batch processor's scheduled delay). */
  batchDelayMs: number;
}

const SAMPLERS: readonly SamplerName[] = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'];

/** DEFAULT_BATCH_DELAY_MS keeps spans reaching the collector within a couple of seconds, in batches. */
export const DEFAULT_BATCH_DELAY_MS = 1000;

function parseUrl(variable: string, raw: string): URL {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new TracingConfigError(variable, 'must be an http:// or https:// URL, e.g. http://127.0.0.1:4318');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new TracingConfigError(variable, `must be an http:// or https:// URL (OTLP over HTTP), not ${u.protocol}`);
  return u;
}

function parseProtocol(variable: string, raw: string): OtlpProtocol {
  const v = raw.trim();
  if (v === 'http/protobuf' || v === 'http/json') return v;
  if (v === 'grpc') throw new TracingConfigError(variable, 'grpc is not supported: use http/protobuf (the default, port 4318 on an OpenTelemetry Collector) or http/json');
  throw new TracingConfigError(variable, `must be http/protobuf or http/json, not "${v}"`);
}

/** parseHeaders reads the W3C-baggage-like `key=value,key2=value2` list, values percent-decoded. */
function parseHeaders(variable: string, raw: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of raw.split(',')) {
    if (part.trim() === '') continue;
    const i = part.indexOf('=');
    const key = i < 0 ? '' : part.slice(0, i).trim();
    if (i < 0 || key === '' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(key)) throw new TracingConfigError(variable, 'must be a comma-separated list of name=value pairs, e.g. authorization=Bearer%20abc');
    let value: string;
    try {
      value = decodeURIComponent(part.slice(i + 1).trim());
    } catch {
      throw new TracingConfigError(variable, `the value of ${key} is not valid percent-encoding`);
    }
    out[key.toLowerCase()] = value;
  }
  return out;
}

function parseSampler(env: NodeJS.ProcessEnv): SamplerConfig {
  const raw = env.OTEL_TRACES_SAMPLER?.trim();
  const name = (raw === undefined || raw === '' ? 'parentbased_always_on' : raw) as SamplerName;
  if (!SAMPLERS.includes(name)) throw new TracingConfigError('OTEL_TRACES_SAMPLER', `must be one of ${SAMPLERS.join(', ')}, not "${raw}"`);
  if (name !== 'traceidratio' && name !== 'parentbased_traceidratio') return { name, ratio: 1 };
  const arg = env.OTEL_TRACES_SAMPLER_ARG?.trim();
  if (arg === undefined || arg === '') return { name, ratio: 1 };
  const ratio = Number(arg);
  if (!Number.isFinite(ratio) || ratio < 0 || ratio > 1) throw new TracingConfigError('OTEL_TRACES_SAMPLER_ARG', `must be a number from 0 to 1 for ${name}, not "${arg}"`);
  return { name, ratio };
}

/**
 * tracingConfig reads the standard OpenTelemetry environment variables and `--otlp-endpoint`
 * (`flagEndpoint`, a base URL like OTEL_EXPORTER_OTLP_ENDPOINT, which it overrides). It returns
 * undefined when no endpoint is configured or OTEL_SDK_DISABLED is true: tracing is then off. Bad
 * values throw a TracingConfigError naming the variable.
 *
 * @example
 * const config = tracingConfig(process.env, opts.otlpEndpoint); // e.g. http://127.0.0.1:4318
 */
export function tracingConfig(env: NodeJS.ProcessEnv, flagEndpoint?: string): TracingConfig | undefined {
  const disabled = env.OTEL_SDK_DISABLED?.trim().toLowerCase();
  if (disabled !== undefined && disabled !== '' && disabled !== 'true' && disabled !== 'false') throw new TracingConfigError('OTEL_SDK_DISABLED', `must be true or false, not "${env.OTEL_SDK_DISABLED}"`);
  if (disabled === 'true' && flagEndpoint === undefined) return undefined;

  let url: string | undefined;
  if (flagEndpoint !== undefined) url = signalUrl('--otlp-endpoint', flagEndpoint);
  else if (env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim()) url = parseUrl('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT.trim()).href;
  else if (env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim()) url = signalUrl('OTEL_EXPORTER_OTLP_ENDPOINT', env.OTEL_EXPORTER_OTLP_ENDPOINT.trim());
  // Read the rest even when tracing stays off, so a typo is reported the day it is made.
  const protoVar = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL?.trim() ? 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL' : 'OTEL_EXPORTER_OTLP_PROTOCOL';
  const protocol = env[protoVar]?.trim() ? parseProtocol(protoVar, env[protoVar]!) : 'http/protobuf';
  const headers = {
    ...(env.OTEL_EXPORTER_OTLP_HEADERS ? parseHeaders('OTEL_EXPORTER_OTLP_HEADERS', env.OTEL_EXPORTER_OTLP_HEADERS) : {}),
    ...(env.OTEL_EXPORTER_OTLP_TRACES_HEADERS ? parseHeaders('OTEL_EXPORTER_OTLP_TRACES_HEADERS', env.OTEL_EXPORTER_OTLP_TRACES_HEADERS) : {}),
  };
  const sampler = parseSampler(env);
  const serviceName = env.OTEL_SERVICE_NAME?.trim() || 'skiff';
  const delayRaw = env.OTEL_BSP_SCHEDULE_DELAY?.trim();
  const batchDelayMs = delayRaw ? Number(delayRaw) : DEFAULT_BATCH_DELAY_MS;
  if (!Number.isInteger(batchDelayMs) || batchDelayMs < 1 || batchDelayMs > 60_000) throw new TracingConfigError('OTEL_BSP_SCHEDULE_DELAY', `must be a whole number of milliseconds from 1 to 60000, not "${delayRaw}"`);
  if (url === undefined) return undefined;
  return { url, protocol, headers, sampler, serviceName, batchDelayMs };
}

/** signalUrl turns a base endpoint into the traces URL, as the OTLP exporter specification says: `/v1/traces` appended to its path. */
function signalUrl(variable: string, raw: string): string {
  const u = parseUrl(variable, raw);
  u.pathname = `${u.pathname.replace(/\/+$/, '')}/v1/traces`;
  return u.href;
}

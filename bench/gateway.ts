/**
 * Gateway benchmark: requests/s and added latency of Skiff's gateway with an empty filter chain and
 * with JWT + authorization + rate limiting, with the empty chain traced (1% and all requests sampled,
 * exported over OTLP to a loopback sink), next to the upstream hit directly and to nginx and
 * HAProxy proxying the same upstream. Every server runs in its own process; load comes from wrk.
 *
 *   npm run bench -- gateway [--json FILE] [--duration SECONDS] [--rounds N] [--connections N]
 *
 * Requests/s are measured with `wrk -c50`; latencies with one connection (`wrk -c1`), where they are
 * not queueing delay, and "added" latency is the proxied percentile minus the direct one. Targets are
 * measured interleaved over several rounds and each figure is the median.
 */
import { type ChildProcess,execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { emit, type Figures,parseBenchArgs } from './lib/report.js';

const self = fileURLToPath(import.meta.url);
const HOST = '127.0.0.1';

function has(bin: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function ensureTools(): void {
  const missing = [['wrk', 'wrk'], ['nginx', 'nginx-light'], ['haproxy', 'haproxy']].filter(([bin]) => !has(bin!)).map(([, pkg]) => pkg!);
  if (missing.length === 0) return;
  process.stderr.write(`installing ${missing.join(' ')} from Debian...\n`);
  execFileSync('sh', ['-c', `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${missing.join(' ')}`], { stdio: 'inherit' });
}

/** Child roles: the upstream and the gateway each run in a process of their own. */
async function serveRole(role: string): Promise<void> {
  // Exit cleanly on SIGTERM/SIGINT so `--cpu-prof` runs write their profile.
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => process.exit(0));
  if (role === 'upstream') {
    const body = Buffer.from('hello from upstream\n');
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
      res.end(body);
    });
    server.keepAliveTimeout = 65_000;
    server.listen(0, HOST, () => process.stdout.write(`port ${(server.address() as { port: number }).port}\n`));
    return;
  }
  if (role === 'otlp-sink') {
    // An OTLP/HTTP endpoint that accepts and discards span batches, so exporting costs what it would against a collector.
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end());
    });
    server.listen(0, HOST, () => process.stdout.write(`port ${(server.address() as { port: number }).port}\n`));
    return;
  }
  const { Gateway } = await import('../src/gateway/index.js');
  const { UpstreamGuard } = await import('../src/security/index.js');
  const { pino } = await import('pino');
  const upstreamPort = Number(process.env.UPSTREAM_PORT);
  const full = role === 'gateway-full';
  const filters = full
    ? [
        { jwt: { issuer: 'https://bench.skiff', jwks: JSON.parse(process.env.JWKS!) } },
        { authz: { policy: 'data.bench.allow' } },
        { rateLimit: { maxTokens: 1_000_000_000, fillInterval: '1s', key: { claim: 'sub' } } },
      ]
    : [];
  // The real Rego engine, with a prepared query, as the platform's Policy controller runs it.
  const { PolicyEngine } = await import('../src/policy/index.js');
  const engine = new PolicyEngine();
  engine.addModule(
    'bench.rego',
    'package bench\n\ndefault allow := false\n\nallow if {\n  input.jwt.role == "bench"\n  input.attributes.request.http.method == "GET"\n}\n',
  );
  const allow = engine.prepare('data.bench.allow');
  const authorizer = { check: async (input: object) => ({ allowed: allow.eval({ input })[0]?.expressions[0]?.value === true }) };
  const gw = new Gateway({
    functions: { tryInline: () => undefined, invoke: async () => ({ status: 500, headers: [], body: new Uint8Array() }) },
    logger: pino({ level: 'warn' }),
    authorizer,
    // The upstream is a process on loopback, which only an explicit grant allows.
    upstreams: UpstreamGuard.from(['127.0.0.0/8']),
  });
  const problems = gw.update({
    routes: [{ apiVersion: 'skiff.dev/v1', kind: 'Route', metadata: { name: 'bench', namespace: 'default' }, spec: { filters, http: [{ route: [{ destination: { service: 'up' } }] }] } }],
    services: [{ apiVersion: 'skiff.dev/v1', kind: 'Service', metadata: { name: 'up', namespace: 'default' }, spec: { endpoints: [{ address: HOST, port: upstreamPort }] } }],
  });
  if (problems.length) throw new Error(JSON.stringify(problems));
  if (process.env.TRACE_RATIO) {
    // Tracing on: root traces sampled by ratio, spans exported to the bench's loopback OTLP sink.
    const { OtlpTracer, tracingConfig } = await import('../src/observability/tracing/index.js');
    const config = tracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: process.env.OTLP_URL, OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: process.env.TRACE_RATIO })!;
    gw.useTracer(new OtlpTracer({ config }));
  }
  const { port } = await gw.listen(HOST, 0);
  process.stdout.write(`port ${port}\n`);
}

function startChild(cmd: string, args: string[], env: Record<string, string> = {}, waitPort = true): Promise<{ proc: ChildProcess; port: number }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
    if (!waitPort) return resolve({ proc, port: 0 });
    let buf = '';
    proc.stdout!.on('data', (d) => {
      buf += d;
      const m = /port (\d+)/.exec(buf);
      if (m) resolve({ proc, port: Number(m[1]) });
    });
    proc.once('exit', (code) => reject(new Error(`${cmd} exited with ${code} before listening`)));
  });
}

const tsxChild = (role: string, env: Record<string, string> = {}) => startChild(process.execPath, ['--import', 'tsx', self, '--role', role], env);

async function waitListening(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      const r = await fetch(`http://${HOST}:${port}/`);
      await r.arrayBuffer();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`nothing listening on ${port}`);
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, HOST, () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

function toUs(v: string, unit: string): number {
  const n = Number(v);
  return unit === 'us' ? n : unit === 'ms' ? n * 1000 : unit === 's' ? n * 1e6 : n;
}

/** cpuSeconds reads a process's user+system CPU time from /proc (Linux). */
function cpuSeconds(pid: number, tick: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / tick;
}

/** childPid finds nginx's worker: the CPU that serves requests is the worker's, not the master's. */
function childPid(pid: number): number {
  const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  return kids[0] ?? pid;
}

function wrk(port: number, connections: number, seconds: number, headers: string[] = []): { rps: number; p50: number; p99: number; errors: number; requests: number } {
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', ...headers.flatMap((h) => ['-H', h]), `http://${HOST}:${port}/`];
  const out = execFileSync('wrk', args, { encoding: 'utf8' });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
  const pct = (p: string) => {
    const m = new RegExp(`\\s${p}%\\s+([\\d.]+)(us|ms|s)`).exec(out);
    return m ? toUs(m[1]!, m[2]!) : NaN;
  };
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const sockErr = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = non2xx + (sockErr ? sockErr.slice(1).reduce((a, b) => a + Number(b), 0) : 0);
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN);
  return { rps, p50: pct('50'), p99: pct('99'), errors, requests };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const roleAt = argv.indexOf('--role');
  if (roleAt >= 0) return serveRole(argv[roleAt + 1]!);
  const { json, rest } = parseBenchArgs(argv);
  const opt = (name: string, def: number) => {
    const i = rest.indexOf(name);
    return i >= 0 ? Number(rest[i + 1]) : def;
  };
  const seconds = opt('--duration', 2);
  const rounds = opt('--rounds', 3);
  const conns = opt('--connections', 50);
  ensureTools();

  const { generateKeyPair, exportJWK, SignJWT } = await import('jose');
  const kp = await generateKeyPair('ES256', { extractable: true });
  const jwks = { keys: [{ ...(await exportJWK(kp.publicKey)), kid: 'bench', alg: 'ES256' }] };
  const token = await new SignJWT({ role: 'bench' }).setProtectedHeader({ alg: 'ES256', kid: 'bench' }).setSubject('bench-user').setIssuer('https://bench.skiff').setExpirationTime('1h').sign(kp.privateKey);

  const procs: ChildProcess[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'skiff-bench-gw-'));
  try {
    const up = await tsxChild('upstream');
    procs.push(up.proc);
    const empty = await tsxChild('gateway-empty', { UPSTREAM_PORT: String(up.port) });
    procs.push(empty.proc);
    const full = await tsxChild('gateway-full', { UPSTREAM_PORT: String(up.port), JWKS: JSON.stringify(jwks) });
    procs.push(full.proc);
    const sink = await tsxChild('otlp-sink');
    procs.push(sink.proc);
    const traced = (ratio: string) => tsxChild('gateway-empty', { UPSTREAM_PORT: String(up.port), OTLP_URL: `http://${HOST}:${sink.port}`, TRACE_RATIO: ratio });
    const trace1 = await traced('0.01');
    procs.push(trace1.proc);
    const traceAll = await traced('1');
    procs.push(traceAll.proc);

    const nginxPort = await freePort();
    writeFileSync(
      join(dir, 'nginx.conf'),
      `worker_processes 1;\ndaemon off;\npid ${dir}/nginx.pid;\nerror_log ${dir}/nginx-error.log warn;\nevents { worker_connections 4096; }\nhttp {\n  access_log off;\n  client_body_temp_path ${dir};\n  proxy_temp_path ${dir};\n  upstream up { server ${HOST}:${up.port}; keepalive 64; }\n  server {\n    listen ${HOST}:${nginxPort};\n    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; }\n  }\n}\n`,
    );
    const nginx = await startChild('nginx', ['-c', join(dir, 'nginx.conf'), '-p', dir], {}, false);
    procs.push(nginx.proc);
    const haproxyPort = await freePort();
    writeFileSync(
      join(dir, 'haproxy.cfg'),
      `global\n  nbthread 1\n  maxconn 4096\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n  http-reuse always\nfrontend fe\n  bind ${HOST}:${haproxyPort}\n  default_backend be\nbackend be\n  server s1 ${HOST}:${up.port}\n`,
    );
    const haproxy = await startChild('haproxy', ['-f', join(dir, 'haproxy.cfg'), '-db'], {}, false);
    procs.push(haproxy.proc);
    await Promise.all([waitListening(nginxPort), waitListening(haproxyPort), waitListening(empty.port)]);

    const auth = [`Authorization: Bearer ${token}`];
    const tick = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    // CPU per request of the serving process: unlike requests/s it hardly depends on what else runs.
    const targets: Array<[string, number, string[], number]> = [
      ['direct', up.port, [], up.proc.pid!],
      ['empty_chain', empty.port, [], empty.proc.pid!],
      ['full_chain', full.port, auth, full.proc.pid!],
      ['empty_chain_trace_1pct', trace1.port, [], trace1.proc.pid!],
      ['empty_chain_trace_all', traceAll.port, [], traceAll.proc.pid!],
      ['nginx', nginxPort, [], childPid(nginx.proc.pid!)],
      ['haproxy', haproxyPort, [], haproxy.proc.pid!],
    ];
    // The machine is shared (2 cores): run the targets interleaved over several rounds and keep the
    // median of each figure, so a burst of outside load does not land on one target only.
    const samples: Record<string, Array<{ rps: number; p50: number; p99: number; errors: number; cpuUs: number }>> = {};
    for (const [, port, headers] of targets) wrk(port, conns, 1, headers); // warm-up (JIT, connection pools)
    for (let round = 0; round < rounds; round++) {
      for (const [name, port, headers, pid] of targets) {
        const c0 = cpuSeconds(pid, tick);
        const load = wrk(port, conns, seconds, headers);
        const cpuUs = ((cpuSeconds(pid, tick) - c0) * 1e6) / load.requests;
        const lat = wrk(port, 1, seconds, headers);
        (samples[name] ??= []).push({ rps: load.rps, p50: lat.p50, p99: lat.p99, errors: load.errors + lat.errors, cpuUs });
      }
    }
    const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const results: Record<string, { rps: number; p50: number; p99: number; errors: number; cpuUs: number }> = {};
    for (const [name, list] of Object.entries(samples)) {
      results[name] = { rps: median(list.map((x) => x.rps)), p50: median(list.map((x) => x.p50)), p99: median(list.map((x) => x.p99)), errors: list.reduce((a, x) => a + x.errors, 0), cpuUs: median(list.map((x) => x.cpuUs)) };
      const r = results[name]!;
      process.stderr.write(`${name}: ${Math.round(r.rps)} req/s (c${conns}), ${r.cpuUs.toFixed(1)} µs CPU/request, p50 ${r.p50} µs, p99 ${r.p99} µs (c1), errors ${r.errors}; rounds rps ${list.map((x) => Math.round(x.rps)).join(' ')}\n`);
    }
    const d = results.direct!;
    const figures: Figures = {
      empty_chain_rps: results.empty_chain!.rps,
      full_chain_rps: results.full_chain!.rps,
      empty_chain_rps_trace_1pct: results.empty_chain_trace_1pct!.rps,
      empty_chain_rps_trace_all: results.empty_chain_trace_all!.rps,
      empty_chain_trace_1pct_cpu_us_per_request: results.empty_chain_trace_1pct!.cpuUs,
      empty_chain_trace_all_cpu_us_per_request: results.empty_chain_trace_all!.cpuUs,
      empty_chain_trace_all_p50_added_us: results.empty_chain_trace_all!.p50 - d.p50,
      empty_chain_p50_added_us: results.empty_chain!.p50 - d.p50,
      empty_chain_p99_added_us: results.empty_chain!.p99 - d.p99,
      full_chain_p50_added_us: results.full_chain!.p50 - d.p50,
      full_chain_p99_added_us: results.full_chain!.p99 - d.p99,
      full_over_empty_p50_added_us: results.full_chain!.p50 - results.empty_chain!.p50,
      empty_chain_vs_nginx_rps_pct: (results.empty_chain!.rps / results.nginx!.rps) * 100,
      empty_chain_cpu_us_per_request: results.empty_chain!.cpuUs,
      full_chain_cpu_us_per_request: results.full_chain!.cpuUs,
      // Requests/s a core would serve, from CPU per request: the comparison that survives a busy machine.
      empty_chain_vs_nginx_cpu_pct: (results.nginx!.cpuUs / results.empty_chain!.cpuUs) * 100,
      errors: Object.values(results).reduce((a, r) => a + r.errors, 0),
    };
    const peer = (r: { rps: number; p50: number; p99: number; cpuUs: number }) => ({ rps: r.rps, p50_us: r.p50, p99_us: r.p99, cpu_us_per_request: r.cpuUs });
    emit({ name: 'gateway', figures, peers: { direct: peer(d), nginx: peer(results.nginx!), haproxy: peer(results.haproxy!) } }, json);
  } finally {
    for (const p of procs.reverse()) p.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();

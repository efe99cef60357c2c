import { describe, expect, it } from 'vitest';

import { ApiError } from '../../src/api/errors.js';
import { builtinKinds } from '../../src/api/kinds/index.js';
import { ResourceService } from '../../src/api/resources.js';
import { gatewayKindValidators, routeFunctionRefs } from '../../src/gateway/index.js';
import { MemoryStore } from '../../src/store/index.js';

import { route, service } from './helpers.js';

// The kinds as the server registers them: with the gateway's validators.
const kinds = builtinKinds(gatewayKindValidators);
const routeKind = kinds.lookup('Route')!;
const serviceKind = kinds.lookup('Service')!;

describe('Route kind', () => {
  it('accepts the demo manifest', () => {
    const demo = route('hello', { hosts: ['*'], http: [{ match: [{ uri: { prefix: '/hello' } }], route: [{ destination: { function: 'hello' }, weight: 100 }] }] });
    expect(routeKind.validate!(demo)).toEqual([]);
    expect(routeKind).toMatchObject({ kind: 'Route', plural: 'routes', shortNames: ['rt'], namespaced: true });
    expect(routeKind.printerColumns.map((c) => c.value(demo))).toEqual(['Unknown', '*', '1', 'hello', '']);
  });

  it('refuses an unknown filter and an invalid regex with field paths', () => {
    const bad = route('bad', {
      filters: [{ timeout: '1s' }, { frobnicate: {} }],
      http: [{ match: [{ uri: { regex: '/a(' } }, { headers: { 'x-a': { regex: '[' } } }], route: [{ destination: { function: 'f' } }] }],
    });
    const errors = routeKind.validate!(bad);
    const fields = errors.map((e) => e.field);
    expect(fields).toContain('spec.filters[1].frobnicate');
    expect(fields).toContain('spec.http[0].match[0].uri.regex');
    expect(fields).toContain('spec.http[0].match[1].headers.x-a.regex');
    expect(errors.find((e) => e.field === 'spec.filters[1].frobnicate')!.message).toContain('unknown filter');
  });

  it('checks destinations, weights, durations and filter configs', () => {
    const bad = route('bad', {
      http: [
        { route: [{ destination: { function: 'a', service: 'b' } }, { destination: { service: 's', port: 70000 }, weight: -1 }] },
        { timeout: 'soon', retries: { attempts: 3, retryOn: '5xx,sometimes' }, route: [{ destination: { function: 'f' } }] },
        { match: [{ uri: { prefix: '/x' } }] },
      ],
    });
    const fields = routeKind.validate!(bad).map((e) => e.field);
    expect(fields).toEqual(
      expect.arrayContaining(['spec.http[0].route[0].destination', 'spec.http[0].route[1].destination.port', 'spec.http[0].route[1].weight', 'spec.http[1].timeout', 'spec.http[1].retries.retryOn', 'spec.http[2]']),
    );
  });

  it('lists the functions a route points at', () => {
    const r = route('r', { http: [{ route: [{ destination: { function: 'a' } }, { destination: { service: 's' } }], mirror: { function: 'm' } }, { route: [{ destination: { function: 'a' } }] }] });
    expect(routeFunctionRefs(r).sort()).toEqual(['a', 'm']);
  });
});

describe('Service kind', () => {
  it('accepts endpoints with versions and a traffic policy', () => {
    const s = service('api', {
      endpoints: [{ address: '127.0.0.1', port: 9001, version: 'v1' }, { address: '127.0.0.1', port: 9002, labels: { version: 'v2' } }],
      trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: 'x-user' } }, outlierDetection: { consecutive5xxErrors: 3, baseEjectionTime: '10s' } },
    });
    expect(serviceKind.validate!(s)).toEqual([]);
    expect(serviceKind.printerColumns[1]!.value(s)).toBe('v1,v2');
  });

  it('reports bad fields with paths', () => {
    const s = service('api', { endpoints: [{ address: '', port: 0 }], trafficPolicy: { loadBalancer: { simple: 'FASTEST' }, outlierDetection: { baseEjectionTime: 'x' } } });
    const fields = serviceKind.validate!(s).map((e) => e.field);
    expect(fields).toEqual(
      expect.arrayContaining(['spec.endpoints[0].address', 'spec.endpoints[0].port', 'spec.trafficPolicy.loadBalancer.simple', 'spec.trafficPolicy.outlierDetection.baseEjectionTime']),
    );
  });
});

describe('gateway validators registered with the API', () => {
  it('refuses, with 422 and the compiler\'s field path, a Route the gateway cannot compile', async () => {
    const resources = new ResourceService(new MemoryStore(), builtinKinds(gatewayKindValidators));
    const bad = route('bad', { http: [{ match: [{ uri: { regex: '/a(' } }], route: [{ destination: { function: 'f' } }] }] });
    const err = await resources.create(resources.kind('Route'), 'default', bad).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).httpStatus).toBe(422);
    expect((err as ApiError).message).toContain('spec.http[0].match[0].uri.regex');
    const good = route('good', { http: [{ route: [{ destination: { function: 'f' } }] }] });
    await expect(resources.create(resources.kind('Route'), 'default', good)).resolves.toBeDefined();
  });

  it('leaves Route and Service to their schemas without validators, and refuses a validator for an unknown kind', () => {
    const plain = builtinKinds();
    expect(plain.lookup('Route')!.validate).toBeUndefined();
    expect(plain.lookup('Service')!.validate).toBeUndefined();
    expect(() => builtinKinds({ Rout: () => [] })).toThrow(/Rout, which is not a built-in kind/);
  });
});

/**
 * BackendClient between its two roads: each call is told to the RoadPolicy (failed only for a
 * backend failure) and counted per road; a road whose circuit is open hands its calls to the other,
 * a call never sent is counted as refused and not told; the breaker gauge follows the circuit. A
 * real HTTP server on loopback answers; the gRPC road points at a closed loopback port (no answer).
 */
import {createServer, type Server} from 'node:http';
import type {AddressInfo} from 'node:net';
import {Registry} from 'prom-client';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {BackendClient, type CallContext} from '../../src/services/backends/backend-client.js';
import {BackendMetrics} from '../../src/services/backends/backend-metrics.js';
import {RESERVATION_ROUTES} from '../../src/services/backends/routes.js';
import {GrpcTransport, HttpTransport, type Protocol} from '../../src/services/backends/transports.js';
import {loadContractSet, type ContractSet} from '../../src/services/contracts.js';
import {TacosError} from '../../src/services/errors.js';
import {createLogger} from '../../src/services/logging.js';
import {packageDefinition} from '../../src/services/server-kit/grpc/server.js';

const INVENTORY = 'reservation.v1.InventoryService';
const FAILURES = 2;

let server: Server | undefined;
let base: URL;
let contracts: ContractSet;
/** The HTTP status the backend answers next. */
let httpStatus = 200;
const clients: BackendClient[] = [];

beforeAll(async () => {
  server = createServer((request, response) => {
    request.resume();
    request.on('end', () =>
      response
        .writeHead(httpStatus, {'content-type': 'application/json'})
        .end(httpStatus === 200 ? '{}' : '{"error":{"code":"INTERNAL","message":"broken"}}'),
    );
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  base = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  contracts = await loadContractSet();
});

afterAll(async () => {
  await Promise.allSettled(clients.map((client) => client.close()));
  await new Promise((resolve) => server?.close(resolve));
});

interface Recorded {
  backend: string;
  protocol: Protocol;
  failed: boolean;
  seconds: number;
}

function clientAt(share: number) {
  const registry = new Registry();
  const metrics = new BackendMetrics(registry);
  const recorded: Recorded[] = [];
  const definition = packageDefinition();
  const client = new BackendClient(
    {name: 'reservation', timeoutMs: 5000, breakerFailures: FAILURES, breakerCooldownMs: 60_000},
    {
      // Port 1 on loopback: nothing listens, every call fails UNAVAILABLE.
      grpc: new GrpcTransport('reservation', '127.0.0.1:1', definition, contracts.registry, 1000, metrics),
      http: new HttpTransport('reservation', base, RESERVATION_ROUTES, definition, contracts.registry, metrics),
    },
    {
      grpcShare: () => share,
      record: (backend, protocol, failed, seconds) => recorded.push({backend, protocol, failed, seconds}),
    },
    metrics,
    createLogger('test', 'silent'),
  );
  clients.push(client);
  const value = async (name: string, labels: Record<string, string>) => {
    const metric = (await registry.getMetricsAsJSON()).find((candidate) => candidate.name === name);
    return metric?.values.find((sample) => Object.entries(labels).every(([key, v]) => sample.labels[key] === v))?.value;
  };
  return {client, recorded, value};
}

async function inventory(client: BackendClient, context: Partial<CallContext> = {}) {
  const roads = new Set<Protocol>();
  try {
    await client.call(INVENTORY, 'GetInventoryStatus', {event_id: 'evt_x'}, {requestId: 'r', roads, ...context});
    return {code: 'OK', roads};
  } catch (error) {
    if (!(error instanceof TacosError)) throw error;
    return {code: error.code, roads};
  }
}

describe('BackendClient between its roads', () => {
  it('tells the policy each call, hands the calls of an open gRPC circuit to HTTP, and counts a refused call apart', async () => {
    const {client, recorded, value} = clientAt(100);
    httpStatus = 200;
    expect(await value('gateway_backend_breaker_state', {transport: 'grpc'})).toBe(0);
    for (let call = 0; call < FAILURES; call++)
      expect(await inventory(client, {callerKey: 'user-1'})).toEqual({
        code: 'UPSTREAM_ERROR',
        roads: new Set(['grpc']),
      });
    expect(await value('gateway_backend_breaker_state', {transport: 'grpc'})).toBe(2);
    expect(await value('grpc_client_handled_total', {grpc_code: 'UNAVAILABLE'})).toBe(FAILURES);

    expect(await inventory(client, {callerKey: 'user-1'})).toEqual({code: 'OK', roads: new Set(['http'])});
    expect(recorded.map(({backend, protocol, failed}) => [backend, protocol, failed])).toEqual([
      ['reservation', 'grpc', true],
      ['reservation', 'grpc', true],
      ['reservation', 'http', false],
    ]);
    expect(recorded.every((call) => call.seconds > 0 && call.seconds < 5)).toBe(true);

    // Forced onto the open road: refused before sending, no road taken, not told to the policy.
    expect(await inventory(client, {protocol: 'grpc'})).toEqual({code: 'UNAVAILABLE', roads: new Set()});
    expect(recorded).toHaveLength(3);
    expect(await value('gateway_backend_calls_total', {transport: 'grpc', outcome: 'refused'})).toBe(1);
    expect(await value('gateway_backend_calls_total', {transport: 'grpc', outcome: 'failed'})).toBe(FAILURES);
    expect(await value('gateway_backend_calls_total', {transport: 'http', outcome: 'ok'})).toBe(1);
    expect(await value('grpc_client_started_total', {grpc_method: 'GetInventoryStatus'})).toBe(FAILURES);
  });

  it('at a share of 0 never sends a call over gRPC, even while the HTTP circuit is open', async () => {
    const {client, recorded, value} = clientAt(0);
    httpStatus = 500;
    try {
      for (let call = 0; call < FAILURES; call++)
        expect(await inventory(client, {callerKey: 'user-2'})).toEqual({
          code: 'UPSTREAM_ERROR',
          roads: new Set(['http']),
        });
      expect(await value('gateway_backend_breaker_state', {transport: 'http'})).toBe(2);
      expect(await inventory(client, {callerKey: 'user-2'})).toEqual({code: 'UNAVAILABLE', roads: new Set()});
      expect(await value('http_client_requests_total', {status_code: '500'})).toBe(FAILURES);
      expect(await value('grpc_client_started_total', {})).toBeUndefined();
      expect(recorded.map((call) => [call.protocol, call.failed])).toEqual([
        ['http', true],
        ['http', true],
      ]);
    } finally {
      httpStatus = 200;
    }
  });
});

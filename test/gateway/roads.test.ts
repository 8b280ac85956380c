/**
 * The two roads to the backends as a user sees them: the sticky split keeps each user on one road
 * (x-tacos-backend-road says which, on REST answers and in gRPC metadata), raising the share only
 * moves users from HTTP to gRPC, and /metrics counts each road's calls with go-grpc-prometheus's
 * client names, read by the official Prometheus Python parser. Real gateway, mocks and Redis.
 */
import * as grpc from '@grpc/grpc-js';
import {execa, execaSync} from 'execa';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import type {RunningMock} from '../../src/services/mocks/mock-server.js';
import type {TestGateway} from '../helpers/gateway.js';
import {contractClient} from '../helpers/grpc-client.js';
import {disposeRedis, startRedis, type RedisProcess} from '../helpers/redis.js';
import {skipOrFail} from '../helpers/required-checks.js';
import {
  backendEnv,
  bearer,
  bounded,
  callsSince,
  mockCalls,
  send,
  startStackGateway,
  startTestMock,
} from '../helpers/stack.js';

const USERS = 1000;
const CONCURRENCY = 20;
const METHOD = 'GetInventoryStatus';
const AVAILABILITY = '/api/v1/events/evt_2026_concert/availability';
const ROAD = 'x-tacos-backend-road';
const PYTHON = '/usr/bin/python3';

let redis: RedisProcess | undefined;
let reservation: RunningMock | undefined;
let payment: RunningMock | undefined;
const gateways: TestGateway[] = [];

beforeAll(async () => {
  redis = await startRedis();
  reservation = await startTestMock('reservation');
  payment = await startTestMock('payment');
});

afterAll(async () => {
  await Promise.allSettled(gateways.map((gateway) => gateway.close()));
  await Promise.allSettled([reservation?.close(), payment?.close()]);
  await disposeRedis(redis);
});

async function gatewayWith(env: Record<string, string>): Promise<TestGateway> {
  const gateway = await startStackGateway(backendEnv(reservation!, payment!, redis!.address), {
    LOG_LEVEL: 'error',
    ...env,
  });
  gateways.push(gateway);
  return gateway;
}

/** The road one availability call of this user took, as the answer says. */
async function roadOf(gateway: TestGateway, auth: string, headers: Record<string, string> = {}): Promise<string> {
  const answer = await send(gateway.http, 'GET', AVAILABILITY, {auth, headers});
  expect(answer.status).toBe(200);
  return answer.headers.get(ROAD) ?? 'none';
}

describe('the sticky split, as users see it', () => {
  it(`at 30% about 30% of ${USERS} users take gRPC, every user keeps its road, and at 60% no gRPC user is moved to HTTP`, async () => {
    const auths = await Promise.all(Array.from({length: USERS}, (_, index) => bearer(`roads-user-${index}`)));
    const at30 = await gatewayWith({GRPC_ENABLED: 'true', GRPC_TRAFFIC_PERCENT: '30'});
    const before = await mockCalls(reservation!, METHOD);
    const first = await bounded(USERS, CONCURRENCY, (index) => roadOf(at30, auths[index]));
    const second = await bounded(USERS, CONCURRENCY, (index) => roadOf(at30, auths[index]));
    const arrived = callsSince(before, await mockCalls(reservation!, METHOD));
    await at30.close();

    expect(new Set(first)).toEqual(new Set(['grpc', 'http']));
    expect(second).toEqual(first);
    const grpcUsers = first.flatMap((road, index) => (road === 'grpc' ? [index] : []));
    // Binomial(1000, 0.3) has an sd of 14.5: 250..350 is over 3 sd either way (and the hash is fixed).
    expect(grpcUsers.length).toBeGreaterThanOrEqual(250);
    expect(grpcUsers.length).toBeLessThanOrEqual(350);
    // The header tells the truth: the backend saw as many calls on each road.
    expect(arrived).toEqual({grpc: 2 * grpcUsers.length, http: 2 * (USERS - grpcUsers.length)});

    const at60 = await gatewayWith({GRPC_ENABLED: 'true', GRPC_TRAFFIC_PERCENT: '60'});
    const later = await bounded(USERS, CONCURRENCY, (index) => roadOf(at60, auths[index]));
    expect(grpcUsers.filter((index) => later[index] !== 'grpc')).toEqual([]);
    const grpcAt60 = later.filter((road) => road === 'grpc').length;
    expect(grpcAt60).toBeGreaterThanOrEqual(550);
    expect(grpcAt60).toBeLessThanOrEqual(650);
  }, 120_000);

  it('x-tacos-backend-protocol still decides a call, and the answer says the road it forced', async () => {
    const gateway = await gatewayWith({GRPC_ENABLED: 'false'});
    const auth = await bearer('roads-forced');
    expect(await roadOf(gateway, auth, {'x-tacos-backend-protocol': 'grpc'})).toBe('grpc');
    expect(await roadOf(gateway, auth, {'x-tacos-backend-protocol': 'http'})).toBe('http');
    expect(await roadOf(gateway, auth)).toBe('http');
  });

  it('an error answer that made a backend call says its road; a browser may read the header; production says nothing', async () => {
    const gateway = await gatewayWith({GRPC_ENABLED: 'true', GRPC_TRAFFIC_PERCENT: '100'});
    const auth = await bearer('roads-errors');
    const missing = await send(gateway.http, 'GET', '/api/v1/reservations/res_missing', {
      auth,
      headers: {origin: 'http://localhost:3000'},
    });
    expect(missing.status).toBe(404);
    expect(missing.headers.get(ROAD)).toBe('grpc');
    expect(missing.headers.get('access-control-expose-headers')?.toLowerCase()).toContain(ROAD);

    const secret = 'roads-tester-secret-0123456789abcdef';
    const production = await gatewayWith({
      GRPC_ENABLED: 'true',
      GRPC_TRAFFIC_PERCENT: '100',
      SERVER_ENVIRONMENT: 'production',
      JWT_SECRET: secret,
    });
    const quiet = await send(production.http, 'GET', AVAILABILITY, {auth: await bearer('roads-prod', secret)});
    expect(quiet.status).toBe(200);
    expect(quiet.headers.get(ROAD)).toBeNull();
  });

  it('the gRPC door says the road in the initial metadata of an answer, and in the trailers of an error', async () => {
    const gateway = await gatewayWith({GRPC_ENABLED: 'true', GRPC_TRAFFIC_PERCENT: '0'});
    const service = await contractClient('gateway.v1.GatewayService', gateway.grpc);
    try {
      const metadata = new grpc.Metadata();
      metadata.set('authorization', await bearer('roads-grpc'));
      const answered = await grpcCall(service, 'GetEventAvailability', {event_id: 'evt_2026_concert'}, metadata);
      expect(answered.error).toBeUndefined();
      expect(answered.initial?.get(ROAD)).toEqual(['http']);

      metadata.set('x-tacos-backend-protocol', 'grpc');
      const failed = await grpcCall(service, 'GetReservation', {reservation_id: 'res_missing'}, metadata);
      expect(failed.error?.code).toBe(grpc.status.NOT_FOUND);
      expect(failed.error?.metadata.get(ROAD)).toEqual(['grpc']);
    } finally {
      service.close();
    }
  });
});

/** A unary call's initial metadata and its error (whose metadata are the trailers). */
function grpcCall(
  client: Record<string, any>,
  method: string,
  request: object,
  metadata: grpc.Metadata,
): Promise<{initial?: grpc.Metadata; error?: grpc.ServiceError}> {
  return new Promise((resolve) => {
    let initial: grpc.Metadata | undefined;
    const call = client[method](request, metadata, {deadline: Date.now() + 10_000}, (error: grpc.ServiceError | null) =>
      resolve({initial, error: error ?? undefined}),
    ) as grpc.ClientUnaryCall;
    call.on('metadata', (received) => (initial = received));
  });
}

interface ParsedSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const PARSE = `
import json, sys
from prometheus_client.parser import text_string_to_metric_families
print(json.dumps([
    {"name": s.name, "labels": s.labels, "value": s.value}
    for family in text_string_to_metric_families(sys.stdin.read())
    for s in family.samples
]))
`;

const pythonHasParser =
  execaSync(PYTHON, ['-c', 'import prometheus_client.parser'], {timeout: 15_000, reject: false}).exitCode === 0;

/** /metrics of the gateway, parsed by the official Prometheus Python client. */
async function scrape(gateway: TestGateway): Promise<ParsedSample[]> {
  const text = (await send(gateway.http, 'GET', '/metrics')).text;
  const parsed = await execa(PYTHON, ['-c', PARSE], {input: text, timeout: 30_000, maxBuffer: 16 * 1024 * 1024});
  return JSON.parse(parsed.stdout) as ParsedSample[];
}

function valueOf(samples: ParsedSample[], name: string, labels: Record<string, string>): number | undefined {
  return samples.find(
    (sample) =>
      sample.name === name &&
      Object.keys(sample.labels).length === Object.keys(labels).length &&
      Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
  )?.value;
}

describe('/metrics of the two roads', () => {
  it('counts each road: grpc_client_*, http_client_*, gateway_backend_calls_total and the breakers', async (context) => {
    if (!pythonHasParser)
      skipOrFail(
        context,
        `${PYTHON} cannot import prometheus_client (apt-get install python3-prometheus-client); /metrics is not parsed`,
      );
    const gateway = await gatewayWith({GRPC_ENABLED: 'true', GRPC_TRAFFIC_PERCENT: '50'});
    const auth = await bearer('roads-metrics');
    const forced = (protocol: string) => ({'x-tacos-backend-protocol': protocol});
    const GRPC_CALLS = 7;
    const HTTP_CALLS = 5;
    for (let index = 0; index < GRPC_CALLS; index++) await roadOf(gateway, auth, forced('grpc'));
    for (let index = 0; index < HTTP_CALLS; index++) await roadOf(gateway, auth, forced('http'));
    // One answer that is a refusal of the request on each road: counted by its status, not failed.
    for (const protocol of ['grpc', 'http']) {
      const missing = await send(gateway.http, 'GET', '/api/v1/reservations/res_missing', {
        auth,
        headers: forced(protocol),
      });
      expect(missing.status).toBe(404);
    }

    const samples = await scrape(gateway);
    const inventory = {grpc_type: 'unary', grpc_service: 'reservation.v1.InventoryService', grpc_method: METHOD};
    const lookup = {
      grpc_type: 'unary',
      grpc_service: 'reservation.v1.ReservationService',
      grpc_method: 'GetReservation',
    };
    expect(valueOf(samples, 'grpc_client_started_total', inventory)).toBe(GRPC_CALLS);
    expect(valueOf(samples, 'grpc_client_msg_sent_total', inventory)).toBe(GRPC_CALLS);
    expect(valueOf(samples, 'grpc_client_msg_received_total', inventory)).toBe(GRPC_CALLS);
    expect(valueOf(samples, 'grpc_client_handled_total', {...inventory, grpc_code: 'OK'})).toBe(GRPC_CALLS);
    expect(valueOf(samples, 'grpc_client_handling_seconds_count', inventory)).toBe(GRPC_CALLS);
    expect(valueOf(samples, 'grpc_client_handling_seconds_bucket', {...inventory, le: '+Inf'})).toBe(GRPC_CALLS);
    expect(valueOf(samples, 'grpc_client_started_total', lookup)).toBe(1);
    expect(valueOf(samples, 'grpc_client_msg_received_total', lookup)).toBeUndefined();
    expect(valueOf(samples, 'grpc_client_handled_total', {...lookup, grpc_code: 'NOT_FOUND'})).toBe(1);

    const httpInventory = {backend: 'reservation', grpc_service: inventory.grpc_service, grpc_method: METHOD};
    const httpLookup = {backend: 'reservation', grpc_service: lookup.grpc_service, grpc_method: 'GetReservation'};
    expect(valueOf(samples, 'http_client_requests_total', {...httpInventory, status_code: '200'})).toBe(HTTP_CALLS);
    expect(valueOf(samples, 'http_client_request_duration_seconds_count', httpInventory)).toBe(HTTP_CALLS);
    expect(valueOf(samples, 'http_client_requests_total', {...httpLookup, status_code: '404'})).toBe(1);

    const calls = (transport: string, outcome: string) =>
      valueOf(samples, 'gateway_backend_calls_total', {backend: 'reservation', transport, outcome});
    expect(calls('grpc', 'ok')).toBe(GRPC_CALLS + 1);
    expect(calls('http', 'ok')).toBe(HTTP_CALLS + 1);
    expect(calls('grpc', 'failed')).toBeUndefined();
    expect(calls('http', 'refused')).toBeUndefined();
    for (const backend of ['reservation', 'payment'])
      for (const transport of ['grpc', 'http'])
        expect(valueOf(samples, 'gateway_backend_breaker_state', {backend, transport})).toBe(0);
  });
});

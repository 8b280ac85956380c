/**
 * GRPC_ENABLED and GRPC_TRAFFIC_PERCENT: which road the gateway's backend calls take, counted where
 * they arrive (the reservation mock's mock_calls_total by protocol). The split is per user (sticky),
 * so a canary percentage moves that share of users, not that share of gateways or connections;
 * test/gateway/roads.test.ts checks that each user stays on its road.
 */
import * as grpc from '@grpc/grpc-js';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import type {RunningMock} from '../../src/services/mocks/mock-server.js';
import type {TestGateway} from '../helpers/gateway.js';
import {contractClient, unaryCall} from '../helpers/grpc-client.js';
import {disposeRedis, startRedis, type RedisProcess} from '../helpers/redis.js';
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

const CONCURRENCY = 20;
const METHOD = 'GetInventoryStatus';

let redis: RedisProcess | undefined;
let reservation: RunningMock | undefined;
let payment: RunningMock | undefined;
let auth: string;
const gateways: TestGateway[] = [];

beforeAll(async () => {
  redis = await startRedis();
  reservation = await startTestMock('reservation');
  payment = await startTestMock('payment');
  auth = await bearer('split-tester');
});

afterAll(async () => {
  await Promise.allSettled(gateways.map((gateway) => gateway.close()));
  await Promise.allSettled([reservation?.close(), payment?.close()]);
  await disposeRedis(redis);
});

/**
 * `count` availability requests through a gateway so configured (with these request headers), each
 * from another user when `users` says so; where they arrived.
 */
async function split(
  env: Record<string, string>,
  count: number,
  headers: Record<string, string> = {},
  users: 'one' | 'distinct' = 'one',
) {
  const gateway = await startStackGateway(backendEnv(reservation!, payment!, redis!.address), {
    LOG_LEVEL: 'error',
    ...env,
  });
  gateways.push(gateway);
  try {
    const before = await mockCalls(reservation!, METHOD);
    const statuses = await bounded(count, CONCURRENCY, async (index) => {
      const answer = await send(gateway.http, 'GET', '/api/v1/events/evt_2026_concert/availability', {
        auth: users === 'one' ? auth : await bearer(`split-user-${index}`),
        headers,
      });
      return answer.status;
    });
    const arrived = callsSince(before, await mockCalls(reservation!, METHOD));
    return {statuses, arrived};
  } finally {
    await gateway.close();
  }
}

function countOf(statuses: number[], status: number): number {
  return statuses.filter((value) => value === status).length;
}

describe('GRPC_ENABLED and GRPC_TRAFFIC_PERCENT', () => {
  it('true with 25%: the calls of about a quarter of 1,000 users arrive over gRPC, the rest over HTTP', async () => {
    const {statuses, arrived} = await split({GRPC_ENABLED: 'true', GRPC_TRAFFIC_PERCENT: '25'}, 1000, {}, 'distinct');
    expect(countOf(statuses, 200)).toBe(1000);
    expect(arrived.grpc + arrived.http).toBe(1000);
    // Binomial(1000, 0.25): sd about 14, so 190..310 is more than 4 sd either way.
    expect(arrived.grpc).toBeGreaterThanOrEqual(190);
    expect(arrived.grpc).toBeLessThanOrEqual(310);
  });

  it('true with 0%: every call over HTTP', async () => {
    const {statuses, arrived} = await split({GRPC_ENABLED: 'true', GRPC_TRAFFIC_PERCENT: '0'}, 200);
    expect(countOf(statuses, 200)).toBe(200);
    expect(arrived).toEqual({grpc: 0, http: 200});
  });

  it('false, even with 100%: every call over HTTP', async () => {
    const {statuses, arrived} = await split({GRPC_ENABLED: 'false', GRPC_TRAFFIC_PERCENT: '100'}, 200);
    expect(countOf(statuses, 200)).toBe(200);
    expect(arrived).toEqual({grpc: 0, http: 200});
  });

  it('true with 100%: every call over gRPC', async () => {
    const {statuses, arrived} = await split({GRPC_ENABLED: 'true', GRPC_TRAFFIC_PERCENT: '100'}, 200);
    expect(countOf(statuses, 200)).toBe(200);
    expect(arrived).toEqual({grpc: 200, http: 0});
  });

  it('an out-of-range percentage is refused at start, naming the variable', async () => {
    await expect(
      startStackGateway(backendEnv(reservation!, payment!, redis!.address), {
        GRPC_ENABLED: 'true',
        GRPC_TRAFFIC_PERCENT: '150',
      }),
    ).rejects.toThrow(/GRPC_TRAFFIC_PERCENT/);
  });
});

describe('x-tacos-backend-protocol (the A/B runs of tacos bench)', () => {
  it('forces every call over the transport asked for, whatever the split', async () => {
    const env = {GRPC_ENABLED: 'true', GRPC_TRAFFIC_PERCENT: '50'};
    const overGrpc = await split(env, 100, {'x-tacos-backend-protocol': 'grpc'});
    expect(countOf(overGrpc.statuses, 200)).toBe(100);
    expect(overGrpc.arrived).toEqual({grpc: 100, http: 0});
    const overHttp = await split(env, 100, {'x-tacos-backend-protocol': 'http'});
    expect(countOf(overHttp.statuses, 200)).toBe(100);
    expect(overHttp.arrived).toEqual({grpc: 0, http: 100});
  });

  it('is honoured even when GRPC_ENABLED is false (the gRPC road is always there, only unused); an unknown transport is a 400 that says so', async () => {
    const gateway = await startStackGateway(backendEnv(reservation!, payment!, redis!.address), {
      LOG_LEVEL: 'error',
      GRPC_ENABLED: 'false',
    });
    gateways.push(gateway);
    const path = '/api/v1/events/evt_2026_concert/availability';
    const before = await mockCalls(reservation!, METHOD);
    const grpcOff = await send(gateway.http, 'GET', path, {auth, headers: {'x-tacos-backend-protocol': 'grpc'}});
    expect(grpcOff.status).toBe(200);
    expect(callsSince(before, await mockCalls(reservation!, METHOD))).toEqual({grpc: 1, http: 0});
    const unknown = await send(gateway.http, 'GET', path, {
      auth,
      headers: {'x-tacos-backend-protocol': 'carrier-pigeon'},
    });
    expect(unknown.status).toBe(400);
    expect(unknown.text).toMatch(/x-tacos-backend-protocol must be grpc or http/);
  });

  it('an unknown transport asked for over the gRPC door, as metadata, is INVALID_ARGUMENT that says so', async () => {
    const gateway = await startStackGateway(backendEnv(reservation!, payment!, redis!.address), {
      LOG_LEVEL: 'error',
      GRPC_ENABLED: 'true',
    });
    gateways.push(gateway);
    const service = await contractClient('gateway.v1.GatewayService', gateway.grpc);
    try {
      const metadata = new grpc.Metadata();
      metadata.set('authorization', auth);
      metadata.set('x-tacos-backend-protocol', 'carrier-pigeon');
      const refused = await unaryCall(service, 'GetEventAvailability', {event_id: 'evt_2026_concert'}, metadata).then(
        () => undefined,
        (error: grpc.ServiceError) => error,
      );
      expect(refused?.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(refused?.details).toMatch(/x-tacos-backend-protocol must be grpc or http/);
    } finally {
      service.close();
    }
  });

  it('is ignored in production: the split decides', async () => {
    const production = {
      GRPC_ENABLED: 'true',
      GRPC_TRAFFIC_PERCENT: '0',
      SERVER_ENVIRONMENT: 'production',
      JWT_SECRET: 'split-tester-secret-0123456789abcdef',
    };
    const gateway = await startStackGateway(backendEnv(reservation!, payment!, redis!.address), {
      LOG_LEVEL: 'error',
      ...production,
    });
    gateways.push(gateway);
    const before = await mockCalls(reservation!, METHOD);
    const answer = await send(gateway.http, 'GET', '/api/v1/events/evt_2026_concert/availability', {
      auth: await bearer('split-tester', production.JWT_SECRET),
      headers: {'x-tacos-backend-protocol': 'grpc'},
    });
    expect(answer.status).toBe(200);
    expect(callsSince(before, await mockCalls(reservation!, METHOD))).toEqual({grpc: 0, http: 1});
  });
});

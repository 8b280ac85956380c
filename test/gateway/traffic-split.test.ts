/**
 * GRPC_ENABLED and GRPC_TRAFFIC_PERCENT: which road the gateway's backend calls take, counted where
 * they arrive (the reservation mock's mock_calls_total by protocol). The split is per call, so a
 * canary percentage moves that share of traffic, not that share of gateways or connections.
 */
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import type {RunningMock} from '../../src/services/mocks/mock-server.js';
import type {TestGateway} from '../helpers/gateway.js';
import {disposeRedis, startRedis, type RedisProcess} from '../helpers/redis.js';
import {backendEnv, bearer, bounded, callsSince, mockCalls, send, startStackGateway, startTestMock} from '../helpers/stack.js';

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

/** `count` availability requests through a gateway so configured; where they arrived. */
async function split(env: Record<string, string>, count: number) {
  const gateway = await startStackGateway(backendEnv(reservation!, payment!, redis!.address), {LOG_LEVEL: 'error', ...env});
  gateways.push(gateway);
  try {
    const before = await mockCalls(reservation!, METHOD);
    const statuses = await bounded(count, CONCURRENCY, async () => {
      const answer = await send(gateway.http, 'GET', '/api/v1/events/evt_2026_concert/availability', {auth});
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
  it('true with 25%: about a quarter of 1,000 calls arrive over gRPC, the rest over HTTP', async () => {
    const {statuses, arrived} = await split({GRPC_ENABLED: 'true', GRPC_TRAFFIC_PERCENT: '25'}, 1000);
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
    await expect(startStackGateway(backendEnv(reservation!, payment!, redis!.address), {GRPC_ENABLED: 'true', GRPC_TRAFFIC_PERCENT: '150'})).rejects.toThrow(
      /GRPC_TRAFFIC_PERCENT/,
    );
  });
});

/**
 * `tacos bench --scenario journey --protocol split --users N`: no x-tacos-backend-protocol header,
 * so a real gateway's sticky split (per user) picks the road of each backend call to the real
 * reservation mock; its answers say which road they took. And the usage errors around it.
 */
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {runBench} from '../../src/services/bench/bench.js';
import {resolveBenchOptions, type BenchRequest} from '../../src/services/bench/options.js';
import {TacosError} from '../../src/services/errors.js';
import type {RunningMock} from '../../src/services/mocks/mock-server.js';
import {runCli} from '../helpers/cli.js';
import type {TestGateway} from '../helpers/gateway.js';
import {disposeRedis, startRedis, type RedisProcess} from '../helpers/redis.js';
import {backendEnv, callsSince, mockCalls, startStackGateway, startTestMock} from '../helpers/stack.js';
import {expectCleanRun} from './figures.js';

let redis: RedisProcess | undefined;
let reservation: RunningMock | undefined;
let payment: RunningMock | undefined;
let halfGrpc: TestGateway | undefined;
let noGrpc: TestGateway | undefined;

beforeAll(async () => {
  redis = await startRedis();
  reservation = await startTestMock('reservation');
  payment = await startTestMock('payment');
  const base = backendEnv(reservation, payment, redis.address);
  halfGrpc = await startStackGateway(base, {GRPC_ENABLED: 'true', GRPC_TRAFFIC_PERCENT: '50'});
  noGrpc = await startStackGateway(base, {GRPC_ENABLED: 'true', GRPC_TRAFFIC_PERCENT: '0'});
});

afterAll(async () => {
  await Promise.allSettled([halfGrpc?.close(), noGrpc?.close()]);
  await Promise.allSettled([reservation?.close(), payment?.close()]);
  await disposeRedis(redis);
});

function split(gateway: TestGateway, request: Partial<BenchRequest> = {}): BenchRequest {
  return {
    scenario: 'journey',
    protocol: 'split',
    engine: 'builtin',
    users: 200,
    httpUrl: gateway.http,
    durationMs: 1000,
    concurrency: 4,
    threads: 2,
    ...request,
  };
}

describe('against a gateway that splits', () => {
  it('at 50 %, 200 users reach the reservation backend over both protocols, and the answers say so', async () => {
    const before = await mockCalls(reservation!, 'GetInventoryStatus');
    const report = await runBench(resolveBenchOptions(split(halfGrpc!)), {signal: new AbortController().signal});
    const calls = callsSince(before, await mockCalls(reservation!, 'GetInventoryStatus'));
    expect(report.runs).toHaveLength(1);
    const [run] = report.runs;
    expectCleanRun(run, "journey, backend split by the gateway's share");
    expect(run.protocol).toBe('split');
    expect(calls.grpc, JSON.stringify(calls)).toBeGreaterThan(0);
    expect(calls.http, JSON.stringify(calls)).toBeGreaterThan(0);
    // Every measured answer named its one road, and both roads were taken.
    expect(run.roads!.grpc).toBeGreaterThan(0);
    expect(run.roads!.http).toBeGreaterThan(0);
    expect(run.roads!.grpc + run.roads!.http).toBe(run.requests);
    expect(report.options.users).toBe(200);
    expect(report.ratio).toBeNull();
  });

  it('with one user (the default), every request takes that user’s one road', async () => {
    const report = await runBench(resolveBenchOptions(split(halfGrpc!, {users: undefined})), {
      signal: new AbortController().signal,
    });
    const [run] = report.runs;
    expectCleanRun(run, "journey, backend split by the gateway's share");
    expect(Object.keys(run.roads!)).toHaveLength(1);
    expect(Object.values(run.roads!)[0]).toBe(run.requests);
  });

  it('at 0 %, 200 users reach the reservation backend over HTTP only', async () => {
    const before = await mockCalls(reservation!, 'GetInventoryStatus');
    const report = await runBench(resolveBenchOptions(split(noGrpc!)), {signal: new AbortController().signal});
    const calls = callsSince(before, await mockCalls(reservation!, 'GetInventoryStatus'));
    const [run] = report.runs;
    expectCleanRun(run, "journey, backend split by the gateway's share");
    expect(calls.grpc).toBe(0);
    // The check, the warm-up and the measured requests.
    expect(calls.http).toBeGreaterThan(run.requests);
    expect(run.roads).toEqual({http: run.requests});
  });
});

describe('the built CLI', () => {
  it("prints the split run's row and how many answers came over each road", async () => {
    const result = await runCli([
      'bench',
      '--scenario',
      'journey',
      '--protocol',
      'split',
      '--users',
      '200',
      '--http-url',
      halfGrpc!.http,
      '--duration',
      '1s',
      '--concurrency',
      '4',
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/, 200 users; REST /);
    expect(result.stdout).toMatch(/^journey, backend split by the gateway's share {2,}builtin /m);
    expect(result.stdout).toMatch(
      /^roads, journey, backend split by the gateway's share: gRPC [\d,]+ \(\d+%\), HTTP [\d,]+ \(\d+%\)$/m,
    );
  });

  it('exits 2 on split with join, and on --users with wrk', async () => {
    const splitJoin = await runCli(['bench', '--scenario', 'join', '--protocol', 'split']);
    expect(splitJoin.code).toBe(2);
    expect(splitJoin.stderr).toMatch(/--protocol split is for the journey scenario/);
    const usersWrk = await runCli(['bench', '--scenario', 'journey', '--engine', 'wrk', '--users', '10']);
    expect(usersWrk.code).toBe(2);
    expect(usersWrk.stderr).toMatch(/wrk sends the same headers with every request/);
  });
});

describe('usage errors', () => {
  function usageErrorOf(request: BenchRequest): TacosError {
    try {
      resolveBenchOptions(request);
    } catch (error) {
      expect(error).toBeInstanceOf(TacosError);
      return error as TacosError;
    }
    throw new Error('resolveBenchOptions accepted the request');
  }
  const target = {httpUrl: 'http://127.0.0.1:8000', grpcAddress: '127.0.0.1:9090'};

  it('refuses split with join', () => {
    const error = usageErrorOf({scenario: 'join', protocol: 'split', engine: 'builtin', ...target});
    expect(error.message).toMatch(/--protocol split is for the journey scenario/);
    expect(error.code).toBe('USAGE');
  });

  it('refuses --users above 1 with wrk and h2load, which send fixed headers', () => {
    for (const engine of ['wrk', 'h2load'] as const) {
      const error = usageErrorOf({scenario: 'journey', protocol: 'split', engine, users: 2, ...target});
      expect(error.message).toMatch(new RegExp(`^${engine} sends the same headers with every request`));
    }
  });

  it('refuses --users out of range, and with join', () => {
    expect(usageErrorOf({scenario: 'journey', protocol: 'split', engine: 'builtin', users: 0, ...target}).message).toBe(
      '--users 0 is out of range: from 1 to 100000.',
    );
    expect(
      usageErrorOf({scenario: 'journey', protocol: 'split', engine: 'builtin', users: 100_001, ...target}).message,
    ).toMatch(/^--users 100001 is out of range/);
    expect(usageErrorOf({scenario: 'join', protocol: 'http', engine: 'builtin', users: 5, ...target}).message).toMatch(
      /^--users is for the journey scenario/,
    );
  });
});

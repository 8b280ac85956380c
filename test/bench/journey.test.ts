/**
 * `tacos bench --scenario journey`: availability of the concert through a real gateway wired to
 * the real mock backends, with a development token, the gateway's backend calls forced over gRPC
 * then over HTTP by the x-tacos-backend-protocol header.
 */
import {afterAll, beforeAll, expect, it} from 'vitest';
import {runBench} from '../../src/services/bench/bench.js';
import {resolveBenchOptions} from '../../src/services/bench/options.js';
import type {RunningMock} from '../../src/services/mocks/mock-server.js';
import type {TestGateway} from '../helpers/gateway.js';
import {runCli} from '../helpers/cli.js';
import {disposeRedis, startRedis, type RedisProcess} from '../helpers/redis.js';
import {backendEnv, mockCalls, startStackGateway, startTestMock} from '../helpers/stack.js';
import {expectCleanRun} from './figures.js';

let redis: RedisProcess | undefined;
let reservation: RunningMock | undefined;
let payment: RunningMock | undefined;
let gateway: TestGateway | undefined;

beforeAll(async () => {
  redis = await startRedis();
  reservation = await startTestMock('reservation');
  payment = await startTestMock('payment');
  gateway = await startStackGateway(backendEnv(reservation, payment, redis.address), {
    GRPC_ENABLED: 'true',
    GRPC_TRAFFIC_PERCENT: '100',
  });
});

afterAll(async () => {
  await gateway?.close();
  await Promise.allSettled([reservation?.close(), payment?.close()]);
  await disposeRedis(redis);
});

it('runs the journey with the backend calls over HTTP: every answer 200, each one a call to the backend', async () => {
  const before = await mockCalls(reservation!, 'GetInventoryStatus');
  const options = resolveBenchOptions({
    scenario: 'journey',
    protocol: 'http',
    engine: 'builtin',
    httpUrl: gateway!.http,
    durationMs: 1000,
    concurrency: 4,
  });
  const report = await runBench(options, {signal: new AbortController().signal});
  expect(report.runs).toHaveLength(1);
  const [run] = report.runs;
  expectCleanRun(run, 'journey, backend over HTTP');
  expect(run.protocol).toBe('http');
  const after = await mockCalls(reservation!, 'GetInventoryStatus');
  // The check, the warm-up and the measured requests all reached the backend over HTTP.
  expect(after.http - before.http).toBeGreaterThan(run.requests);
  expect(report.targets).toEqual({http: gateway!.http, grpc: undefined});
  expect(report.ratio).toBeNull();
});

it('runs both journeys from the CLI, one row each, each over the transport it names', async () => {
  const before = await mockCalls(reservation!, 'GetInventoryStatus');
  const result = await runCli([
    'bench',
    '--scenario',
    'journey',
    '--http-url',
    gateway!.http,
    '--duration',
    '1s',
    '--concurrency',
    '4',
    '--json',
  ]);
  expect(result.code, result.stderr).toBe(0);
  const report = JSON.parse(result.stdout);
  expect(report.runs.map((run: {label: string}) => run.label)).toEqual([
    'journey, backend over gRPC',
    'journey, backend over HTTP',
  ]);
  expectCleanRun(report.runs[0], 'journey, backend over gRPC');
  expectCleanRun(report.runs[1], 'journey, backend over HTTP');
  const after = await mockCalls(reservation!, 'GetInventoryStatus');
  expect(after.grpc - before.grpc).toBeGreaterThan(report.runs[0].requests);
  expect(after.http - before.http).toBeGreaterThan(report.runs[1].requests);
});

/**
 * The steps of runRollout against a real HTTP server standing in for the gateway: it answers
 * /api/v1/rollout with totals that grow as the test says, and takes each share the rollout writes
 * (setShare here moves its settings as a reload would). The real gateway: rollout.e2e.test.ts.
 */
import {createServer, type Server} from 'node:http';
import type {AddressInfo} from 'node:net';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {ROAD_BUCKETS_MS} from '../../src/services/gateway/rollout/judge.js';
import type {WrittenShare} from '../../src/services/rollout/applied.js';
import {runRollout, type RolloutTick} from '../../src/services/rollout/rollout.js';

let server: Server;
let url: string;
let share: WrittenShare;
let generation: number;
/** Calls per read: gRPC calls of `grpcMs` each, HTTP calls of 3 ms. */
let traffic: {grpcCalls: number; grpcMs: number; httpCalls: number};
const totals = {grpc: ROAD_BUCKETS_MS.map(() => 0), http: ROAD_BUCKETS_MS.map(() => 0)};
const bucket = (ms: number) => ROAD_BUCKETS_MS.findIndex((upper) => ms <= upper);

beforeAll(async () => {
  server = createServer((_request, response) => {
    totals.grpc[bucket(traffic.grpcMs)] += traffic.grpcCalls;
    totals.http[bucket(3)] += traffic.httpCalls;
    const road = (buckets: number[]) => ({
      calls: buckets.reduce((a, b) => a + b, 0),
      failures: 0,
      buckets: [...buckets],
    });
    const window = {calls: 0, failures: 0, error_rate: 0, p50_ms: 0, p99_ms: 0};
    response.writeHead(200, {'content-type': 'application/json'});
    response.end(
      JSON.stringify({
        pid: 7,
        workers: [],
        settings: {
          env_file: '.env.staging',
          grpc_enabled: share.grpcEnabled,
          grpc_traffic_percent: share.percent,
          generation,
          loaded_at: new Date().toISOString(),
          fixed_by_process_env: [],
          restart_needed: [],
          last_error: null,
        },
        thresholds: {
          auto_rollback: true,
          window_seconds: 30,
          min_calls: 5,
          max_error_rate: 0.05,
          max_p99_ratio: 2,
          min_p99_ms: 250,
        },
        backends: {
          reservation: {
            configured_percent: share.percent,
            effective_percent: share.percent,
            rolled_back: null,
            window: {grpc: window, http: window},
            totals: {grpc: road(totals.grpc), http: road(totals.http)},
          },
        },
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
});

function start(initial: WrittenShare) {
  share = initial;
  generation = 1;
  const written: WrittenShare[] = [];
  const ticks: RolloutTick[] = [];
  const setShare = async (next: WrittenShare) => {
    written.push(next);
    share = next;
    generation += 1;
    return true;
  };
  return {written, ticks, setShare};
}

describe('runRollout', () => {
  it('healthy steps: every share written and taken, in order, reaching the last', async () => {
    traffic = {grpcCalls: 10, grpcMs: 4, httpCalls: 10};
    const run = start({grpcEnabled: false, percent: 0});
    const result = await runRollout({
      gateway: url,
      label: '.env.staging',
      steps: [10, 100],
      intervalMs: 150,
      tickMs: 50,
      setShare: run.setShare,
      onTick: (tick) => run.ticks.push(tick),
    });
    expect(result).toMatchObject({outcome: 'reached', percent: 100});
    expect(run.written).toEqual([
      {grpcEnabled: true, percent: 10},
      {grpcEnabled: true, percent: 100},
    ]);
    expect(run.ticks.filter((tick) => tick.verdict.outcome === 'healthy').map((tick) => tick.percent)).toEqual([
      10, 100,
    ]);
  });

  it('a slow gRPC road fails the step at once and puts the starting share back', async () => {
    traffic = {grpcCalls: 10, grpcMs: 2000, httpCalls: 10};
    const run = start({grpcEnabled: true, percent: 5});
    const result = await runRollout({
      gateway: url,
      label: '.env.staging',
      steps: [25, 50],
      intervalMs: 60_000,
      tickMs: 50,
      setShare: run.setShare,
    });
    expect(result).toMatchObject({
      outcome: 'failed',
      percent: 5,
      failedAt: {percent: 25, backend: 'reservation', failed: 'p99'},
    });
    expect(result.message).toMatch(/Step 25 % failed: reservation p99: gRPC p99 .* The share is back at 5 %/);
    expect(run.written).toEqual([
      {grpcEnabled: true, percent: 25},
      {grpcEnabled: true, percent: 5},
    ]);
  });

  it('no traffic: the step fails at its end, suggesting --min-calls 0; with minCalls 0 it passes', async () => {
    traffic = {grpcCalls: 0, grpcMs: 4, httpCalls: 0};
    const run = start({grpcEnabled: false, percent: 0});
    const result = await runRollout({
      gateway: url,
      label: '.env.staging',
      steps: [10],
      intervalMs: 100,
      tickMs: 50,
      setShare: run.setShare,
    });
    expect(result).toMatchObject({outcome: 'failed', failedAt: {failed: 'not_enough_traffic'}});
    expect(result.message).toMatch(/--min-calls 0/);
    expect(run.written.at(-1)).toEqual({grpcEnabled: false, percent: 0});

    const again = start({grpcEnabled: false, percent: 0});
    const passed = await runRollout({
      gateway: url,
      label: '.env.staging',
      steps: [10],
      intervalMs: 100,
      tickMs: 50,
      minCalls: 0,
      setShare: again.setShare,
    });
    expect(passed).toMatchObject({outcome: 'reached', percent: 10});
  });

  it('interrupted mid-step: the share goes back to the last healthy step', async () => {
    traffic = {grpcCalls: 10, grpcMs: 4, httpCalls: 10};
    const run = start({grpcEnabled: true, percent: 1});
    const abort = new AbortController();
    const result = await runRollout({
      gateway: url,
      label: '.env.staging',
      steps: [5, 50],
      intervalMs: 150,
      tickMs: 50,
      setShare: run.setShare,
      signal: abort.signal,
      // Ctrl-C on the first tick of the 50 % step (5 % was judged healthy).
      onTick: (tick) => tick.percent === 50 && abort.abort(),
    });
    expect(result).toMatchObject({outcome: 'interrupted', percent: 5});
    expect(run.written).toEqual([
      {grpcEnabled: true, percent: 5},
      {grpcEnabled: true, percent: 50},
      {grpcEnabled: true, percent: 5},
    ]);
  });
});

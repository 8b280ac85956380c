import {describe, expect, it} from 'vitest';
import {DEFAULT_ROLLBACK_THRESHOLDS, ROAD_BUCKETS_MS} from '../../src/services/gateway/rollout/judge.js';
import type {RoadTotals, RolloutStatus} from '../../src/services/rollout/gateway-status.js';
import {judgeStep, stepFigures, thresholdsOf} from '../../src/services/rollout/step.js';
import {parseSteps} from '../../src/services/rollout/rollout.js';

/** Totals with `calls` calls in the bucket of `ms`. */
function totals(entries: Array<[ms: number, calls: number]>, failures = 0): RoadTotals {
  const buckets = ROAD_BUCKETS_MS.map(() => 0);
  for (const [ms, calls] of entries) buckets[ROAD_BUCKETS_MS.findIndex((upper) => ms <= upper)] += calls;
  return {calls: buckets.reduce((a, b) => a + b, 0), failures, buckets};
}

function status(reservation: {grpc: RoadTotals; http: RoadTotals}, rolledBack: string | null = null): RolloutStatus {
  const window = {calls: 0, failures: 0, error_rate: 0, p50_ms: 0, p99_ms: 0};
  return {
    pid: 1,
    workers: [],
    settings: {
      env_file: '.env.local',
      grpc_enabled: true,
      grpc_traffic_percent: 50,
      generation: 1,
      loaded_at: '2026-12-04T10:00:00.000Z',
      fixed_by_process_env: [],
      restart_needed: [],
      last_error: null,
    },
    thresholds: {
      auto_rollback: true,
      window_seconds: 30,
      min_calls: 20,
      max_error_rate: 0.05,
      max_p99_ratio: 2,
      min_p99_ms: 250,
    },
    backends: {
      reservation: {
        configured_percent: 50,
        effective_percent: 50,
        rolled_back: rolledBack
          ? {at: '2026-12-04T10:00:01.000Z', failed: 'p99', detail: rolledBack, grpc: window, http: window}
          : null,
        window: {grpc: window, http: window},
        totals: reservation,
      },
    },
  };
}

describe('a rollout step: totals now minus totals at the step start, judged', () => {
  it('counts only the calls of the step: slow calls before it do not fail it', () => {
    // Before the step: 100 slow gRPC calls (2 s). During it: 30 fast ones.
    const start = status({grpc: totals([[2000, 100]], 10), http: totals([[3, 100]])});
    const now = status({
      grpc: totals(
        [
          [2000, 100],
          [4, 30],
        ],
        10,
      ),
      http: totals([[3, 130]]),
    });
    const step = stepFigures(start, now, thresholdsOf(now))['reservation'];
    expect(step.grpc).toMatchObject({calls: 30, failures: 0, errorRate: 0});
    expect(step.grpc.p99Ms).toBeLessThanOrEqual(5);
    expect(step.http.calls).toBe(30);
    expect(step.judgement).toMatchObject({enough: true, healthy: true});
    expect(judgeStep({reservation: step}, 50, true)).toEqual({outcome: 'healthy'});
  });

  it('fails at once on the slow calls of the step, naming the backend and p99', () => {
    const start = status({grpc: totals([[4, 100]]), http: totals([[3, 100]])});
    const now = status({
      grpc: totals([
        [4, 100],
        [2000, 25],
      ]),
      http: totals([[3, 125]]),
    });
    const verdict = judgeStep(stepFigures(start, now, thresholdsOf(now)), 50, false);
    expect(verdict).toMatchObject({outcome: 'failed', backend: 'reservation', failed: 'p99'});
    expect((verdict as {detail: string}).detail).toMatch(/gRPC p99/);
  });

  it('fails on the failures of the step only', () => {
    const start = status({grpc: totals([[4, 100]], 90), http: totals([[3, 100]])});
    const now = status({grpc: totals([[4, 130]], 100), http: totals([[3, 130]])});
    const verdict = judgeStep(stepFigures(start, now, thresholdsOf(now)), 50, false);
    // 10 failures of 30 calls in the step: 33 % > 5 %.
    expect(verdict).toMatchObject({outcome: 'failed', backend: 'reservation', failed: 'errors'});
  });

  it('too few gRPC calls: watching during the interval, a failure at its end, passes with --min-calls 0', () => {
    const start = status({grpc: totals([]), http: totals([])});
    const now = status({grpc: totals([[4, 5]]), http: totals([[3, 5]])});
    expect(judgeStep(stepFigures(start, now, thresholdsOf(now)), 5, false)).toEqual({outcome: 'watching'});
    expect(judgeStep(stepFigures(start, now, thresholdsOf(now)), 5, true)).toMatchObject({
      outcome: 'failed',
      failed: 'not_enough_traffic',
    });
    expect(judgeStep(stepFigures(start, now, thresholdsOf(now, 0)), 5, true)).toEqual({outcome: 'healthy'});
  });

  it('a backend nobody called in the step is not judged; a step without any call is not enough traffic', () => {
    const idle = (figures: RolloutStatus) => ({
      ...figures,
      backends: {
        ...figures.backends,
        payment: {...figures.backends.reservation, totals: {grpc: totals([]), http: totals([])}},
      },
    });
    const start = idle(status({grpc: totals([]), http: totals([])}));
    const now = idle(status({grpc: totals([[4, 30]]), http: totals([[3, 30]])}));
    expect(judgeStep(stepFigures(start, now, thresholdsOf(now)), 50, true)).toEqual({outcome: 'healthy'});
    expect(judgeStep(stepFigures(start, start, thresholdsOf(start)), 50, true)).toMatchObject({
      outcome: 'failed',
      failed: 'not_enough_traffic',
    });
  });

  it('a rollback by the gateway fails the step', () => {
    const start = status({grpc: totals([]), http: totals([])});
    const now = status({grpc: totals([]), http: totals([])}, 'gRPC p99 2000 ms > 250 ms');
    expect(judgeStep(stepFigures(start, now, DEFAULT_ROLLBACK_THRESHOLDS), 5, false)).toMatchObject({
      outcome: 'failed',
      failed: 'rolled_back',
    });
  });
});

describe('--steps', () => {
  it('takes increasing whole percents', () => {
    expect(parseSteps('1, 5,25,50,100')).toEqual([1, 5, 25, 50, 100]);
  });
  it.each(['5,1', '1,1', '1,101', '-1,5', '1.5', 'a', '1,,2', ''])('refuses %j', (input) => {
    expect(() => parseSteps(input)).toThrow(/--steps/);
  });
});

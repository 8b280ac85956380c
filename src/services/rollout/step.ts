import {
  figuresFromBuckets,
  judgeRoads,
  type Judgement,
  type RoadFigures,
  type RollbackThresholds,
} from '../gateway/rollout/judge.js';
import type {RoadTotals, RolloutStatus} from './gateway-status.js';

/** One backend's figures over a step: what its two roads did since the step began, and the verdict. */
export interface BackendStep {
  grpc: RoadFigures;
  http: RoadFigures;
  judgement: Judgement;
  /** The gateway rolled this backend back by itself (its detail), or null. */
  rolledBack: string | null;
}

/** The gateway's thresholds as judgeRoads takes them; minCalls overridden by --min-calls. */
export function thresholdsOf(status: RolloutStatus, minCalls?: number): RollbackThresholds {
  const {thresholds} = status;
  return {
    minCalls: minCalls ?? thresholds.min_calls,
    maxErrorRate: thresholds.max_error_rate,
    maxP99Ratio: thresholds.max_p99_ratio,
    minP99Ms: thresholds.min_p99_ms,
  };
}

/** A road's figures between two readings of its totals (the gateway's counters only grow). */
export function roadDelta(start: RoadTotals | undefined, now: RoadTotals): RoadFigures {
  const counts = now.buckets.map((count, index) => count - (start?.buckets[index] ?? 0));
  return figuresFromBuckets(counts, now.failures - (start?.failures ?? 0));
}

/** Every backend's figures and verdict since `start` (the reading when the step began). */
export function stepFigures(
  start: RolloutStatus,
  now: RolloutStatus,
  thresholds: RollbackThresholds,
): Record<string, BackendStep> {
  const backends: Record<string, BackendStep> = {};
  for (const [name, backend] of Object.entries(now.backends)) {
    const before = start.backends[name]?.totals;
    const grpc = roadDelta(before?.grpc, backend.totals.grpc);
    const http = roadDelta(before?.http, backend.totals.http);
    backends[name] = {
      grpc,
      http,
      judgement: judgeRoads(grpc, http, thresholds),
      rolledBack: backend.rolled_back ? backend.rolled_back.detail : null,
    };
  }
  return backends;
}

export type StepVerdict =
  | {outcome: 'watching'}
  | {outcome: 'healthy'}
  | {
      outcome: 'failed';
      backend: string;
      failed: 'errors' | 'p99' | 'rolled_back' | 'not_enough_traffic';
      detail: string;
    };

/**
 * A step fails at once on an unhealthy backend (with enough calls) or a rollback by the gateway; at
 * the end of its interval it passes when every backend that was called had enough gRPC calls and was
 * healthy. A backend nobody called in the step (no call on either road) has nothing to judge, nor has
 * a 0 % step; a step in which no backend was called at all has not shown anything: not enough traffic.
 */
export function judgeStep(backends: Record<string, BackendStep>, percent: number, ended: boolean): StepVerdict {
  for (const [backend, step] of Object.entries(backends)) {
    if (step.rolledBack)
      return {
        outcome: 'failed',
        backend,
        failed: 'rolled_back',
        detail: `the gateway rolled it back: ${step.rolledBack}`,
      };
    if (percent > 0 && step.judgement.enough && !step.judgement.healthy)
      return {outcome: 'failed', backend, failed: step.judgement.failed ?? 'errors', detail: step.judgement.detail};
  }
  if (!ended) return {outcome: 'watching'};
  if (percent > 0) {
    const called = Object.entries(backends).filter(([, step]) => step.grpc.calls + step.http.calls > 0);
    // --min-calls 0 asks to advance whatever the traffic.
    if (called.length === 0 && Object.values(backends).some((step) => !step.judgement.enough))
      return {
        outcome: 'failed',
        backend: 'every backend',
        failed: 'not_enough_traffic',
        detail: 'not enough traffic to judge: no backend call in the step',
      };
    for (const [backend, step] of called) {
      if (!step.judgement.enough)
        return {
          outcome: 'failed',
          backend,
          failed: 'not_enough_traffic',
          detail: `not enough traffic to judge: ${step.judgement.detail}`,
        };
    }
  }
  return {outcome: 'healthy'};
}

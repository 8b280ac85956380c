/**
 * Whether the gRPC road to a backend holds against the HTTP road: the one rule behind the gateway's
 * automatic rollback and each step of `tacos rollout`.
 */

/** Upper bounds (ms) of the latency buckets both roads are counted in; the last is +Inf. */
export const ROAD_BUCKETS_MS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, Infinity];

export interface RoadFigures {
  calls: number;
  /** Failures of the backend (timeouts, unavailable, broken answers), never refusals of the request. */
  failures: number;
  /** failures / calls; 0 without calls. */
  errorRate: number;
  p50Ms: number;
  p99Ms: number;
}

export interface RollbackThresholds {
  /** gRPC calls needed before the road is judged. */
  minCalls: number;
  /** How far the gRPC failure rate may exceed the HTTP one (0..1). */
  maxErrorRate: number;
  /** How many times the HTTP p99 the gRPC p99 may be... */
  maxP99Ratio: number;
  /** ...though a gRPC p99 under this is never too slow (and is the limit when HTTP has too few calls). */
  minP99Ms: number;
}

export const DEFAULT_ROLLBACK_THRESHOLDS: RollbackThresholds = {
  minCalls: 20,
  maxErrorRate: 0.05,
  maxP99Ratio: 2,
  minP99Ms: 250,
};

export interface Judgement {
  /** The gRPC road had at least minCalls calls: the verdict means something. */
  enough: boolean;
  /** False only when there were enough calls and a figure is past its threshold. */
  healthy: boolean;
  /** The figure that failed. */
  failed?: 'errors' | 'p99';
  /** The figures and limits in a sentence, for logs and the rollout's report. */
  detail: string;
}

/**
 * The quantile `q` (0..1) of calls counted per ROAD_BUCKETS_MS bucket (not cumulative), as Prometheus's
 * histogram_quantile reads a histogram: linear within the bucket; the +Inf bucket answers its lower bound.
 */
export function quantileMs(counts: readonly number[], q: number): number {
  const total = counts.reduce((sum, count) => sum + count, 0);
  if (total === 0) return 0;
  const rank = q * total;
  let below = 0;
  for (let index = 0; index < ROAD_BUCKETS_MS.length; index++) {
    const count = counts[index] ?? 0;
    if (count > 0 && below + count >= rank) {
      const lower = index === 0 ? 0 : ROAD_BUCKETS_MS[index - 1];
      const upper = ROAD_BUCKETS_MS[index];
      if (upper === Infinity) return lower;
      return lower + (upper - lower) * ((rank - below) / count);
    }
    below += count;
  }
  return ROAD_BUCKETS_MS[ROAD_BUCKETS_MS.length - 2];
}

/** The index of the bucket a call of `ms` falls in. */
export function bucketIndex(ms: number): number {
  const index = ROAD_BUCKETS_MS.findIndex((upper) => ms <= upper);
  return index === -1 ? ROAD_BUCKETS_MS.length - 1 : index;
}

export function figuresFromBuckets(counts: readonly number[], failures: number): RoadFigures {
  const calls = counts.reduce((sum, count) => sum + count, 0);
  return {
    calls,
    failures,
    errorRate: calls === 0 ? 0 : failures / calls,
    p50Ms: quantileMs(counts, 0.5),
    p99Ms: quantileMs(counts, 0.99),
  };
}

const percent = (rate: number) => `${(rate * 100).toFixed(1)} %`;
const ms = (value: number) => `${Math.round(value)} ms`;

/** Judges the gRPC road against the HTTP road (figures of the same window or step). */
export function judgeRoads(grpc: RoadFigures, http: RoadFigures, thresholds: RollbackThresholds): Judgement {
  if (grpc.calls < thresholds.minCalls) {
    return {
      enough: false,
      healthy: true,
      detail: `${grpc.calls} gRPC calls, fewer than the ${thresholds.minCalls} needed to judge`,
    };
  }
  // Without enough HTTP calls there is no HTTP figure to compare with: the gRPC road is judged alone.
  const baseline = http.calls >= thresholds.minCalls;
  const errorLimit = (baseline ? http.errorRate : 0) + thresholds.maxErrorRate;
  if (grpc.errorRate > errorLimit) {
    return {
      enough: true,
      healthy: false,
      failed: 'errors',
      detail: `gRPC error rate ${percent(grpc.errorRate)} (${grpc.failures} of ${grpc.calls}) > ${percent(errorLimit)} (HTTP ${baseline ? percent(http.errorRate) : 'not enough calls'} + ${percent(thresholds.maxErrorRate)})`,
    };
  }
  const p99Limit = Math.max(baseline ? thresholds.maxP99Ratio * http.p99Ms : 0, thresholds.minP99Ms);
  if (grpc.p99Ms > p99Limit) {
    return {
      enough: true,
      healthy: false,
      failed: 'p99',
      detail: `gRPC p99 ${ms(grpc.p99Ms)} > ${ms(p99Limit)} (HTTP p99 ${baseline ? ms(http.p99Ms) : 'not enough calls'}, ratio ${thresholds.maxP99Ratio}, floor ${ms(thresholds.minP99Ms)})`,
    };
  }
  return {
    enough: true,
    healthy: true,
    detail: `gRPC error rate ${percent(grpc.errorRate)}, p99 ${ms(grpc.p99Ms)} within ${percent(errorLimit)} and ${ms(p99Limit)}`,
  };
}

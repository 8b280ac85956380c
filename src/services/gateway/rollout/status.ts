import {figuresOf, BACKENDS, type BackendName, type BackendSnapshot, type RolloutController} from './controller.js';
import type {RoadFigures} from './judge.js';
import type {LiveSettings, SettingsStatus} from './live-settings.js';
import {addCounts, emptyRoads, type RoadsCounts} from './road-window.js';
import type {RolloutThresholds} from './settings.js';

/** One gateway process's rollout: what a cluster worker gives the primary's gather. */
export interface RolloutState {
  pid: number;
  settings: SettingsStatus;
  thresholds: RolloutThresholds;
  backends: Record<BackendName, BackendSnapshot>;
}

export function rolloutState(controller: RolloutController, live: LiveSettings): RolloutState {
  return {
    pid: process.pid,
    settings: live.status(),
    thresholds: live.settings.thresholds,
    backends: controller.snapshot(),
  };
}

const figuresJson = (figures: RoadFigures) => ({
  calls: figures.calls,
  failures: figures.failures,
  error_rate: figures.errorRate,
  p50_ms: figures.p50Ms,
  p99_ms: figures.p99Ms,
});

/** GET /api/v1/rollout's JSON: what `tacos rollout` and `tacos env switch` read. */
export type RolloutStatus = ReturnType<typeof rolloutStatusBody>;

/**
 * GET /api/v1/rollout's answer (README, "Rollout status") from the state of each gateway process:
 * one when single, every worker's in a cluster (`pid` the primary's). Windows and totals are summed;
 * the generation is the lowest (all took it), a backend is rolled back if any process rolled it back.
 */
export function rolloutStatusBody(pid: number, workers: number[], states: RolloutState[]) {
  // The settings of the worker that is behind, so that the answer never claims more than all have taken.
  const behind = states.reduce((low, state) => (state.settings.generation < low.settings.generation ? state : low));
  const backend = (name: BackendName) => {
    const window = emptyRoads();
    const totals = emptyRoads();
    const sum = (into: RoadsCounts, from: RoadsCounts) => {
      addCounts(into.grpc, from.grpc);
      addCounts(into.http, from.http);
    };
    for (const state of states) {
      sum(window, state.backends[name].window);
      sum(totals, state.backends[name].totals);
    }
    const figures = figuresOf(window);
    const rollback = states.map((state) => state.backends[name].rolledBack).find(Boolean) ?? null;
    const own = behind.backends[name];
    return {
      configured_percent: own.configuredPercent,
      effective_percent: rollback ? 0 : Math.min(...states.map((state) => state.backends[name].effectivePercent)),
      rolled_back: rollback && {...rollback, grpc: figuresJson(rollback.grpc), http: figuresJson(rollback.http)},
      window: {grpc: figuresJson(figures.grpc), http: figuresJson(figures.http)},
      totals,
    };
  };
  const {thresholds} = behind;
  return {
    pid,
    workers,
    settings: behind.settings,
    thresholds: {
      auto_rollback: thresholds.autoRollback,
      window_seconds: thresholds.windowSeconds,
      min_calls: thresholds.minCalls,
      max_error_rate: thresholds.maxErrorRate,
      max_p99_ratio: thresholds.maxP99Ratio,
      min_p99_ms: thresholds.minP99Ms,
    },
    backends: Object.fromEntries(BACKENDS.map((name) => [name, backend(name)])),
  };
}

import {EnvReader, type Environment} from '../../config.js';
import {TacosError} from '../../errors.js';
import {DEFAULT_ROLLBACK_THRESHOLDS, type RollbackThresholds} from './judge.js';

/** The variables the gateway applies on a reload, without a restart (README, "Live settings"). */
export const LIVE_VARIABLES = [
  'GRPC_ENABLED',
  'GRPC_TRAFFIC_PERCENT',
  'ROLLOUT_AUTO_ROLLBACK',
  'ROLLOUT_WINDOW',
  'ROLLOUT_MIN_CALLS',
  'ROLLOUT_MAX_ERROR_RATE',
  'ROLLOUT_MAX_P99_RATIO',
  'ROLLOUT_MIN_P99',
] as const;

/** The longest sliding window of the automatic rollback: it bounds the slots kept per road. */
export const MAX_WINDOW_SECONDS = 600;

export interface RolloutThresholds extends RollbackThresholds {
  autoRollback: boolean;
  windowSeconds: number;
}

export interface RolloutSettings {
  /** False: no backend call takes gRPC (the gRPC port itself opens or closes only on a restart). */
  grpcEnabled: boolean;
  /** With grpcEnabled, the share (0..100) of callers whose backend calls take gRPC. */
  grpcTrafficPercent: number;
  thresholds: RolloutThresholds;
}

/** The live settings from the environment; a bad value throws a TacosError naming its variable. */
export function readRolloutSettings(env: Environment): RolloutSettings {
  const read = new EnvReader(env);
  const windowSeconds = Math.round(read.durationMs('ROLLOUT_WINDOW', 30_000, 1000) / 1000);
  if (windowSeconds > MAX_WINDOW_SECONDS) {
    throw new TacosError(
      `ROLLOUT_WINDOW=${env.ROLLOUT_WINDOW?.trim()} is not valid: expected at most ${MAX_WINDOW_SECONDS}s.`,
      {
        hint: 'Fix ROLLOUT_WINDOW in the env file or the environment.',
        code: 'INVALID_CONFIG',
      },
    );
  }
  return {
    grpcEnabled: read.bool('GRPC_ENABLED', false),
    grpcTrafficPercent: read.int('GRPC_TRAFFIC_PERCENT', 100, 0, 100),
    thresholds: {
      autoRollback: read.bool('ROLLOUT_AUTO_ROLLBACK', true),
      windowSeconds,
      minCalls: read.int('ROLLOUT_MIN_CALLS', DEFAULT_ROLLBACK_THRESHOLDS.minCalls, 1),
      maxErrorRate: read.number('ROLLOUT_MAX_ERROR_RATE', DEFAULT_ROLLBACK_THRESHOLDS.maxErrorRate),
      maxP99Ratio: read.number('ROLLOUT_MAX_P99_RATIO', DEFAULT_ROLLBACK_THRESHOLDS.maxP99Ratio),
      minP99Ms: read.durationMs('ROLLOUT_MIN_P99', DEFAULT_ROLLBACK_THRESHOLDS.minP99Ms),
    },
  };
}

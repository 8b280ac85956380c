import {setTimeout as sleep} from 'node:timers/promises';
import {TacosError, usageError} from '../errors.js';
import {describeApplied, settingsBefore, waitUntilTaken, type WrittenShare} from './applied.js';
import {readRolloutStatus, type RolloutStatus} from './gateway-status.js';
import {judgeStep, stepFigures, thresholdsOf, type BackendStep, type StepVerdict} from './step.js';

export interface RolloutOptions {
  gateway: string;
  /** The env file's label (.env.staging), for messages. */
  label: string;
  steps: number[];
  intervalMs: number;
  minCalls?: number;
  /** Writes the share to the env file (the env switch); resolves to whether the file changed. */
  setShare: (share: WrittenShare) => Promise<boolean>;
  /** Aborted by Ctrl-C: stop watching, leave the last healthy share. */
  signal?: AbortSignal;
  onTick?: (tick: RolloutTick) => void;
  /** How often the gateway is read while watching (default 1 s). */
  tickMs?: number;
}

export interface RolloutTick {
  step: number;
  percent: number;
  elapsedSeconds: number;
  backends: Record<string, BackendStep>;
  verdict: StepVerdict;
}

export interface RolloutResult {
  outcome: 'reached' | 'failed' | 'interrupted';
  /** The share the file says now. */
  percent: number;
  message: string;
  /** On failure: the step's percent, the backend and figure at fault. */
  failedAt?: {percent: number; backend: string; failed: string; detail: string};
}

/** Exit codes of `tacos rollout grpc` beyond the shared ones (README "Exit codes"). */
export const ROLLOUT_FAILED_EXIT = 3;

/** The steps of --steps: increasing whole numbers 0..100. */
export function parseSteps(input: string): number[] {
  const parts = input.split(',').map((part) => part.trim());
  const steps = parts.map(Number);
  const bad = parts.find(
    (part, index) => part === '' || !Number.isInteger(steps[index]) || steps[index] < 0 || steps[index] > 100,
  );
  if (bad !== undefined)
    throw usageError(
      `--steps ${input}: "${bad}" is not a whole number from 0 to 100.`,
      'Give increasing percents such as --steps 1,5,25,50,100.',
    );
  for (let index = 1; index < steps.length; index++) {
    if (steps[index] <= steps[index - 1])
      throw usageError(
        `--steps ${input} is not increasing (${steps[index - 1]} then ${steps[index]}).`,
        'Give increasing percents such as --steps 1,5,25,50,100.',
      );
  }
  return steps;
}

/**
 * `tacos rollout grpc`: raises the gRPC share step by step, each step written to the env file and
 * taken by the running gateway, then watched for the interval against the gateway's thresholds. A
 * failed step puts the starting share back.
 */
export async function runRollout(options: RolloutOptions): Promise<RolloutResult> {
  const initial = await readRolloutStatus(options.gateway);
  const start: WrittenShare = {
    grpcEnabled: initial.settings.grpc_enabled,
    percent: initial.settings.grpc_traffic_percent,
  };
  try {
    return await runSteps(options, start);
  } catch (error) {
    // A share not taken, or a gateway gone mid-step: the file goes back to the starting share (best effort).
    await options.setShare(start).catch(() => undefined);
    throw error;
  }
}

async function runSteps(options: RolloutOptions, start: WrittenShare): Promise<RolloutResult> {
  const startLabel = start.grpcEnabled ? `${start.percent} %` : 'HTTP only (GRPC_ENABLED=false)';
  let lastHealthy = start;
  const tickMs = options.tickMs ?? 1000;

  const putBack = async (share: WrittenShare): Promise<string> => {
    await applyShare(options, share);
    return share.grpcEnabled ? `${share.percent} %` : 'HTTP only (GRPC_ENABLED=false)';
  };

  for (const [index, percent] of options.steps.entries()) {
    if (options.signal?.aborted) break;
    await applyShare(options, {grpcEnabled: true, percent});
    const stepStart = await readRolloutStatus(options.gateway);
    const thresholds = thresholdsOf(stepStart, options.minCalls);
    const began = performance.now();
    let verdict: StepVerdict = {outcome: 'watching'};
    while (verdict.outcome === 'watching') {
      await sleep(tickMs, undefined, {signal: options.signal}).catch(() => undefined);
      if (options.signal?.aborted) break;
      const now = await readRolloutStatus(options.gateway);
      const elapsedMs = performance.now() - began;
      const backends = stepFigures(stepStart, now, thresholds);
      verdict = judgeStep(backends, percent, elapsedMs >= options.intervalMs);
      options.onTick?.({step: index + 1, percent, elapsedSeconds: elapsedMs / 1000, backends, verdict});
    }
    if (verdict.outcome === 'failed') {
      const back = await putBack(start);
      return {
        outcome: 'failed',
        percent: start.percent ?? 0,
        failedAt: {percent, backend: verdict.backend, failed: verdict.failed, detail: verdict.detail},
        message: `Step ${percent} % failed: ${verdict.backend} ${verdict.failed}: ${verdict.detail}. The share is back at ${back}.${verdict.failed === 'not_enough_traffic' ? ' Send traffic through the gateway, or pass --min-calls 0 to advance anyway.' : ''}`,
      };
    }
    if (verdict.outcome === 'healthy') lastHealthy = {grpcEnabled: true, percent};
  }
  if (options.signal?.aborted) {
    const current = await readRolloutStatus(options.gateway).catch(() => undefined);
    const unjudged = !current || !sameShare(current, lastHealthy);
    const left = unjudged ? await putBack(lastHealthy) : `${lastHealthy.percent} %`;
    return {
      outcome: 'interrupted',
      percent: lastHealthy.percent ?? 0,
      message: `Interrupted: the share is left at ${left}, the last healthy step${lastHealthy === start ? ' (the starting share)' : ''}.`,
    };
  }
  const last = options.steps.at(-1) ?? 0;
  return {
    outcome: 'reached',
    percent: last,
    message: `Reached ${last} % over gRPC (from ${startLabel}); every step was healthy.`,
  };
}

function sameShare(status: RolloutStatus, share: WrittenShare): boolean {
  return status.settings.grpc_enabled === share.grpcEnabled && status.settings.grpc_traffic_percent === share.percent;
}

/** Writes a share and waits until the gateway took it; one it does not take stops the rollout. */
async function applyShare(options: RolloutOptions, share: WrittenShare): Promise<void> {
  const before = await settingsBefore(options.gateway);
  const changed = await options.setShare(share);
  // An unchanged file causes no reload: the gateway only has to run the share already.
  const report = await waitUntilTaken(options.gateway, share, {before: changed ? before : undefined});
  if (!report.taken)
    throw new TacosError(describeApplied(options.label, share, report), {
      hint: 'The env file was put back to the starting share. Fix that, then run the rollout again.',
      code: 'NOT_TAKEN',
      exitCode: ROLLOUT_FAILED_EXIT,
    });
}

import {setTimeout as sleep} from 'node:timers/promises';
import {TacosError} from '../errors.js';
import {GATEWAY_UNREACHABLE, NOT_A_TACOS_GATEWAY, readRolloutStatus, type RolloutStatus} from './gateway-status.js';

/** What a switch wrote for the gateway to take. */
export interface WrittenShare {
  grpcEnabled: boolean;
  /** Undefined when the switch did not set GRPC_TRAFFIC_PERCENT. */
  percent?: number;
}

export type NotTakenReason = 'fixed_by_process_env' | 'last_error' | 'timeout' | 'unreachable' | 'not_a_tacos_gateway';

export type AppliedReport =
  {taken: true; pid: number; seconds: number} | {taken: false; reason: NotTakenReason; detail: string};

export interface WaitOptions {
  /** The settings read before the write; undefined if the gateway could not be read then. */
  before?: SettingsBefore;
  intervalMs?: number;
  timeoutMs?: number;
}

const LIVE_KEYS = ['GRPC_ENABLED', 'GRPC_TRAFFIC_PERCENT'];

export interface SettingsBefore {
  generation: number;
  lastError: string | null;
}

/** The settings before a write, or undefined when the gateway cannot be read (the wait then says why). */
export async function settingsBefore(gateway: string): Promise<SettingsBefore | undefined> {
  try {
    const {settings} = await readRolloutStatus(gateway);
    return {generation: settings.generation, lastError: settings.last_error};
  } catch {
    return undefined;
  }
}

/**
 * Polls the gateway until it has reloaded (generation past the one before the write) with the values
 * written, or says why it did not: the process environment fixes a value, the reload was refused,
 * no answer, or no such route.
 */
export async function waitUntilTaken(
  gateway: string,
  written: WrittenShare,
  options: WaitOptions = {},
): Promise<AppliedReport> {
  const intervalMs = options.intervalMs ?? 100;
  const timeoutMs = options.timeoutMs ?? 3000;
  const started = performance.now();
  let last: RolloutStatus | undefined;
  for (;;) {
    try {
      last = await readRolloutStatus(gateway, Math.max(intervalMs, 1000));
    } catch (error) {
      if (error instanceof TacosError && error.code === NOT_A_TACOS_GATEWAY)
        return {taken: false, reason: 'not_a_tacos_gateway', detail: error.message};
      if (!(error instanceof TacosError && error.code === GATEWAY_UNREACHABLE)) throw error;
      if (performance.now() - started >= timeoutMs) return {taken: false, reason: 'unreachable', detail: error.message};
    }
    if (last) {
      const verdict = judgeSettings(last, written, options.before);
      if (verdict === 'taken') return {taken: true, pid: last.pid, seconds: (performance.now() - started) / 1000};
      if (verdict) return verdict;
    }
    if (performance.now() - started >= timeoutMs) {
      return {
        taken: false,
        reason: 'timeout',
        detail: last
          ? `the gateway still runs generation ${last.settings.generation} (GRPC_ENABLED=${last.settings.grpc_enabled}, GRPC_TRAFFIC_PERCENT=${last.settings.grpc_traffic_percent}) after ${timeoutMs / 1000} s`
          : `no answer within ${timeoutMs / 1000} s`,
      };
    }
    await sleep(intervalMs);
  }
}

function matches(status: RolloutStatus, written: WrittenShare): boolean {
  return (
    status.settings.grpc_enabled === written.grpcEnabled &&
    (written.percent === undefined || status.settings.grpc_traffic_percent === written.percent)
  );
}

/** 'taken', a final "not taken", or undefined (keep polling). */
function judgeSettings(
  status: RolloutStatus,
  written: WrittenShare,
  before: SettingsBefore | undefined,
): 'taken' | AppliedReport | undefined {
  const fixed = status.settings.fixed_by_process_env.filter((key) => LIVE_KEYS.includes(key));
  if (fixed.length > 0 && !matches(status, written)) {
    return {
      taken: false,
      reason: 'fixed_by_process_env',
      detail: `${fixed.join(' and ')} ${fixed.length > 1 ? 'are' : 'is'} set in the gateway's process environment, which wins over the file: restart the gateway without ${fixed.length > 1 ? 'them' : 'it'}`,
    };
  }
  const reloaded = before === undefined || status.settings.generation > before.generation;
  if (reloaded && matches(status, written)) return 'taken';
  // A refused reload keeps the generation and sets last_error: a new error is this write's.
  if (status.settings.last_error && status.settings.last_error !== before?.lastError)
    return {
      taken: false,
      reason: 'last_error',
      detail: `the gateway refused the reload: ${status.settings.last_error}`,
    };
  return undefined;
}

/** One line for a report: `.env.staging: the running gateway (pid 123) took GRPC_TRAFFIC_PERCENT=100 in 0.4 s`. */
export function describeApplied(label: string, written: WrittenShare, report: AppliedReport): string {
  const values =
    written.percent === undefined ? `GRPC_ENABLED=${written.grpcEnabled}` : `GRPC_TRAFFIC_PERCENT=${written.percent}`;
  if (report.taken)
    return `${label}: the running gateway (pid ${report.pid}) took ${values} in ${report.seconds.toFixed(1)} s`;
  return `${label}: the running gateway did not take ${values} (${report.reason}): ${report.detail}`;
}

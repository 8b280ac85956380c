import {setTimeout as sleep} from 'node:timers/promises';
import {TacosError, usageError} from '../errors.js';
import type {FaultSettings, MockCallContext} from './mock-definition.js';
import {linkedSignal} from './linked-signal.js';

/** A mock's door: the faults of one do not touch the other. */
export type Door = MockCallContext['protocol'];

export const DOORS: readonly Door[] = ['grpc', 'http'];

/** Which doors a fault setting is for: one, or `both`. */
export type FaultDoor = Door | 'both';

export const FAULT_DOORS: readonly FaultDoor[] = ['grpc', 'http', 'both'];

const NO_FAULTS: FaultSettings = {latencyMs: 0, errorRate: 0};

/** Added latency and an error rate for every call, per door; the admin route changes them at run time. */
export class Faults {
  private readonly settings: Record<Door, FaultSettings> = {grpc: NO_FAULTS, http: NO_FAULTS};

  /** `initial` for the doors of `door`; the others start with none. */
  constructor(
    initial: FaultSettings,
    door: FaultDoor = 'both',
    private readonly random: () => number = Math.random,
  ) {
    this.update(initial, door);
  }

  get current(): Record<Door, FaultSettings> {
    return {grpc: {...this.settings.grpc}, http: {...this.settings.http}};
  }

  /** Changes the settings of `door` (both by default); a door not named keeps its own. All or nothing. */
  update(change: Partial<FaultSettings>, door: FaultDoor = 'both'): Record<Door, FaultSettings> {
    const doors = doorsOf(door);
    const changed = doors.map((one) => checkFaults({...this.settings[one], ...change}));
    doors.forEach((one, index) => (this.settings[one] = changed[index]));
    return this.current;
  }

  /**
   * Waits the door's latency (or until the caller gives up, or the mock starts closing), then fails
   * the call at the door's error rate. A mock closing fails the call with UNAVAILABLE at once, so a
   * shutdown does not wait out a long injected latency.
   */
  async apply(door: Door, signal: AbortSignal, closing?: AbortSignal): Promise<void> {
    const {latencyMs, errorRate} = this.settings[door];
    if (latencyMs > 0) {
      // Not AbortSignal.any: tied to the long-lived closing signal, it would keep one signal per call.
      const linked = linkedSignal(closing ? [signal, closing] : [signal]);
      try {
        await sleep(latencyMs, undefined, {signal: linked.signal}).catch(() => undefined);
      } finally {
        linked.dispose();
      }
    }
    if (closing?.aborted) throw new TacosError('The mock is shutting down.', {code: 'UNAVAILABLE'});
    // The caller gave up while we waited: serving the call now would act (hold seats) for nobody.
    if (signal.aborted)
      throw new TacosError('The caller gave up before the mock answered.', {code: 'UPSTREAM_TIMEOUT'});
    if (errorRate > 0 && this.random() < errorRate) {
      throw new TacosError('Injected fault: the mock failed this call on purpose (error rate).', {code: 'UNAVAILABLE'});
    }
  }
}

function doorsOf(door: FaultDoor): readonly Door[] {
  return door === 'both' ? DOORS : [door];
}

/** `grpc`, `http` or `both` (any case); anything else is a usage error that lists them. */
export function faultDoorOf(value: unknown): FaultDoor {
  const door = FAULT_DOORS.find((candidate) => typeof value === 'string' && candidate === value.toLowerCase());
  if (!door) throw usageError(`door "${String(value)}" is not one of ${FAULT_DOORS.join(', ')}.`);
  return door;
}

export function checkFaults(settings: FaultSettings): FaultSettings {
  if (!Number.isFinite(settings.latencyMs) || settings.latencyMs < 0)
    throw usageError(`latency must be 0 or more milliseconds (got ${settings.latencyMs}).`);
  if (!(settings.errorRate >= 0 && settings.errorRate <= 1))
    throw usageError(`error rate must be between 0 and 1 (got ${settings.errorRate}).`);
  return settings;
}

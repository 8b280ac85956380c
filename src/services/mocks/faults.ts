import {setTimeout as sleep} from 'node:timers/promises';
import {TacosError, usageError} from '../errors.js';
import type {FaultSettings} from './mock-definition.js';
import {linkedSignal} from './linked-signal.js';

/** Added latency and an error rate for every call; the admin route changes them at run time. */
export class Faults {
  private settings: FaultSettings;

  constructor(
    initial: FaultSettings,
    private readonly random: () => number = Math.random,
  ) {
    this.settings = checkFaults(initial);
  }

  get current(): FaultSettings {
    return {...this.settings};
  }

  update(change: Partial<FaultSettings>): FaultSettings {
    this.settings = checkFaults({...this.settings, ...change});
    return this.current;
  }

  /**
   * Waits the latency (or until the caller gives up, or the mock starts closing), then fails the call
   * at the error rate. A mock closing fails the call with UNAVAILABLE at once, so a shutdown does not
   * wait out a long injected latency.
   */
  async apply(signal: AbortSignal, closing?: AbortSignal): Promise<void> {
    const {latencyMs, errorRate} = this.settings;
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

export function checkFaults(settings: FaultSettings): FaultSettings {
  if (!Number.isFinite(settings.latencyMs) || settings.latencyMs < 0)
    throw usageError(`latency must be 0 or more milliseconds (got ${settings.latencyMs}).`);
  if (!(settings.errorRate >= 0 && settings.errorRate <= 1))
    throw usageError(`error rate must be between 0 and 1 (got ${settings.errorRate}).`);
  return settings;
}

import {BrokenCircuitError, ConsecutiveBreaker, circuitBreaker, handleWhen, type CircuitBreakerPolicy} from 'cockatiel';
import {TacosError} from '../errors.js';
import type {Logger} from '../logging.js';
import {isBackendFailure} from './errors.js';
import type {Protocol, Transport} from './transports.js';

export interface BackendClientSettings {
  /** Names the backend in errors and logs: `reservation`, `payment`. */
  name: string;
  timeoutMs: number;
  /** 0..100: the share of calls sent over gRPC when a gRPC transport is given. */
  grpcPercent: number;
  breakerFailures: number;
  breakerCooldownMs: number;
}

/**
 * The one road to a backend: per call it picks gRPC or HTTP (GRPC_TRAFFIC_PERCENT of the calls over
 * gRPC when GRPC_ENABLED), sets the deadline, and goes through a circuit breaker, so a backend that
 * keeps failing is answered UNAVAILABLE at once and probed again after a cool-down.
 */
export class BackendClient {
  private readonly breaker: CircuitBreakerPolicy;
  private closing?: Promise<void>;

  constructor(
    private readonly settings: BackendClientSettings,
    private readonly transports: {grpc?: Transport; http: Transport},
    logger: Logger,
    private readonly random: () => number = Math.random,
  ) {
    this.breaker = circuitBreaker(handleWhen(isBackendFailure), {
      halfOpenAfter: settings.breakerCooldownMs,
      breaker: new ConsecutiveBreaker(settings.breakerFailures),
    });
    this.breaker.onBreak(() => logger.warn({backend: settings.name}, 'circuit opened: backend failing, calls refused'));
    this.breaker.onReset(() => logger.info({backend: settings.name}, 'circuit closed: backend answering again'));
  }

  /** Which door the next call takes. */
  pickProtocol(): Protocol {
    const {grpc} = this.transports;
    return grpc && this.random() * 100 < this.settings.grpcPercent ? 'grpc' : 'http';
  }

  async call<T = Record<string, any>>(service: string, method: string, request: object, requestId: string): Promise<T> {
    const transport = this.pickProtocol() === 'grpc' ? this.transports.grpc! : this.transports.http;
    try {
      return (await this.breaker.execute(() => transport.call(service, method, request, this.settings.timeoutMs, requestId))) as T;
    } catch (error) {
      if (error instanceof BrokenCircuitError) {
        throw new TacosError(`The ${this.settings.name} backend keeps failing; calls are refused for now (circuit open).`, {
          code: 'UNAVAILABLE',
          hint: `It is probed again after ${Math.round(this.settings.breakerCooldownMs / 1000)} s.`,
        });
      }
      throw error;
    }
  }

  close(): Promise<void> {
    this.closing ??= Promise.allSettled([this.transports.grpc?.close(), this.transports.http.close()]).then(() => undefined);
    return this.closing;
  }
}

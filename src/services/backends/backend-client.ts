import {
  BrokenCircuitError,
  CircuitState,
  ConsecutiveBreaker,
  circuitBreaker,
  handleWhen,
  type CircuitBreakerPolicy,
} from 'cockatiel';
import {TacosError} from '../errors.js';
import type {Logger} from '../logging.js';
import {callerGoneBeforeSending, isBackendFailure, notSent} from './errors.js';
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

/** What the gateway's caller brings to a backend call. */
export interface CallContext {
  requestId: string;
  /** Aborted when the caller gives up: the backend call is cancelled too. */
  signal?: AbortSignal;
  /** Forces the transport (the A/B runs of `tacos bench`); unset, the traffic split decides. */
  protocol?: Protocol;
}

interface Road {
  transport: Transport;
  breaker: CircuitBreakerPolicy;
}

/**
 * The one road to a backend: per call it picks gRPC or HTTP (GRPC_TRAFFIC_PERCENT of the calls over
 * gRPC when GRPC_ENABLED), sets the deadline, and goes through that transport's circuit breaker. A
 * transport that keeps failing is skipped (its calls take the other one while it is open); when
 * both are open the gateway answers UNAVAILABLE at once, and probes again after a cool-down.
 */
export class BackendClient {
  private readonly roads: Partial<Record<Protocol, Road>>;
  private closing?: Promise<void>;

  constructor(
    private readonly settings: BackendClientSettings,
    transports: {grpc?: Transport; http: Transport},
    logger: Logger,
    private readonly random: () => number = Math.random,
  ) {
    const road = (transport: Transport): Road => {
      const breaker = circuitBreaker(handleWhen(isBackendFailure), {
        halfOpenAfter: settings.breakerCooldownMs,
        breaker: new ConsecutiveBreaker(settings.breakerFailures),
      });
      const labels = {backend: settings.name, protocol: transport.protocol};
      breaker.onBreak(() => logger.warn(labels, 'circuit opened: backend failing, calls refused'));
      breaker.onReset(() => logger.info(labels, 'circuit closed: backend answering again'));
      return {transport, breaker};
    };
    this.roads = {http: road(transports.http), ...(transports.grpc ? {grpc: road(transports.grpc)} : {})};
  }

  /** Which door the next call takes: the traffic split, unless that door's circuit is open and the other's is not. */
  pickProtocol(): Protocol {
    const wanted: Protocol = this.roads.grpc && this.random() * 100 < this.settings.grpcPercent ? 'grpc' : 'http';
    const other: Protocol = wanted === 'grpc' ? 'http' : 'grpc';
    const open = (protocol: Protocol) => this.roads[protocol]?.breaker.state === CircuitState.Open;
    return open(wanted) && this.roads[other] && !open(other) && this.roads[other] ? other : wanted;
  }

  async call<T = Record<string, any>>(
    service: string,
    method: string,
    request: object,
    context: CallContext,
  ): Promise<T> {
    const road = this.roads[context.protocol ?? this.pickProtocol()];
    if (!road) {
      throw notSent(
        new TacosError(`The ${this.settings.name} backend is not called over gRPC here: GRPC_ENABLED is false.`, {
          code: 'INVALID_ARGUMENT',
          hint: 'Ask for x-tacos-backend-protocol: http, or turn gRPC on (tacos env switch grpc).',
        }),
      );
    }
    const {transport, breaker} = road;
    // A caller already gone (cancelled, past its deadline) is not served: nothing is sent.
    if (context.signal?.aborted) throw callerGoneBeforeSending(this.settings.name);
    try {
      return (await breaker.execute(() =>
        transport.call(service, method, request, this.settings.timeoutMs, context),
      )) as T;
    } catch (error) {
      if (error instanceof BrokenCircuitError) {
        throw notSent(
          new TacosError(`The ${this.settings.name} backend keeps failing; calls are refused for now (circuit open).`, {
            code: 'UNAVAILABLE',
            hint: `It is probed again after ${Math.round(this.settings.breakerCooldownMs / 1000)} s.`,
          }),
        );
      }
      throw error;
    }
  }

  close(): Promise<void> {
    this.closing ??= Promise.allSettled(Object.values(this.roads).map((road) => road.transport.close())).then(
      () => undefined,
    );
    return this.closing;
  }
}

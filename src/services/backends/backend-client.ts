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
import {BREAKER_STATE, type BackendMetrics} from './backend-metrics.js';
import {callerGoneBeforeSending, isBackendFailure, notSent, wasNotSent} from './errors.js';
import type {RoadPolicy} from './road-policy.js';
import {takesGrpc} from './sticky-split.js';
import type {Protocol, Transport} from './transports.js';

export interface BackendClientSettings {
  /** Names the backend in errors, logs and metrics: `reservation`, `payment`. */
  name: string;
  timeoutMs: number;
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
  /** Keeps a caller on one road (the token's user id, else a session id); unset, each call draws its road. */
  callerKey?: string;
  /** Gets the road each call took, for the doors to report (x-tacos-backend-road). */
  roads?: Set<Protocol>;
}

interface Road {
  transport: Transport;
  breaker: CircuitBreakerPolicy;
}

/**
 * The one road to a backend: per call it picks gRPC or HTTP (the policy's gRPC share of the callers,
 * sticky per caller), sets the deadline, and goes through that transport's circuit breaker. A
 * transport that keeps failing is skipped (its calls take the other one while it is open); when
 * both are open the gateway answers UNAVAILABLE at once, and probes again after a cool-down. Each
 * call is told to the policy and counted per road.
 */
export class BackendClient {
  private readonly roads: Record<Protocol, Road>;
  private closing?: Promise<void>;

  constructor(
    private readonly settings: BackendClientSettings,
    transports: Record<Protocol, Transport>,
    private readonly policy: RoadPolicy,
    private readonly metrics: BackendMetrics,
    logger: Logger,
    private readonly random: () => number = Math.random,
  ) {
    const road = (transport: Transport): Road => {
      const breaker = circuitBreaker(handleWhen(isBackendFailure), {
        halfOpenAfter: settings.breakerCooldownMs,
        breaker: new ConsecutiveBreaker(settings.breakerFailures),
      });
      const labels = {backend: settings.name, protocol: transport.protocol};
      const state = (value: number) => metrics.breaker(settings.name, transport.protocol, value);
      state(BREAKER_STATE.closed);
      breaker.onBreak(() => {
        state(BREAKER_STATE.open);
        logger.warn(labels, 'circuit opened: backend failing, calls refused');
      });
      breaker.onHalfOpen(() => state(BREAKER_STATE.halfOpen));
      breaker.onReset(() => {
        state(BREAKER_STATE.closed);
        logger.info(labels, 'circuit closed: backend answering again');
      });
      return {transport, breaker};
    };
    this.roads = {grpc: road(transports.grpc), http: road(transports.http)};
  }

  /**
   * Which road a call of this caller takes: the sticky split, unless that road's circuit is open and
   * the other's is not. gRPC stands in for HTTP only while it has a share: at 0 (GRPC_ENABLED false,
   * a rollback) the backend may not serve gRPC at all.
   */
  pickProtocol(callerKey?: string): Protocol {
    const share = this.policy.grpcShare(this.settings.name);
    const wanted: Protocol = takesGrpc(share, callerKey, this.random) ? 'grpc' : 'http';
    const other: Protocol = wanted === 'grpc' ? 'http' : 'grpc';
    const open = (protocol: Protocol) => this.roads[protocol].breaker.state === CircuitState.Open;
    return open(wanted) && !open(other) && (other === 'http' || share > 0) ? other : wanted;
  }

  async call<T = Record<string, any>>(
    service: string,
    method: string,
    request: object,
    context: CallContext,
  ): Promise<T> {
    const protocol = context.protocol ?? this.pickProtocol(context.callerKey);
    const {transport, breaker} = this.roads[protocol];
    const backend = this.settings.name;
    let started: number | undefined;
    try {
      // A caller already gone (cancelled, past its deadline) is not served: nothing is sent.
      if (context.signal?.aborted) throw callerGoneBeforeSending(backend);
      const answer = (await breaker.execute(() => {
        started = performance.now();
        context.roads?.add(protocol);
        return transport.call(service, method, request, this.settings.timeoutMs, context);
      })) as T;
      this.finished(protocol, started, undefined);
      return answer;
    } catch (caught) {
      const error =
        caught instanceof BrokenCircuitError
          ? notSent(
              new TacosError(`The ${backend} backend keeps failing; calls are refused for now (circuit open).`, {
                code: 'UNAVAILABLE',
                hint: `It is probed again after ${Math.round(this.settings.breakerCooldownMs / 1000)} s.`,
              }),
            )
          : caught;
      this.finished(protocol, started, error);
      throw error;
    }
  }

  /** Tells the policy and the metrics how a call went; a call never sent is counted as refused, and the policy does not hear of it. */
  private finished(protocol: Protocol, started: number | undefined, error: unknown): void {
    const backend = this.settings.name;
    if (started === undefined || wasNotSent(error)) {
      this.metrics.call(backend, protocol, 'refused');
      return;
    }
    const failed = isBackendFailure(error);
    this.metrics.call(backend, protocol, failed ? 'failed' : 'ok');
    this.policy.record(backend, protocol, failed, (performance.now() - started) / 1000);
  }

  close(): Promise<void> {
    this.closing ??= Promise.allSettled(Object.values(this.roads).map((road) => road.transport.close())).then(
      () => undefined,
    );
    return this.closing;
  }
}

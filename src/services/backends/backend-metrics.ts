import {Counter, Gauge, Histogram, type Registry} from 'prom-client';
import type {Protocol} from './transports.js';

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** How a backend call ended, per road: answered (whatever the answer), refused before sending, or the backend failing. */
export type CallOutcome = 'ok' | 'refused' | 'failed';

/** A circuit breaker's state as a number: 0 closed, 1 half-open, 2 open. */
export const BREAKER_STATE = {closed: 0, halfOpen: 1, open: 2} as const;

/**
 * The gateway's client side of its backend calls, named as go-grpc-prometheus names a client's
 * (grpc_client_*), with HTTP counterparts, so that both roads compare in one dashboard.
 */
export class BackendMetrics {
  readonly grpcStarted: Counter<'grpc_type' | 'grpc_service' | 'grpc_method'>;
  readonly grpcHandled: Counter<'grpc_type' | 'grpc_service' | 'grpc_method' | 'grpc_code'>;
  readonly grpcHandlingSeconds: Histogram<'grpc_type' | 'grpc_service' | 'grpc_method'>;
  readonly grpcMsgSent: Counter<'grpc_type' | 'grpc_service' | 'grpc_method'>;
  readonly grpcMsgReceived: Counter<'grpc_type' | 'grpc_service' | 'grpc_method'>;
  readonly httpRequests: Counter<'backend' | 'grpc_service' | 'grpc_method' | 'status_code'>;
  readonly httpDuration: Histogram<'backend' | 'grpc_service' | 'grpc_method'>;
  readonly calls: Counter<'backend' | 'transport' | 'outcome'>;
  readonly breakerState: Gauge<'backend' | 'transport'>;

  constructor(registry: Registry) {
    const grpcLabels = ['grpc_type', 'grpc_service', 'grpc_method'] as const;
    const registers = [registry];
    this.grpcStarted = new Counter({
      name: 'grpc_client_started_total',
      help: 'RPCs started by the gateway on its backends.',
      labelNames: grpcLabels,
      registers,
    });
    this.grpcHandled = new Counter({
      name: 'grpc_client_handled_total',
      help: 'RPCs to the backends completed, by the status the gateway saw.',
      labelNames: [...grpcLabels, 'grpc_code'] as const,
      registers,
    });
    this.grpcHandlingSeconds = new Histogram({
      name: 'grpc_client_handling_seconds',
      help: 'Time from the start of an RPC to a backend to its status, in seconds.',
      labelNames: grpcLabels,
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.grpcMsgSent = new Counter({
      name: 'grpc_client_msg_sent_total',
      help: 'Messages the gateway sent to its backends over gRPC.',
      labelNames: grpcLabels,
      registers,
    });
    this.grpcMsgReceived = new Counter({
      name: 'grpc_client_msg_received_total',
      help: 'Messages the gateway received from its backends over gRPC.',
      labelNames: grpcLabels,
      registers,
    });
    this.httpRequests = new Counter({
      name: 'http_client_requests_total',
      help: 'HTTP requests to the backends, by the method they stand for and the status answered ("0": no answer).',
      labelNames: ['backend', 'grpc_service', 'grpc_method', 'status_code'] as const,
      registers,
    });
    this.httpDuration = new Histogram({
      name: 'http_client_request_duration_seconds',
      help: 'Time of an HTTP request to a backend, in seconds.',
      labelNames: ['backend', 'grpc_service', 'grpc_method'] as const,
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.calls = new Counter({
      name: 'gateway_backend_calls_total',
      help: 'Backend calls by road: answered (ok), refused before sending (circuit open, caller gone), or failed.',
      labelNames: ['backend', 'transport', 'outcome'] as const,
      registers,
    });
    this.breakerState = new Gauge({
      name: 'gateway_backend_breaker_state',
      help: 'Circuit breaker of each road to a backend: 0 closed, 1 half-open, 2 open (the worst worker).',
      labelNames: ['backend', 'transport'] as const,
      aggregator: 'max',
      registers,
    });
  }

  /** A gRPC unary call to a backend starts (its request sent); the answer ends it with a status name (OK, UNAVAILABLE...). */
  grpcCall(service: string, method: string): (code: string, answered: boolean, seconds: number) => void {
    const labels = {grpc_type: 'unary', grpc_service: service, grpc_method: method};
    this.grpcStarted.inc(labels);
    this.grpcMsgSent.inc(labels);
    return (code, answered, seconds) => {
      if (answered) this.grpcMsgReceived.inc(labels);
      this.grpcHandled.inc({...labels, grpc_code: code});
      this.grpcHandlingSeconds.observe(labels, seconds);
    };
  }

  /** One HTTP request to a backend, answered with `status` (0 when no answer came). */
  httpCall(backend: string, service: string, method: string, status: number, seconds: number): void {
    const labels = {backend, grpc_service: service, grpc_method: method};
    this.httpRequests.inc({...labels, status_code: String(status)});
    this.httpDuration.observe(labels, seconds);
  }

  call(backend: string, transport: Protocol, outcome: CallOutcome): void {
    this.calls.inc({backend, transport, outcome});
  }

  breaker(backend: string, transport: Protocol, state: number): void {
    this.breakerState.set({backend, transport}, state);
  }
}

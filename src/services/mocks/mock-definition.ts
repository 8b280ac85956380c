import type {BackendRoute} from '../backends/routes.js';
import type {UserEvent} from '../redis/user-channel.js';

/** Hears a change of a user's reservation or payment that the mock made (serve.ts publishes it on the user's channel). */
export type UpdateListener = (userId: string, event: UserEvent) => void;

/** What a mock handler knows of the call it serves. */
export interface MockCallContext {
  protocol: 'grpc' | 'http';
  /** Aborted when the caller gives up (deadline, cancel, closed connection). */
  signal: AbortSignal;
  requestId: string;
}

/**
 * One RPC of a mock. Requests and responses are the handlers' objects as @grpc/proto-loader makes
 * them: .proto field names, enums as names, 64-bit integers as strings, Timestamps as
 * {seconds: string, nanos: number}, defaults filled in. Errors are TacosErrors with a code of
 * src/services/server-kit/api-errors.ts.
 */
export type RpcHandler = (request: any, context: MockCallContext) => Promise<object>;

export interface MockDefinition {
  /** `reservation` or `payment`: names logs and metrics. */
  name: string;
  /** Handlers by full service name, then method name; every method of each service. */
  services: Record<string, Record<string, RpcHandler>>;
  routes: BackendRoute[];
  /** Stops timers the mock keeps (hold expiry, delayed webhooks); safe twice. */
  close(): void;
}

/** Faults injected into every call at one door of a mock (gRPC or HTTP), changeable while it runs. */
export interface FaultSettings {
  latencyMs: number;
  /** 0..1: the share of calls that fail with UNAVAILABLE. */
  errorRate: number;
}

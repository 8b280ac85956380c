import {status as GrpcStatus} from '@grpc/grpc-js';
import {TacosError, errorMessage} from '../errors.js';
import type {Logger} from '../logging.js';

/** How one error code of ours looks on each door: HTTP status, gRPC status, contract ErrorCode. */
interface ErrorShape {
  http: number;
  grpc: GrpcStatus;
  contract: string;
}

const SHAPES: Record<string, ErrorShape> = {
  INVALID_ARGUMENT: {http: 400, grpc: GrpcStatus.INVALID_ARGUMENT, contract: 'ERROR_CODE_INVALID_ARGUMENT'},
  // Sign-in's codes are the Go gateway's (test/fixtures/contracts/REST.md 1.3), which the web client maps to its own messages.
  INVALID_REQUEST: {http: 400, grpc: GrpcStatus.INVALID_ARGUMENT, contract: 'ERROR_CODE_INVALID_ARGUMENT'},
  // The payment amount is not a whole number above 0 (the Go gateway's code for it).
  INVALID_AMOUNT: {http: 400, grpc: GrpcStatus.INVALID_ARGUMENT, contract: 'ERROR_CODE_INVALID_ARGUMENT'},
  // A payment process action other than approve or fail (the Go gateway's code for it).
  INVALID_ACTION: {http: 400, grpc: GrpcStatus.INVALID_ARGUMENT, contract: 'ERROR_CODE_INVALID_ARGUMENT'},
  // Required ids missing from a payment body (the Go gateway's codes for them).
  MISSING_RESERVATION_ID: {http: 400, grpc: GrpcStatus.INVALID_ARGUMENT, contract: 'ERROR_CODE_INVALID_ARGUMENT'},
  MISSING_PAYMENT_INTENT_ID: {http: 400, grpc: GrpcStatus.INVALID_ARGUMENT, contract: 'ERROR_CODE_INVALID_ARGUMENT'},
  // One order asks for more seats than the gateway (BOOKING_MAX_SEATS_PER_ORDER) or the event allows.
  TOO_MANY_SEATS: {http: 400, grpc: GrpcStatus.INVALID_ARGUMENT, contract: 'ERROR_CODE_INVALID_ARGUMENT'},
  // A text a client sends on to the backends is longer than BOOKING_MAX_FIELD_LENGTH.
  FIELD_TOO_LONG: {http: 400, grpc: GrpcStatus.INVALID_ARGUMENT, contract: 'ERROR_CODE_INVALID_ARGUMENT'},
  USAGE: {http: 400, grpc: GrpcStatus.INVALID_ARGUMENT, contract: 'ERROR_CODE_INVALID_ARGUMENT'},
  UNAUTHENTICATED: {http: 401, grpc: GrpcStatus.UNAUTHENTICATED, contract: 'ERROR_CODE_UNAUTHENTICATED'},
  INVALID_CREDENTIALS: {http: 401, grpc: GrpcStatus.UNAUTHENTICATED, contract: 'ERROR_CODE_UNAUTHENTICATED'},
  FORBIDDEN: {http: 403, grpc: GrpcStatus.PERMISSION_DENIED, contract: 'ERROR_CODE_FORBIDDEN'},
  RESERVATION_TOKEN_INVALID: {http: 403, grpc: GrpcStatus.PERMISSION_DENIED, contract: 'ERROR_CODE_FORBIDDEN'},
  NOT_READY: {http: 403, grpc: GrpcStatus.FAILED_PRECONDITION, contract: 'ERROR_CODE_FAILED_PRECONDITION'},
  NOT_FOUND: {http: 404, grpc: GrpcStatus.NOT_FOUND, contract: 'ERROR_CODE_NOT_FOUND'},
  // An unknown (or another user's) payment intent on the REST payment routes (the Go gateway's code).
  PAYMENT_NOT_FOUND: {http: 404, grpc: GrpcStatus.NOT_FOUND, contract: 'ERROR_CODE_NOT_FOUND'},
  TOKEN_NOT_FOUND: {http: 404, grpc: GrpcStatus.NOT_FOUND, contract: 'ERROR_CODE_NOT_FOUND'},
  // A join to an event the queue does not take (production: not in the catalogue, config or opened).
  EVENT_NOT_OPEN: {http: 404, grpc: GrpcStatus.NOT_FOUND, contract: 'ERROR_CODE_NOT_FOUND'},
  ALREADY_EXISTS: {http: 409, grpc: GrpcStatus.ALREADY_EXISTS, contract: 'ERROR_CODE_ALREADY_EXISTS'},
  USERNAME_EXISTS: {http: 409, grpc: GrpcStatus.ALREADY_EXISTS, contract: 'ERROR_CODE_ALREADY_EXISTS'},
  ALREADY_ADMITTED: {http: 409, grpc: GrpcStatus.ALREADY_EXISTS, contract: 'ERROR_CODE_ALREADY_EXISTS'},
  FAILED_PRECONDITION: {http: 409, grpc: GrpcStatus.FAILED_PRECONDITION, contract: 'ERROR_CODE_FAILED_PRECONDITION'},
  INVENTORY_CONFLICT: {http: 409, grpc: GrpcStatus.ABORTED, contract: 'ERROR_CODE_INVENTORY_CONFLICT'},
  INSUFFICIENT_INVENTORY: {
    http: 409,
    grpc: GrpcStatus.FAILED_PRECONDITION,
    contract: 'ERROR_CODE_INSUFFICIENT_INVENTORY',
  },
  TOKEN_LEFT: {http: 409, grpc: GrpcStatus.FAILED_PRECONDITION, contract: 'ERROR_CODE_FAILED_PRECONDITION'},
  IDEMPOTENCY_CONFLICT: {http: 409, grpc: GrpcStatus.ALREADY_EXISTS, contract: 'ERROR_CODE_IDEMPOTENCY_CONFLICT'},
  TOKEN_EXPIRED: {http: 410, grpc: GrpcStatus.FAILED_PRECONDITION, contract: 'ERROR_CODE_FAILED_PRECONDITION'},
  RESERVATION_EXPIRED: {http: 410, grpc: GrpcStatus.FAILED_PRECONDITION, contract: 'ERROR_CODE_RESERVATION_EXPIRED'},
  PAYMENT_NOT_APPROVED: {http: 412, grpc: GrpcStatus.FAILED_PRECONDITION, contract: 'ERROR_CODE_PAYMENT_NOT_APPROVED'},
  METHOD_NOT_ALLOWED: {http: 405, grpc: GrpcStatus.UNIMPLEMENTED, contract: 'ERROR_CODE_NOT_FOUND'},
  REQUEST_TIMEOUT: {http: 408, grpc: GrpcStatus.DEADLINE_EXCEEDED, contract: 'ERROR_CODE_TIMEOUT'},
  PAYLOAD_TOO_LARGE: {http: 413, grpc: GrpcStatus.RESOURCE_EXHAUSTED, contract: 'ERROR_CODE_INVALID_ARGUMENT'},
  UNSUPPORTED_MEDIA_TYPE: {http: 415, grpc: GrpcStatus.INVALID_ARGUMENT, contract: 'ERROR_CODE_INVALID_ARGUMENT'},
  RATE_LIMITED: {http: 429, grpc: GrpcStatus.RESOURCE_EXHAUSTED, contract: 'ERROR_CODE_RATE_LIMITED'},
  // One user's booking calls in flight are at BOOKING_MAX_IN_FLIGHT_PER_USER.
  TOO_MANY_IN_FLIGHT: {http: 429, grpc: GrpcStatus.RESOURCE_EXHAUSTED, contract: 'ERROR_CODE_RATE_LIMITED'},
  // As many events are open as QUEUE_MAX_OPEN_EVENTS allows: a new one is not opened.
  TOO_MANY_EVENTS: {http: 429, grpc: GrpcStatus.RESOURCE_EXHAUSTED, contract: 'ERROR_CODE_QUOTA_EXCEEDED'},
  HEADERS_TOO_LARGE: {http: 431, grpc: GrpcStatus.RESOURCE_EXHAUSTED, contract: 'ERROR_CODE_INVALID_ARGUMENT'},
  // The caller left: nobody reads this answer (499 as nginx logs it).
  CANCELLED: {http: 499, grpc: GrpcStatus.CANCELLED, contract: 'ERROR_CODE_TIMEOUT'},
  INTERNAL: {http: 500, grpc: GrpcStatus.INTERNAL, contract: 'ERROR_CODE_INTERNAL'},
  // The backend refused the request for itself (its size, a quota) with no code we pass on.
  UPSTREAM_REFUSED: {http: 422, grpc: GrpcStatus.FAILED_PRECONDITION, contract: 'ERROR_CODE_UPSTREAM_ERROR'},
  UPSTREAM_ERROR: {http: 502, grpc: GrpcStatus.UNAVAILABLE, contract: 'ERROR_CODE_UPSTREAM_ERROR'},
  UNAVAILABLE: {http: 503, grpc: GrpcStatus.UNAVAILABLE, contract: 'ERROR_CODE_UNAVAILABLE'},
  // Sent, but no answer in time: it may or may not have happened (gRPC's own meaning of DEADLINE_EXCEEDED).
  OUTCOME_UNKNOWN: {http: 504, grpc: GrpcStatus.DEADLINE_EXCEEDED, contract: 'ERROR_CODE_TIMEOUT'},
  UPSTREAM_TIMEOUT: {http: 504, grpc: GrpcStatus.DEADLINE_EXCEEDED, contract: 'ERROR_CODE_UPSTREAM_TIMEOUT'},
};

/** An error as both doors present it; anything that is not a TacosError is an internal error. */
export interface ApiError {
  code: string;
  message: string;
  /** The request field at fault, for INVALID_ARGUMENT. */
  field?: string;
  shape: ErrorShape;
}

export function toApiError(error: unknown): ApiError {
  if (error instanceof TacosError && SHAPES[error.code]) {
    return {code: error.code, message: error.message, field: error.field, shape: SHAPES[error.code]};
  }
  return {code: 'INTERNAL', message: 'Internal error', shape: SHAPES.INTERNAL, field: undefined};
}

/**
 * Logs, with the request id, what the client of a failed request is not told: an internal error, or
 * the cause (a library's message, an internal address) of a dependency's failure. The answer keeps
 * the error's own message. Redis outages also have their own warn lines (redis/client.ts), so a
 * request failing on one is logged at info.
 */
export function logFailure(logger: Logger, error: unknown, api: ApiError, requestId: string): void {
  if (api.code === 'INTERNAL') {
    logger.error({err: error, req_id: requestId}, 'internal error');
  } else if (api.shape.http >= 500 && error instanceof Error && error.cause !== undefined) {
    logger[api.code === 'UNAVAILABLE' ? 'info' : 'warn'](
      {req_id: requestId, code: api.code, cause: errorMessage(error.cause)},
      api.message,
    );
  }
}

export function invalidArgument(field: string, message: string): TacosError {
  return new TacosError(message, {code: 'INVALID_ARGUMENT', field});
}

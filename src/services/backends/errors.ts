import {fromBinary, type FileRegistry} from '@bufbuild/protobuf';
import {anyUnpack} from '@bufbuild/protobuf/wkt';
import {status as GrpcStatus, type ServiceError} from '@grpc/grpc-js';
import {TacosError, errorMessage} from '../errors.js';
import {ERROR_DOMAIN} from '../server-kit/grpc/status-details.js';

/** Codes a backend may answer with that the gateway passes on as they are (business outcomes). */
const PASSED_ON = new Set([
  'INVALID_ARGUMENT',
  'NOT_FOUND',
  'FORBIDDEN',
  'ALREADY_EXISTS',
  'FAILED_PRECONDITION',
  'INVENTORY_CONFLICT',
  'INSUFFICIENT_INVENTORY',
  'RESERVATION_EXPIRED',
  'PAYMENT_NOT_APPROVED',
  'IDEMPOTENCY_CONFLICT',
  'TOO_MANY_SEATS',
]);

/** gRPC status codes with no detail we understand, as our codes. */
const BY_GRPC_STATUS: Partial<Record<GrpcStatus, string>> = {
  [GrpcStatus.INVALID_ARGUMENT]: 'INVALID_ARGUMENT',
  [GrpcStatus.NOT_FOUND]: 'NOT_FOUND',
  [GrpcStatus.ALREADY_EXISTS]: 'ALREADY_EXISTS',
  [GrpcStatus.PERMISSION_DENIED]: 'FORBIDDEN',
  [GrpcStatus.FAILED_PRECONDITION]: 'FAILED_PRECONDITION',
  [GrpcStatus.ABORTED]: 'INVENTORY_CONFLICT',
  [GrpcStatus.OUT_OF_RANGE]: 'INVALID_ARGUMENT',
  [GrpcStatus.DEADLINE_EXCEEDED]: 'UPSTREAM_TIMEOUT',
  // The request itself was refused (too large, over a quota, the gateway's credentials): not a sign
  // that the backend is failing.
  [GrpcStatus.RESOURCE_EXHAUSTED]: 'UPSTREAM_REFUSED',
  [GrpcStatus.UNAUTHENTICATED]: 'UPSTREAM_REFUSED',
};

const BY_HTTP_STATUS: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  409: 'FAILED_PRECONDITION',
  410: 'RESERVATION_EXPIRED',
  412: 'PAYMENT_NOT_APPROVED',
  504: 'UPSTREAM_TIMEOUT',
};

/** HTTP statuses that refuse a request for its size, whoever answers them (a proxy too). */
const TOO_LARGE_HTTP_STATUS = new Set([413, 414, 431]);

/**
 * A backend failure the circuit breaker counts: the backend is unavailable, slow or broken. A
 * request refused for itself (its size, its shape, a business rule) never counts, so one user's
 * requests cannot open the circuit for everyone.
 */
export function isBackendFailure(error: unknown): boolean {
  return error instanceof TacosError && (error.code === 'UPSTREAM_TIMEOUT' || error.code === 'UPSTREAM_ERROR');
}

/** Errors raised before the request left the gateway. */
const unsent = new WeakSet<TacosError>();

/** Marks `error` as raised before the request was sent: the backend never saw it. */
export function notSent(error: TacosError): TacosError {
  unsent.add(error);
  return error;
}

/** The error was raised before the request left the gateway (circuit open, caller gone first). */
export function wasNotSent(error: unknown): boolean {
  return error instanceof TacosError && unsent.has(error);
}

/**
 * The backend surely did nothing for this call: it answered with a refusal, or it was never asked.
 * After a timeout or a broken connection nobody knows, and the answer is false.
 */
export function backendDidNothing(error: unknown): boolean {
  return (
    wasNotSent(error) ||
    (error instanceof TacosError && (PASSED_ON.has(error.code) || error.code === 'UPSTREAM_REFUSED'))
  );
}

/** A backend's gRPC error as ours, reading our ErrorInfo reason from grpc-status-details-bin. */
export function fromGrpcError(backend: string, error: ServiceError, registry: FileRegistry): TacosError {
  const reason = errorInfoReason(error, registry);
  const code = (reason && PASSED_ON.has(reason) ? reason : undefined) ?? BY_GRPC_STATUS[error.code];
  return backendError(backend, code, error.details || errorMessage(error), error);
}

/**
 * A backend's HTTP error answer as ours. Only our error envelope is read as the backend's answer;
 * any other body (a proxy's page, a wrong base URL) is the road failing, whatever its status, unless
 * the status refuses the request for its size. An envelope with a 4xx we do not pass on is the
 * backend refusing this request, not failing.
 */
export function fromHttpError(backend: string, status: number, body: unknown): TacosError {
  const envelope = (body as {error?: {code?: string; message?: string; field?: string}} | undefined)?.error;
  if (!envelope?.code) {
    const code = TOO_LARGE_HTTP_STATUS.has(status) ? 'UPSTREAM_REFUSED' : undefined;
    return backendError(backend, code, `HTTP ${status} without an error envelope`, undefined);
  }
  const code = PASSED_ON.has(envelope.code)
    ? envelope.code
    : (BY_HTTP_STATUS[status] ?? (status < 500 ? 'UPSTREAM_REFUSED' : undefined));
  return backendError(backend, code, envelope.message ?? `HTTP ${status}`, undefined, envelope.field);
}

/** The caller gave up (deadline, cancel, disconnect): not the backend's failure. */
export function callerGone(backend: string): TacosError {
  return new TacosError(`The caller gave up before the ${backend} backend answered.`, {code: 'CANCELLED'});
}

/** The caller gave up (or its deadline passed) before the call was sent: it is not sent. */
export function callerGoneBeforeSending(backend: string): TacosError {
  return notSent(
    new TacosError(`The caller gave up before the call to the ${backend} backend was sent.`, {code: 'CANCELLED'}),
  );
}

/** A 2xx answer that is not the method's response message. */
export function undecodableAnswer(backend: string, error: unknown): TacosError {
  return backendError(backend, undefined, `its answer is not the expected message (${errorMessage(error)})`, error);
}

/** The deadline passed or the connection failed before an answer. */
export function transportError(backend: string, error: unknown, timedOut: boolean): TacosError {
  return backendError(backend, timedOut ? 'UPSTREAM_TIMEOUT' : undefined, errorMessage(error), error);
}

/**
 * A backend's outcome (`code`) keeps the backend's message: it is written for the caller. A failure
 * is said in a fixed sentence; what failed (`message`: a library's words, the backend's address)
 * rides as the cause, which the gateway logs with the request id (api-errors.ts logFailure).
 */
function backendError(
  backend: string,
  code: string | undefined,
  message: string,
  cause: unknown,
  field?: string,
): TacosError {
  if (code === 'UPSTREAM_TIMEOUT') {
    return new TacosError(`The ${backend} backend did not answer in time.`, {
      code,
      cause: new Error(message, {cause}),
      hint: 'See BACKEND_*_TIMEOUT.',
    });
  }
  if (code === 'UPSTREAM_REFUSED') {
    // The backend's words stay in the cause (for the log): they may name its internals.
    return new TacosError(`The ${backend} backend refused the request.`, {code, cause: cause ?? message});
  }
  if (code) return new TacosError(message, {code, cause, field});
  return new TacosError(`The ${backend} backend failed; try again shortly.`, {
    code: 'UPSTREAM_ERROR',
    cause: new Error(message, {cause}),
  });
}

function errorInfoReason(error: ServiceError, registry: FileRegistry): string | undefined {
  const raw = error.metadata?.get('grpc-status-details-bin')[0];
  const statusDesc = registry.getMessage('google.rpc.Status');
  if (!Buffer.isBuffer(raw) || !statusDesc) return undefined;
  try {
    const status = fromBinary(statusDesc, raw) as unknown as {details: Parameters<typeof anyUnpack>[0][]};
    for (const detail of status.details) {
      const info = anyUnpack(detail, registry) as {$typeName?: string; reason?: string; domain?: string} | undefined;
      if (info?.$typeName === 'google.rpc.ErrorInfo' && info.domain === ERROR_DOMAIN) return info.reason;
    }
  } catch {
    // Undecodable details: fall back to the status code.
  }
  return undefined;
}

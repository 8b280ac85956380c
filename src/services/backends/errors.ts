import {fromBinary, type FileRegistry} from '@bufbuild/protobuf';
import {anyUnpack} from '@bufbuild/protobuf/wkt';
import {status as GrpcStatus, type ServiceError} from '@grpc/grpc-js';
import {TacosError, errorMessage} from '../errors.js';
import {ERROR_DOMAIN} from '../grpc/status-details.js';

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
]);

/** gRPC status codes with no detail we understand, as our codes. */
const BY_GRPC_STATUS: Partial<Record<GrpcStatus, string>> = {
  [GrpcStatus.INVALID_ARGUMENT]: 'INVALID_ARGUMENT',
  [GrpcStatus.NOT_FOUND]: 'NOT_FOUND',
  [GrpcStatus.ALREADY_EXISTS]: 'ALREADY_EXISTS',
  [GrpcStatus.PERMISSION_DENIED]: 'FORBIDDEN',
  [GrpcStatus.FAILED_PRECONDITION]: 'FAILED_PRECONDITION',
  [GrpcStatus.ABORTED]: 'INVENTORY_CONFLICT',
  [GrpcStatus.DEADLINE_EXCEEDED]: 'UPSTREAM_TIMEOUT',
};

const BY_HTTP_STATUS: Record<number, string> = {400: 'INVALID_ARGUMENT', 403: 'FORBIDDEN', 404: 'NOT_FOUND', 409: 'FAILED_PRECONDITION', 410: 'RESERVATION_EXPIRED', 412: 'PAYMENT_NOT_APPROVED', 504: 'UPSTREAM_TIMEOUT'};

/** A backend failure the circuit breaker counts: the backend is slow or broken, not the request. */
export function isBackendFailure(error: unknown): boolean {
  return error instanceof TacosError && (error.code === 'UPSTREAM_TIMEOUT' || error.code === 'UPSTREAM_ERROR');
}

/** A backend's gRPC error as ours, reading our ErrorInfo reason from grpc-status-details-bin. */
export function fromGrpcError(backend: string, error: ServiceError, registry: FileRegistry): TacosError {
  const reason = errorInfoReason(error, registry);
  const code = (reason && PASSED_ON.has(reason) ? reason : undefined) ?? BY_GRPC_STATUS[error.code];
  return backendError(backend, code, error.details || errorMessage(error), error);
}

/**
 * A backend's HTTP error answer as ours. Only our error envelope is read as the backend's answer;
 * any other body (a proxy's page, a wrong base URL) is the road failing, whatever its status.
 */
export function fromHttpError(backend: string, status: number, body: unknown): TacosError {
  const envelope = (body as {error?: {code?: string; message?: string; field?: string}} | undefined)?.error;
  if (!envelope?.code) return backendError(backend, undefined, `HTTP ${status} without an error envelope`, undefined);
  const code = PASSED_ON.has(envelope.code) ? envelope.code : BY_HTTP_STATUS[status];
  return backendError(backend, code, envelope.message ?? `HTTP ${status}`, undefined, envelope.field);
}

/** The caller gave up (deadline, cancel, disconnect): not the backend's failure. */
export function callerGone(backend: string): TacosError {
  return new TacosError(`The caller gave up before the ${backend} backend answered.`, {code: 'CANCELLED'});
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
function backendError(backend: string, code: string | undefined, message: string, cause: unknown, field?: string): TacosError {
  if (code === 'UPSTREAM_TIMEOUT') {
    return new TacosError(`The ${backend} backend did not answer in time.`, {code, cause: new Error(message, {cause}), hint: 'See BACKEND_*_TIMEOUT.'});
  }
  if (code) return new TacosError(message, {code, cause, field});
  return new TacosError(`The ${backend} backend failed; try again shortly.`, {code: 'UPSTREAM_ERROR', cause: new Error(message, {cause})});
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

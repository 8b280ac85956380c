import {randomUUID} from 'node:crypto';
import {Metadata, ServerInterceptingCall, status as GrpcStatus, type ServerInterceptor} from '@grpc/grpc-js';
import {grpcCodeName} from '../../grpc-codes.js';
import type {Logger} from '../../logging.js';
import type {ServerMetrics} from '../metrics.js';
import {validRequestId} from '../request-id.js';
import {INVALID_TIMEOUT_KEY} from './connection-guard.js';
import type {GrpcRefusal} from './limits.js';
import type {StatusEncoder} from './status-details.js';

/** The metadata key handlers read the caller's id from; set only by the auth interceptor. */
export const USER_ID_KEY = 'x-tacos-user-id';
export const REQUEST_ID_KEY = 'x-request-id';

function callType(requestStream: boolean, responseStream: boolean): string {
  if (requestStream && responseStream) return 'bidi_stream';
  if (requestStream) return 'client_stream';
  return responseStream ? 'server_stream' : 'unary';
}

/**
 * Request ids, metrics and one line per call on `access` (the access logger). Listed first, it wraps the call closest to the
 * transport, so it also sees calls that interceptors listed after it (auth) refuse.
 */
export function observeInterceptor(metrics: ServerMetrics, access: Logger): ServerInterceptor {
  return (method, call) => {
    const [service = '', name = ''] = method.path.slice(1).split('/');
    const labels = {
      grpc_type: callType(method.requestStream, method.responseStream),
      grpc_service: service,
      grpc_method: name,
    };
    const started = process.hrtime.bigint();
    let requestId = '';
    let finished = false;
    const finish = (code: number, details: string) => {
      if (finished) return;
      finished = true;
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      metrics.grpcHandled.inc({...labels, grpc_code: grpcCodeName(code)});
      metrics.grpcHandlingSeconds.observe(labels, seconds);
      access.info(
        {
          req_id: requestId,
          method: method.path,
          code: grpcCodeName(code),
          ms: Math.round(seconds * 10_000) / 10,
          ...(code ? {details} : {}),
        },
        'grpc call',
      );
    };
    metrics.grpcStarted.inc(labels);
    return new ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, nextMetadata) => {
            requestId = validRequestId(metadata.get(REQUEST_ID_KEY)[0]) ?? randomUUID();
            metadata.set(REQUEST_ID_KEY, requestId);
            nextMetadata(metadata);
          },
          onCancel: () => finish(GrpcStatus.CANCELLED, 'cancelled by the client'),
        }),
      sendMetadata: (metadata, next) => {
        metadata.set(REQUEST_ID_KEY, requestId);
        next(metadata);
      },
      sendStatus: (status, next) => {
        finish(status.code, status.details);
        // Errors are often trailers-only: the request id rides in the trailers then.
        const metadata = status.metadata ?? new Metadata();
        metadata.set(REQUEST_ID_KEY, requestId);
        next({...status, metadata});
      },
    });
  };
}

/**
 * Bearer-token checks for every method `isPublic` does not name; the verified user id reaches the
 * handler as USER_ID_KEY metadata (a caller's own value of that key is dropped first).
 */
export function authInterceptor(
  isPublic: (path: string) => boolean,
  authenticate: (authorization: string | undefined) => Promise<{userId: string}>,
  encodeStatus: StatusEncoder,
): ServerInterceptor {
  return (method, call) => {
    return new ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, nextMetadata) => {
            metadata.remove(USER_ID_KEY);
            if (isPublic(method.path)) return nextMetadata(metadata);
            const authorization = metadata.get('authorization')[0];
            authenticate(typeof authorization === 'string' ? authorization : undefined).then(
              (principal) => {
                metadata.set(USER_ID_KEY, principal.userId);
                nextMetadata(metadata);
              },
              (error: unknown) => {
                const requestId = String(metadata.get(REQUEST_ID_KEY)[0] ?? '');
                const {code, details, metadata: trailers} = encodeStatus(error, requestId);
                call.sendStatus({code, details, metadata: trailers});
              },
            );
          },
        }),
    });
  };
}

/** What the server's deserializer gives for bytes that are not the method's request message. */
export class UndecodableRequest {
  constructor(readonly reason: string) {}
}

/**
 * Bad input the transport let through, answered INVALID_ARGUMENT (grpc-js would say INTERNAL): a
 * request that does not decode, a malformed grpc-timeout. Listed last, so that the status passes
 * the observe interceptor (counted and logged like any other).
 */
export function requestCheckInterceptor(refused: (reason: GrpcRefusal) => void): ServerInterceptor {
  return (method, call) =>
    new ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, nextMetadata) => {
            const timeout = metadata.get(INVALID_TIMEOUT_KEY)[0];
            if (timeout === undefined) return nextMetadata(metadata);
            refused('invalid_timeout');
            call.sendStatus({
              code: GrpcStatus.INVALID_ARGUMENT,
              details: `grpc-timeout "${String(timeout).slice(0, 32)}" is not valid: expected 1-8 digits and a unit (H, M, S, m, u, n), such as 500m.`,
            });
          },
          onReceiveMessage: (message, nextMessage) => {
            if (!(message instanceof UndecodableRequest)) return nextMessage(message);
            refused('invalid_message');
            call.sendStatus({
              code: GrpcStatus.INVALID_ARGUMENT,
              details: `The request is not a valid protobuf message for ${method.path}.`,
            });
          },
        }),
    });
}

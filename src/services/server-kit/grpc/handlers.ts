import {
  Metadata,
  status as GrpcStatus,
  type handleServerStreamingCall,
  type handleUnaryCall,
  type ServerErrorResponse,
  type ServerUnaryCall,
  type ServerWritableStream,
} from '@grpc/grpc-js';
import {invalidArgument} from '../api-errors.js';
import {REQUEST_ID_KEY, USER_ID_KEY} from './interceptors.js';
import type {StatusEncoder} from './status-details.js';

/** google.protobuf.Timestamp as proto-loader takes it (seconds as a string: 64-bit). */
export function timestamp(ms: number): {seconds: string; nanos: number} {
  const seconds = Math.floor(ms / 1000);
  return {seconds: String(seconds), nanos: Math.round(ms - seconds * 1000) * 1_000_000};
}

export function requestIdOf(metadata: Metadata): string {
  return String(metadata.get(REQUEST_ID_KEY)[0] ?? '');
}

/** The user the auth interceptor verified, if the method needed one. */
export function userIdOf(metadata: Metadata): string | undefined {
  const value = metadata.get(USER_ID_KEY)[0];
  return typeof value === 'string' ? value : undefined;
}

export function metadataText(metadata: Metadata, key: string): string | undefined {
  const value = metadata.get(key)[0];
  return typeof value === 'string' ? value : undefined;
}

/** A request field that must not be empty. */
export function required(value: string | undefined, field: string): string {
  if (!value) throw invalidArgument(field, `${field} is required`);
  return value;
}

/** What a handler may ask of its call without an AbortController: whether it is over, and its deadline. */
export type CallState = Pick<ServerUnaryCall<unknown, unknown>, 'cancelled' | 'getDeadline'>;

/** The call's deadline as Unix ms (Infinity when it has none). */
export function deadlineOf(call: CallState): number {
  const deadline = call.getDeadline();
  return deadline instanceof Date ? deadline.getTime() : deadline;
}

/**
 * A unary handler from an async function; any error becomes a status with decoded details.
 * `cancellation()` gives a signal that aborts when the caller gives up (deadline or cancel); it is
 * made on first use, since an AbortController per call is a measurable cost on a hot method that
 * never needs one (JoinQueue).
 */
export function unary<Req, Res>(
  encode: StatusEncoder,
  handle: (request: Req, metadata: Metadata, cancellation: () => AbortSignal, call: CallState) => Promise<Res>,
): handleUnaryCall<Req, Res> {
  return (call, callback) => {
    let controller: AbortController | undefined;
    const abort = () => controller?.abort();
    const cancellation = () => {
      if (!controller) {
        controller = new AbortController();
        if (call.cancelled) controller.abort();
      }
      return controller.signal;
    };
    call.once('cancelled', abort);
    // grpc-js reports 'cancelled' when every stream closes, answered or not: stop listening once
    // answered, or each call pays for an abort (and its DOMException) that nobody hears.
    const answer = (error: ServerErrorResponse | null, response?: Res) => {
      call.off('cancelled', abort);
      callback(error, response);
    };
    let handled: Promise<Res>;
    try {
      handled = handle(call.request, call.metadata, cancellation, call);
    } catch (error) {
      // Thrown before the handler's promise exists (reading metadata, say): the same status, not
      // grpc-js's UNKNOWN "Unknown error".
      handled = Promise.reject(error);
    }
    handled.then(
      (response) => answer(null, response),
      (error: unknown) => answer(encode(error, requestIdOf(call.metadata))),
    );
  };
}

/** Resolves when the stream's buffer has drained, or when `signal` aborts. */
function drained(call: ServerWritableStream<unknown, unknown>, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      call.off('drain', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    call.once('drain', done);
    signal.addEventListener('abort', done);
    if (signal.aborted) done();
  });
}

/**
 * A server-streaming handler from an async generator; it stops when the client cancels or `shutdown`
 * aborts, and an error ends the stream with its status. It pulls the next message only once the
 * transport took the last one (HTTP/2 flow control): a slow reader holds back the generator.
 */
export function serverStream<Req, Res>(
  encode: StatusEncoder,
  shutdown: AbortSignal,
  produce: (request: Req, metadata: Metadata, signal: AbortSignal) => AsyncIterable<Res>,
): handleServerStreamingCall<Req, Res> {
  return (call: ServerWritableStream<Req, Res>) => {
    const controller = new AbortController();
    const abort = () => controller.abort();
    call.on('cancelled', abort);
    shutdown.addEventListener('abort', abort);
    void (async () => {
      try {
        for await (const message of produce(call.request, call.metadata, controller.signal)) {
          if (controller.signal.aborted) break;
          // A reader that does not keep up stops the producer here, whose own backlog is bounded,
          // instead of growing the transport's buffer without end.
          if (!call.write(message)) await drained(call, controller.signal);
        }
        if (shutdown.aborted)
          call.emit('error', {code: GrpcStatus.UNAVAILABLE, details: 'The server is shutting down; reconnect.'});
        else if (!call.cancelled) call.end();
      } catch (error) {
        if (!call.cancelled) call.emit('error', encode(error, requestIdOf(call.metadata)));
      } finally {
        call.off('cancelled', abort);
        shutdown.removeEventListener('abort', abort);
      }
    })();
  };
}

import {Metadata, type handleUnaryCall, type UntypedServiceImplementation} from '@grpc/grpc-js';
import {TacosError} from '../errors.js';
import {
  deadlineOf,
  metadataText,
  required,
  requestIdOf,
  serverStream,
  timestamp,
  unary,
  userIdOf,
} from '../server-kit/grpc/handlers.js';
import type {GrpcRefusal} from '../server-kit/grpc/limits.js';
import type {GrpcServiceBinding} from '../server-kit/grpc/server.js';
import type {StatusEncoder} from '../server-kit/grpc/status-details.js';
import type {Authenticator} from './auth.js';
import {queueUpdateMessage} from './live/queue-messages.js';
import {
  BACKEND_PROTOCOL_HEADER,
  BACKEND_ROAD_HEADER,
  bookingCaller,
  reportedRoads,
  requestedBackendProtocol,
  type BookingService,
  type Caller,
} from './booking.js';
import {
  eventStatsMessage,
  isAdmissionReady,
  type EnterResult,
  type QueueService,
  type QueueState,
} from './queue/queue-service.js';
import {GATEWAY_SERVICE, QUEUE_SERVICE, WEBSOCKET_SERVICE} from '../service-names.js';
import {checkSendScope, streamUserOf, type UserUpdates} from './live/user-updates.js';

export interface GrpcApiDeps {
  queue: QueueService;
  booking: BookingService;
  /** The reservation and payment streams, and SendMessage. */
  updates: UserUpdates;
  authenticator: Authenticator;
  encode: StatusEncoder;
  /** Aborted when the gateway stops: streams end so that shutdown does not wait for them. */
  shutdown: AbortSignal;
  notReadyReason: () => Promise<string | undefined>;
  version: string;
  /** SERVER_ENVIRONMENT is production: development aids are off. */
  production: boolean;
  onRefusal: (reason: GrpcRefusal) => void;
}

/** Methods anyone may call; every other gateway method needs a bearer token. */
const PUBLIC_METHODS = [
  /^\/gateway\.v1\.QueueService\//,
  /^\/gateway\.v1\.WebSocketService\/StreamQueueUpdates$/,
  /^\/gateway\.v1\.GatewayService\/(HealthCheck|ValidateToken)$/,
  /^\/grpc\.health\.v1\.Health\//,
  /^\/grpc\.reflection\.v1(alpha)?\.ServerReflection\//,
];

export function isPublicMethod(path: string): boolean {
  return PUBLIC_METHODS.some((pattern) => pattern.test(path));
}

interface TokenRequest {
  waiting_token: string;
}

/** The gRPC door of the gateway: the same queue service the REST door calls. */
export function gatewayGrpcServices(deps: GrpcApiDeps): GrpcServiceBinding[] {
  const {queue, encode} = deps;
  // The auth interceptor has verified the caller of these methods and put the user id in metadata.
  // The roads the backend calls took ride in the initial metadata of an answer, in the trailers of an error.
  const booked =
    (handle: (request: Record<string, any>, caller: Caller) => Promise<object>): handleUnaryCall<any, object> =>
    (call, callback) => {
      let caller: Caller | undefined;
      const handler = unary(encode, (request: Record<string, any>, metadata, cancellation) => {
        caller = bookingCaller(userIdOf(metadata) ?? '', {
          requestId: requestIdOf(metadata),
          signal: cancellation(),
          protocol: requestedBackendProtocol(metadataText(metadata, BACKEND_PROTOCOL_HEADER), deps.production),
        });
        return handle(request, caller);
      });
      handler(call, (error, response) => {
        const roads = caller && reportedRoads(caller, deps.production);
        if (roads && error) {
          error.metadata ??= new Metadata();
          error.metadata.set(BACKEND_ROAD_HEADER, roads);
        } else if (roads) {
          const metadata = new Metadata();
          metadata.set(BACKEND_ROAD_HEADER, roads);
          call.sendMetadata(metadata);
        }
        callback(error, response);
      });
    };
  const queueService: UntypedServiceImplementation = {
    JoinQueue: unary(
      encode,
      async (request: {event_id: string; user_id: string; session_id: string}, metadata, _cancellation, call) => {
        const result = await queue.join({
          eventId: required(request.event_id, 'event_id'),
          userId: request.user_id,
          sessionId: request.session_id,
          idempotencyKey: metadataText(metadata, 'idempotency-key'),
          deadline: deadlineOf(call),
          cancelled: () => call.cancelled,
        });
        return {
          waiting_token: result.waitingToken,
          position_hint: result.position,
          eta_seconds: result.etaSeconds,
          status: 'QUEUE_STATUS_WAITING',
          expires_at: timestamp(result.expiresAt),
        };
      },
    ),
    GetQueueStatus: unary(encode, async (request: TokenRequest) => {
      const state = await queue.status(required(request.waiting_token, 'waiting_token'));
      return {
        status: queueStatus(state),
        position: state.status === 'waiting' ? state.position : 0,
        eta_seconds: state.status === 'waiting' ? state.etaSeconds : 0,
        admission_ready: isAdmissionReady(state),
        expires_at: state.status === 'waiting' ? timestamp(state.expiresAt) : null,
      };
    }),
    RequestAdmission: unary(encode, async (request: TokenRequest, metadata) => {
      const result = await queue.enter(required(request.waiting_token, 'waiting_token'));
      return admissionResponse(result, requestIdOf(metadata));
    }),
    LeaveQueue: unary(encode, async (request: TokenRequest) => {
      const {leftAt} = await queue.leave(required(request.waiting_token, 'waiting_token'));
      return {success: true, left_at: timestamp(leftAt)};
    }),
    // One event, or the first page of the events with waiting tokens (REST pages on with its cursor).
    GetQueueStats: unary(encode, async (request: {event_id: string}) => {
      const page = request.event_id
        ? {events: [await queue.stats(request.event_id)], activeEvents: undefined}
        : await queue.statsPage();
      const {events} = page;
      const now = Date.now();
      const waiting = events.reduce((sum, event) => sum + event.waiting, 0);
      const admitted = events.reduce((sum, event) => sum + event.admitted, 0);
      const perMinute = events.reduce((sum, event) => sum + event.admittedLastMinute, 0);
      return {
        events: events.map((event) => ({...eventStatsMessage(event), last_updated: timestamp(now)})),
        system: {
          total_active_queues: page.activeEvents ?? events.filter((event) => event.waiting > 0).length,
          total_waiting_users: waiting,
          total_admitted_users: admitted,
          average_admission_rate: events.length ? perMinute / events.length : 0,
          last_updated: timestamp(now),
        },
      };
    }),
  };

  // A stream of the bearer token's user (a request naming another user is refused), of the ids in `idsField`.
  const userStream = (
    idsField: string,
    follow: (userId: string, ids: string[], signal: AbortSignal, sessionId: string) => AsyncIterable<object>,
  ) =>
    serverStream(encode, deps.shutdown, (request: Record<string, any>, metadata, signal) => {
      try {
        return follow(
          streamUserOf(userIdOf(metadata) ?? '', request.user_id),
          request[idsField],
          signal,
          request.session_id,
        );
      } catch (error) {
        // The cap of streams per user (in this process).
        if (error instanceof TacosError && error.code === 'RATE_LIMITED') deps.onRefusal('streams_per_user');
        throw error;
      }
    });
  const webSocketService: UntypedServiceImplementation = {
    StreamQueueUpdates: serverStream(encode, deps.shutdown, async function* (request: TokenRequest, metadata, signal) {
      const waitingToken = required(request.waiting_token, 'waiting_token');
      try {
        for await (const state of queue.watch(waitingToken, signal)) {
          const message = queueUpdateMessage(state, requestIdOf(metadata));
          if (!message) return;
          yield message;
        }
      } catch (error) {
        // The feed's cap of streams per token (all doors together).
        if (error instanceof TacosError && error.code === 'RATE_LIMITED') deps.onRefusal('streams_per_token');
        throw error;
      }
    }),
    StreamReservationUpdates: userStream('reservation_ids', (...args) => deps.updates.reservationUpdates(...args)),
    StreamPaymentUpdates: userStream('payment_intent_ids', (...args) => deps.updates.paymentUpdates(...args)),
    SendMessage: unary(encode, async (request: Record<string, any>, metadata) => {
      const principal = await deps.authenticator.authenticate(metadataText(metadata, 'authorization'));
      checkSendScope(principal.scopes);
      const sent = await deps.updates.sendMessage({
        targetUserId: request.target_user_id,
        targetSessionId: request.target_session_id,
        messageType: request.message_type,
        title: request.title,
        content: request.content,
        data: request.data ?? {},
        priority: request.priority,
      });
      return {delivered: sent.delivered, message_id: sent.messageId, sent_at: timestamp(sent.sentAt), error: null};
    }),
  };

  const gatewayService: UntypedServiceImplementation = {
    HealthCheck: unary(encode, async () => {
      const started = Date.now();
      const reason = await deps.notReadyReason();
      const status = reason ? 'HEALTH_STATUS_UNHEALTHY' : 'HEALTH_STATUS_HEALTHY';
      return {
        status,
        services: {
          redis: {
            status,
            response_time_ms: Date.now() - started,
            version: deps.version,
            last_check: timestamp(Date.now()),
          },
        },
        timestamp: timestamp(Date.now()),
      };
    }),
    ValidateToken: unary(encode, async (request: {token: string}) => {
      try {
        const principal = await deps.authenticator.verify(required(request.token, 'token'));
        return {
          valid: true,
          user: {user_id: principal.userId, roles: [], attributes: {}},
          scopes: principal.scopes,
          expires_at: principal.expiresAt === undefined ? null : timestamp(principal.expiresAt),
        };
      } catch (error) {
        if (!(error instanceof TacosError) || error.code !== 'UNAUTHENTICATED') throw error;
        return {valid: false, error: {code: 'ERROR_CODE_UNAUTHENTICATED', message: error.message}};
      }
    }),
    GetEventAvailability: booked((request, caller) => deps.booking.eventAvailability(request, caller)),
    CreateReservation: booked((request, caller) => deps.booking.createReservation(request, caller)),
    GetReservation: booked((request, caller) => deps.booking.getReservation(request, caller)),
    ConfirmReservation: booked((request, caller) => deps.booking.confirmReservation(request, caller)),
    CancelReservation: booked((request, caller) => deps.booking.cancelReservation(request, caller)),
    CreatePaymentIntent: booked((request, caller) => deps.booking.createPaymentIntent(request, caller)),
    GetPaymentStatus: booked((request, caller) => deps.booking.getPaymentStatus(request, caller)),
  };

  return [
    {name: QUEUE_SERVICE, implementation: queueService},
    {name: WEBSOCKET_SERVICE, implementation: webSocketService},
    {name: GATEWAY_SERVICE, implementation: gatewayService},
  ];
}

function queueStatus(state: QueueState): string {
  if (isAdmissionReady(state)) return 'QUEUE_STATUS_READY';
  return {
    waiting: 'QUEUE_STATUS_WAITING',
    admitted: 'QUEUE_STATUS_READY',
    left: 'QUEUE_STATUS_LEFT',
    expired: 'QUEUE_STATUS_EXPIRED',
  }[state.status];
}

function admissionResponse(result: EnterResult, traceId: string) {
  switch (result.outcome) {
    case 'granted':
      return {
        admission: 'ADMISSION_STATUS_GRANTED',
        reservation_token: result.reservationToken,
        ttl_seconds: result.ttlSeconds,
        valid_until: timestamp(result.validUntil),
      };
    case 'denied':
      return {
        admission: 'ADMISSION_STATUS_DENIED',
        error: {code: 'ERROR_CODE_FAILED_PRECONDITION', message: result.message, trace_id: traceId},
      };
    case 'expired':
      return {
        admission: 'ADMISSION_STATUS_EXPIRED',
        error: {code: 'ERROR_CODE_FAILED_PRECONDITION', message: 'The waiting token expired.', trace_id: traceId},
      };
    case 'left':
      return {
        admission: 'ADMISSION_STATUS_INVALID',
        error: {
          code: 'ERROR_CODE_FAILED_PRECONDITION',
          message: 'The waiting token left the queue.',
          trace_id: traceId,
        },
      };
  }
}

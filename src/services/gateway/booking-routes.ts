import type {FileRegistry, JsonObject} from '@bufbuild/protobuf';
import type {PackageDefinition} from '@grpc/proto-loader';
import type {FastifyRequest} from 'fastify';
import {methodCodec} from '../grpc/json-codec.js';
import type {HttpServer} from '../http/server.js';
import type {Authenticator} from './auth.js';
import {BACKEND_PROTOCOL_HEADER, requestedBackendProtocol, type BookingService, type Caller} from './booking.js';
import {callerSignal} from '../http/server.js';

export interface BookingRoutesDeps {
  booking: BookingService;
  authenticator: Authenticator;
  registry: FileRegistry;
  definition: PackageDefinition;
  /** SERVER_ENVIRONMENT is production: development aids are off. */
  production: boolean;
}

interface RestRoute {
  verb: 'GET' | 'POST';
  path: string;
  /** The message types of the body and answer: a GatewayService method, or another service's. */
  service: string;
  method: string;
  status?: number;
  /** The part of the answer REST returns, when not all of it. */
  field?: string;
  invoke: (booking: BookingService, request: Record<string, any>, caller: Caller) => Promise<object>;
}

const GATEWAY = 'gateway.v1.GatewayService';

const ROUTES: RestRoute[] = [
  {verb: 'GET', path: '/api/v1/events/:event_id/availability', service: GATEWAY, method: 'GetEventAvailability', invoke: (b, r, c) => b.eventAvailability(r, c)},
  {verb: 'POST', path: '/api/v1/reservations', service: GATEWAY, method: 'CreateReservation', status: 201, invoke: (b, r, c) => b.createReservation(r, c)},
  {verb: 'GET', path: '/api/v1/reservations/:reservation_id', service: GATEWAY, method: 'GetReservation', field: 'reservation', invoke: (b, r, c) => b.getReservation(r, c)},
  {verb: 'POST', path: '/api/v1/reservations/:reservation_id/confirm', service: GATEWAY, method: 'ConfirmReservation', invoke: (b, r, c) => b.confirmReservation(r, c)},
  {verb: 'POST', path: '/api/v1/reservations/:reservation_id/cancel', service: GATEWAY, method: 'CancelReservation', invoke: (b, r, c) => b.cancelReservation(r, c)},
  {verb: 'POST', path: '/api/v1/payment/intent', service: GATEWAY, method: 'CreatePaymentIntent', invoke: (b, r, c) => b.createPaymentIntent(r, c)},
  {verb: 'GET', path: '/api/v1/payment/:payment_intent_id/status', service: GATEWAY, method: 'GetPaymentStatus', field: 'payment', invoke: (b, r, c) => b.getPaymentStatus(r, c)},
  {verb: 'POST', path: '/api/v1/payment/process', service: 'payment.v1.PaymentService', method: 'ProcessPayment', invoke: (b, r, c) => b.processPayment(r, c)},
];

/**
 * The REST routes of reservations and payments: bearer-token auth, the body (plus path and query)
 * read as the method's request in proto3 JSON, the same BookingService as the gRPC door, and the
 * answer in proto3 JSON with the .proto field names.
 */
export function addBookingRoutes(app: HttpServer, deps: BookingRoutesDeps): void {
  const users = new WeakMap<FastifyRequest, string>();
  for (const route of ROUTES) {
    const codec = methodCodec(deps.registry, deps.definition, route.service, route.method);
    app.route({
      method: route.verb,
      url: route.path,
      preHandler: async (request) => {
        const principal = await deps.authenticator.authenticate(request.headers.authorization);
        users.set(request, principal.userId);
      },
      handler: async (request, reply) => {
        const message = codec.requestFromHttp(request.params as Record<string, string>, request.query as Record<string, unknown>, request.body) as Record<string, any>;
        // The Idempotency-Key header counts as the body's idempotency_key, as on /queue/join.
        const header = request.headers['idempotency-key'];
        if (typeof header === 'string' && 'idempotency_key' in message && !message.idempotency_key) message.idempotency_key = header;
        const response = await route.invoke(deps.booking, message, {
          userId: users.get(request) ?? '',
          requestId: request.id,
          signal: callerSignal(reply),
          protocol: requestedBackendProtocol(request.headers[BACKEND_PROTOCOL_HEADER], deps.production),
        });
        const {error: _unused, ...answer} = codec.responseToJson(response) as JsonObject;
        reply.code(route.status ?? 200);
        return route.field ? answer[route.field] : answer;
      },
    });
  }
}

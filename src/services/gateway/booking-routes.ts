import type {FileRegistry, JsonObject} from '@bufbuild/protobuf';
import type {PackageDefinition} from '@grpc/proto-loader';
import type {FastifyRequest} from 'fastify';
import {methodCodec} from '../server-kit/grpc/json-codec.js';
import type {HttpServer} from '../server-kit/http/server.js';
import type {Authenticator} from './auth.js';
import {
  BACKEND_PROTOCOL_HEADER,
  BACKEND_ROAD_HEADER,
  bookingCaller,
  reportedRoads,
  requestedBackendProtocol,
  type BookingService,
  type Caller,
} from './booking.js';
import {callerSignal} from '../server-kit/http/server.js';
import {invalidArgument} from '../server-kit/api-errors.js';
import {TacosError} from '../errors.js';
import {GATEWAY_SERVICE, PAYMENT_SERVICE} from '../service-names.js';

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
  /** Paths of one route (the web client says /payments, the Go gateway /payment). */
  paths: string[];
  /** The message types of the body and answer: a GatewayService method, or another service's. */
  service: string;
  method: string;
  status?: number;
  /** The body as the Go gateway and the web client send it, made a proto3 JSON request. */
  fromRest?: (body: Json, registry: FileRegistry) => Json;
  invoke: (booking: BookingService, request: Record<string, any>, caller: Caller) => Promise<Record<string, any>>;
  /** The answer in the Go gateway's shape (its fields, with its JSON types), from proto3 JSON and the raw answer. */
  toRest?: (answer: Json, response: Record<string, any>, caller: Caller, body: Json) => Json;
  /** Payment routes name an unknown intent PAYMENT_NOT_FOUND, as the Go gateway does. */
  payment?: boolean;
}

type Json = Record<string, any>;

const paymentPaths = (suffix: string) => [`/api/v1/payment/${suffix}`, `/api/v1/payments/${suffix}`];

const ROUTES: RestRoute[] = [
  {
    verb: 'GET',
    paths: ['/api/v1/events/:event_id/availability'],
    service: GATEWAY_SERVICE,
    method: 'GetEventAvailability',
    invoke: (b, r, c) => b.eventAvailability(r, c),
  },
  {
    verb: 'POST',
    paths: ['/api/v1/reservations'],
    service: GATEWAY_SERVICE,
    method: 'CreateReservation',
    status: 201,
    invoke: (b, r, c) => b.createReservation(r, c),
    toRest: (answer, response, caller) => {
      const seatIds = (answer.reserved_seats ?? []).map((seat: Json) => seat.id);
      return {
        ...answer,
        event_id: response.event_id,
        seat_ids: seatIds,
        quantity: seatIds.length,
        user_id: caller.userId,
      };
    },
  },
  {
    verb: 'GET',
    paths: ['/api/v1/reservations/:reservation_id'],
    service: GATEWAY_SERVICE,
    method: 'GetReservation',
    invoke: (b, r, c) => b.getReservation(r, c),
    toRest: (answer) => answer.reservation,
  },
  {
    verb: 'POST',
    paths: ['/api/v1/reservations/:reservation_id/confirm'],
    service: GATEWAY_SERVICE,
    method: 'ConfirmReservation',
    invoke: (b, r, c) => b.confirmReservation(r, c),
  },
  {
    verb: 'POST',
    paths: ['/api/v1/reservations/:reservation_id/cancel'],
    service: GATEWAY_SERVICE,
    method: 'CancelReservation',
    invoke: (b, r, c) => b.cancelReservation(r, c),
  },
  {
    verb: 'POST',
    paths: paymentPaths('intent'),
    service: GATEWAY_SERVICE,
    method: 'CreatePaymentIntent',
    fromRest: (body, registry) => intentFromRest(requireId(body, 'reservation_id', 'MISSING_RESERVATION_ID'), registry),
    // A named scenario is the web client's test switch: it never calls process, so the payment settles by itself.
    invoke: (b, r, c) =>
      b.createPaymentIntent(r, c, {
        anyPositiveAmount: true,
        settleAtOnce: r.scenario !== 'PAYMENT_SCENARIO_UNSPECIFIED',
      }),
    toRest: (answer, response) => ({
      ...answer,
      ...flatAmount(response.amount),
      reservation_id: response.reservation_id,
    }),
  },
  {
    verb: 'GET',
    paths: paymentPaths(':payment_intent_id/status'),
    service: GATEWAY_SERVICE,
    method: 'GetPaymentStatus',
    payment: true,
    invoke: (b, r, c) => b.getPaymentStatus(r, c),
    toRest: (answer) => ({...answer.payment, ...flatAmount(answer.payment.amount)}),
  },
  {
    verb: 'POST',
    paths: paymentPaths('process'),
    service: PAYMENT_SERVICE,
    method: 'ProcessPayment',
    payment: true,
    // The action is checked as the Go gateway does, and not forwarded: the intent's scenario decides.
    fromRest: ({action, ...body}) => {
      requireId(body, 'payment_intent_id', 'MISSING_PAYMENT_INTENT_ID');
      if (action !== undefined && action !== 'approve' && action !== 'fail') {
        throw new TacosError(`action must be approve or fail (got ${JSON.stringify(action)}).`, {
          code: 'INVALID_ACTION',
          field: 'action',
        });
      }
      return body;
    },
    invoke: (b, r, c) => b.processPayment(r, c),
    toRest: (answer, _response, _caller, body) => ({
      ...answer,
      action: body.action ?? 'approve',
      message: answer.status === 'COMPLETED' ? 'Payment approved' : `Payment ${String(answer.status).toLowerCase()}`,
    }),
  },
];

/** The Go gateway's intent body (amount a number, currency apart; scenario a lower-case word) as proto3 JSON. */
function intentFromRest(body: Json, registry: FileRegistry): Json {
  const {amount, currency, scenario, ...rest} = body;
  const request: Json = {...rest};
  if (typeof scenario === 'string' && scenario !== '') request.scenario = scenarioName(scenario, registry);
  else if (scenario !== undefined) request.scenario = scenario;
  // The object form {amount, currency} (our gRPC Money) is checked as the Go number form is.
  const value = amount !== null && typeof amount === 'object' ? amount.amount : amount;
  const money = amount !== null && typeof amount === 'object' ? amount.currency : currency;
  if (amount === undefined) return request;
  const units = typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : value;
  if (typeof units !== 'number' || !Number.isSafeInteger(units) || units <= 0) {
    throw new TacosError(`amount must be a whole number greater than 0 (got ${JSON.stringify(value ?? null)}).`, {
      code: 'INVALID_AMOUNT',
      field: 'amount',
    });
  }
  if (money !== undefined && typeof money !== 'string')
    throw invalidArgument('currency', 'currency must be a text such as "KRW".');
  request.amount = {amount: String(units), currency: money || 'KRW'};
  return request;
}

/** A scenario as the web client writes it (approve) or by its enum name (PAYMENT_SCENARIO_APPROVE): the enum name. */
function scenarioName(scenario: string, registry: FileRegistry): string {
  const prefix = 'PAYMENT_SCENARIO_';
  const names = registry.getEnum('payment.v1.PaymentScenario')?.values.map((value) => value.name) ?? [];
  const name = scenario.startsWith(prefix) ? scenario : prefix + scenario.toUpperCase();
  if (!names.includes(name)) {
    const words = names
      .filter((known) => known !== `${prefix}UNSPECIFIED`)
      .map((known) => known.slice(prefix.length).toLowerCase());
    throw invalidArgument('scenario', `scenario must be one of ${words.join(', ')} (got ${JSON.stringify(scenario)}).`);
  }
  return name;
}

/** The body with this id present (a non-empty text), else the Go gateway's error code for its absence. */
function requireId(body: Json, field: string, code: string): Json {
  if (typeof body[field] !== 'string' || body[field] === '')
    throw new TacosError(`${field} is required.`, {code, field});
  return body;
}

/** Money (int64 amount as a proto3 JSON string) as the Go gateway's two fields: a number and a currency. */
function flatAmount(money: Json | undefined): {amount: number; currency: string} {
  return {amount: Number(money?.amount ?? 0), currency: money?.currency ?? 'KRW'};
}

/** Status enum names (RESERVATION_STATUS_HOLD) as the plain words clients read (HOLD); int64 money amounts as numbers. */
function plainValues(value: unknown, key = ''): unknown {
  if (Array.isArray(value)) return value.map((item) => plainValues(item));
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).map(([name, item]) => [name, plainValues(item, name)]);
    const object = Object.fromEntries(entries) as Json;
    // Money: KRW amounts stay far below 2^53, so a JSON number is exact.
    if (typeof object.amount === 'string' && typeof object.currency === 'string' && /^-?\d+$/.test(object.amount))
      object.amount = Number(object.amount);
    return object;
  }
  if (key === 'status' && typeof value === 'string') return value.replace(/^(RESERVATION|PAYMENT|SEAT)_STATUS_/, '');
  return value;
}

/**
 * The REST routes of reservations and payments: bearer-token auth, the body (plus path and query)
 * read as the method's request in proto3 JSON (after the Go gateway's body forms are translated),
 * the same BookingService as the gRPC door, and the answer in proto3 JSON with the .proto field
 * names plus the Go gateway's fields with its JSON types: plain status words, amounts as numbers.
 * Only REST changes shape; the gRPC door keeps proto semantics.
 */
export function addBookingRoutes(app: HttpServer, deps: BookingRoutesDeps): void {
  const users = new WeakMap<FastifyRequest, string>();
  for (const route of ROUTES) {
    const codec = methodCodec(deps.registry, deps.definition, route.service, route.method);
    for (const url of route.paths) {
      app.route({
        method: route.verb,
        url,
        preHandler: async (request) => {
          const principal = await deps.authenticator.authenticate(request.headers.authorization);
          users.set(request, principal.userId);
        },
        handler: async (request, reply) => {
          const body =
            request.body !== null && typeof request.body === 'object' && !Array.isArray(request.body) && route.fromRest
              ? route.fromRest(request.body, deps.registry)
              : request.body;
          const message = codec.requestFromHttp(
            request.params as Record<string, string>,
            request.query as Record<string, unknown>,
            body,
          ) as Record<string, any>;
          // The Idempotency-Key header counts as the body's idempotency_key, as on /queue/join.
          const header = request.headers['idempotency-key'];
          if (typeof header === 'string' && 'idempotency_key' in message && !message.idempotency_key)
            message.idempotency_key = header;
          const caller = bookingCaller(users.get(request) ?? '', {
            requestId: request.id,
            signal: callerSignal(reply),
            protocol: requestedBackendProtocol(request.headers[BACKEND_PROTOCOL_HEADER], deps.production),
          });
          const response = await route.invoke(deps.booking, message, caller).catch((error: unknown) => {
            // An error answer says the roads too: the calls that failed took them.
            const roads = reportedRoads(caller, deps.production);
            if (roads) void reply.header(BACKEND_ROAD_HEADER, roads);
            throw route.payment && error instanceof TacosError && error.code === 'NOT_FOUND'
              ? new TacosError(error.message, {code: 'PAYMENT_NOT_FOUND', cause: error})
              : error;
          });
          const {error: _unused, ...answer} = plainValues(codec.responseToJson(response)) as JsonObject;
          const shaped = route.toRest
            ? route.toRest(answer, plainValues(response) as Json, caller, request.body ?? {})
            : answer;
          logDifferences(request, message, shaped);
          const roads = reportedRoads(caller, deps.production);
          if (roads) void reply.header(BACKEND_ROAD_HEADER, roads);
          reply.code(route.status ?? 200);
          return shaped;
        },
      });
    }
  }
}

/** What the caller asked for but did not get (another event, another amount): said in the log. */
function logDifferences(request: FastifyRequest, message: Json, answer: Json): void {
  if (message.event_id && answer.event_id && message.event_id !== answer.event_id) {
    request.log.info(
      {asked_event_id: message.event_id, event_id: answer.event_id},
      'reserved for the event the reservation token was issued for',
    );
  }
  const asked = message.amount as Json | undefined;
  if (
    asked &&
    typeof answer.amount === 'number' &&
    (Number(asked.amount) !== answer.amount || asked.currency !== answer.currency)
  ) {
    request.log.info(
      {
        asked_amount: Number(asked.amount),
        asked_currency: asked.currency,
        amount: answer.amount,
        currency: answer.currency,
      },
      "payment intent charges the reservation's total, not the amount sent",
    );
  }
}

import type {BackendClient, CallContext} from '../backends/backend-client.js';
import {backendDidNothing} from '../backends/errors.js';
import type {Protocol} from '../backends/transports.js';
import {invalidArgument} from '../server-kit/api-errors.js';
import {TacosError} from '../errors.js';
import {required} from '../server-kit/grpc/handlers.js';
import type {Logger} from '../logging.js';
import {SETTLE_AT_ONCE_TAG} from '../settle-at-once.js';
import type {QueueService} from './queue/queue-service.js';
import type {UserUpdates} from './live/user-updates.js';
import {INVENTORY_SERVICE, PAYMENT_SERVICE, RESERVATION_SERVICE} from '../service-names.js';

/** The request header (gRPC metadata key) that picks the backend transport of one call, outside production. */
export const BACKEND_PROTOCOL_HEADER = 'x-tacos-backend-protocol';

/**
 * The transport a caller asked for with x-tacos-backend-protocol, so that `tacos bench` can run the
 * same path over gRPC and over HTTP. A development aid: production ignores it.
 */
export function requestedBackendProtocol(value: unknown, production: boolean): Protocol | undefined {
  if (production || value === undefined || value === '') return undefined;
  if (value === 'grpc' || value === 'http') return value;
  throw invalidArgument(BACKEND_PROTOCOL_HEADER, `${BACKEND_PROTOCOL_HEADER} must be grpc or http.`);
}

/** The answer header (gRPC metadata key) that says which roads the backend calls of a booking call took, outside production. */
export const BACKEND_ROAD_HEADER = 'x-tacos-backend-road';

/** Who is calling: the verified user, the request id that follows the call, and the signal of the caller leaving. */
export interface Caller extends CallContext {
  userId: string;
}

/**
 * A booking caller as both doors make it: the user id keeps the user on one road to the backends
 * (the sticky split), and the roads its backend calls take are gathered for the answer.
 */
export function bookingCaller(userId: string, context: Pick<CallContext, 'requestId' | 'signal' | 'protocol'>): Caller {
  return {...context, userId, callerKey: userId || undefined, roads: new Set()};
}

/** The x-tacos-backend-road value of an answer (`grpc`, `http`, `grpc,http`); none in production or without backend calls. */
export function reportedRoads(caller: Caller, production: boolean): string | undefined {
  if (production || !caller.roads?.size) return undefined;
  return [...caller.roads].sort().join(',');
}

type Message = Record<string, any>;

/** What one user may send through the booking calls: refused at the door, before any backend call. */
export interface BookingLimits {
  /** Seats one reservation may name or ask for; an event's own rule (the backend's) may be lower. */
  maxSeatsPerOrder: number;
  /** Characters of any one text a client sends on (ids, reason, webhook_url, payment details...). */
  maxTextLength: number;
  /** Booking calls of one user in flight at once; the next is refused until one ends. */
  maxInFlightPerUser: number;
}

export interface BookingOptions {
  limits: BookingLimits;
  /** SERVER_ENVIRONMENT is production: the payment mock's test switches from clients are dropped. */
  production: boolean;
  logger: Logger;
  /** Told of each call refused at the door, by its code. */
  onRefused?: (code: string) => void;
  /** Where the changes this gateway makes go, for the users' update streams. */
  updates?: Pick<UserUpdates, 'reservationChanged' | 'paymentChanged'>;
}

/**
 * Reservations and payments through the gateway, shared by its REST and gRPC doors. Requests and
 * responses are gateway.v1 messages as handlers see them; the backends are reached through their
 * clients (gRPC or HTTP, with deadlines and a circuit breaker). Every call is checked at the door
 * first (sizes, the caller's calls in flight), so that one user's request cannot cost the others.
 */
export class BookingService {
  /** Calls in flight per user; a user without any has no entry, so the map is as big as the calls in flight. */
  private readonly inFlight = new Map<string, number>();

  constructor(
    private readonly reservation: BackendClient,
    private readonly payment: BackendClient,
    private readonly queue: QueueService,
    private readonly options: BookingOptions,
  ) {}

  eventAvailability(request: Message, caller: Caller): Promise<Message> {
    return this.reading(request, () => this.availability(request, caller));
  }

  createReservation(request: Message, caller: Caller): Promise<Message> {
    return this.changing(request, caller, () => this.reserve(request, caller));
  }

  getReservation(request: Message, caller: Caller): Promise<Message> {
    return this.reading(request, () => this.findReservation(request, caller));
  }

  confirmReservation(request: Message, caller: Caller): Promise<Message> {
    return this.changing(request, caller, () => this.confirm(request, caller));
  }

  cancelReservation(request: Message, caller: Caller): Promise<Message> {
    return this.changing(request, caller, () => this.cancel(request, caller));
  }

  createPaymentIntent(request: Message, caller: Caller, options: IntentOptions = {}): Promise<Message> {
    return this.changing(request, caller, () => this.createIntent(request, caller, options));
  }

  getPaymentStatus(request: Message, caller: Caller): Promise<Message> {
    return this.reading(request, () => this.paymentStatus(request, caller));
  }

  processPayment(request: Message, caller: Caller): Promise<Message> {
    return this.changing(request, caller, () => this.process(request, caller));
  }

  /** Runs a read if the request is within the limits: seats first (before anything walks the list), then every text. */
  private reading(request: Message, work: () => Promise<Message>): Promise<Message> {
    const {limits} = this.options;
    try {
      checkSeats(request, limits.maxSeatsPerOrder);
      checkTexts(request, limits.maxTextLength, '');
    } catch (error) {
      this.refused(error as TacosError);
      throw error;
    }
    return work();
  }

  /**
   * Runs a call that holds or changes something (seats, payments) if the request is within the limits
   * and the caller has a slot free, held until the call ends. Reads take no slot: many at once from one
   * user (a load test) are the rate limit's business, and they hold nothing.
   */
  private async changing(request: Message, caller: Caller, work: () => Promise<Message>): Promise<Message> {
    const max = this.options.limits.maxInFlightPerUser;
    return this.reading(request, async () => {
      const running = this.inFlight.get(caller.userId) ?? 0;
      if (running >= max) {
        const error = new TacosError(`You have ${running} booking calls in flight; at most ${max} at once.`, {
          code: 'TOO_MANY_IN_FLIGHT',
          hint: 'Wait for an answer before the next call (BOOKING_MAX_IN_FLIGHT_PER_USER).',
        });
        this.refused(error);
        throw error;
      }
      this.inFlight.set(caller.userId, running + 1);
      try {
        return await work();
      } finally {
        const left = (this.inFlight.get(caller.userId) ?? 1) - 1;
        if (left > 0) this.inFlight.set(caller.userId, left);
        else this.inFlight.delete(caller.userId);
      }
    });
  }

  private refused(error: TacosError): void {
    this.options.onRefused?.(error.code);
  }

  private async availability(request: Message, caller: Caller): Promise<Message> {
    const inventory = await this.reservation.call(
      INVENTORY_SERVICE,
      'GetInventoryStatus',
      {event_id: required(request.event_id, 'event_id'), section: request.section},
      caller,
    );
    return {
      event: inventory.event,
      sections: inventory.sections,
      total_available: inventory.stats?.available_seats ?? 0,
    };
  }

  /**
   * Needs a reservation token from the queue, and uses it up (given back only when the backend surely
   * made nothing). The token is bound to the event it was issued for: the reservation is made for that
   * event whatever event_id says (the web client always sends its default event), and the answer's
   * event_id names it.
   */
  private async reserve(request: Message, caller: Caller): Promise<Message> {
    required(request.event_id, 'event_id');
    const token = await this.queue.consumeReservationToken(required(request.reservation_token, 'reservation_token'));
    if (!token) {
      throw new TacosError('The reservation token is unknown, already used, or older than its 30 s.', {
        code: 'RESERVATION_TOKEN_INVALID',
        hint: 'Enter through the queue again (POST /api/v1/queue/enter) for a new reservation token.',
      });
    }
    try {
      const created = await this.reservation.call(
        RESERVATION_SERVICE,
        'CreateReservation',
        {
          event_id: token.eventId,
          seat_ids: request.seat_ids,
          quantity: request.quantity,
          user_id: caller.userId,
          reservation_token: request.reservation_token,
          // A repeat of a request the backend answered gets the first answer, not a second hold.
          idempotency_key: userKey(caller, request.idempotency_key || `rt:${request.reservation_token}`),
          metadata: {
            source: 'gateway',
            session_id: request.metadata?.session_id ?? '',
            user_agent: request.metadata?.user_agent ?? '',
            ip_address: request.metadata?.ip_address ?? '',
          },
        },
        caller,
      );
      this.options.updates?.reservationChanged(
        caller.userId,
        {
          id: created.reservation_id,
          oldStatus: 'RESERVATION_STATUS_UNSPECIFIED',
          newStatus: created.status,
          holdExpiresAt: created.hold_expires_at ?? undefined,
        },
        caller.requestId,
      );
      // event_id is not in the gRPC answer (ignored there); REST answers it, as the Go gateway does.
      return {...created, error: null, event_id: token.eventId};
    } catch (error) {
      // The backend refused (a taken seat, too many seats) or was never asked (circuit open, caller
      // gone first): no hold was made, the token stays usable. A key reused for another request keeps
      // it spent. After a timeout or a broken call a hold may exist: the token stays spent, or one
      // token could hold seats again and again.
      if (backendDidNothing(error) && !(error instanceof TacosError && error.code === 'IDEMPOTENCY_CONFLICT')) {
        await token.restore();
        throw error;
      }
      throw outcomeUnknown(error);
    }
  }

  private async findReservation(request: Message, caller: Caller): Promise<Message> {
    const found = await this.reservation.call(
      RESERVATION_SERVICE,
      'GetReservation',
      {reservation_id: required(request.reservation_id, 'reservation_id'), user_id: caller.userId},
      caller,
    );
    return {reservation: found.reservation};
  }

  /** Confirms only against a payment that completed for this reservation: otherwise 412. */
  private async confirm(request: Message, caller: Caller): Promise<Message> {
    const reservationId = required(request.reservation_id, 'reservation_id');
    const paymentIntentId = required(request.payment_intent_id, 'payment_intent_id');
    const {payment} = await this.payment.call(
      PAYMENT_SERVICE,
      'GetPaymentStatus',
      {payment_intent_id: paymentIntentId, user_id: caller.userId},
      caller,
    );
    if (
      payment?.status !== 'PAYMENT_STATUS_COMPLETED' ||
      (payment.reservation_id && payment.reservation_id !== reservationId)
    ) {
      const why =
        payment?.status === 'PAYMENT_STATUS_COMPLETED'
          ? 'was made for another reservation'
          : `is ${String(payment?.status ?? 'unknown')
              .replace('PAYMENT_STATUS_', '')
              .toLowerCase()}`;
      throw new TacosError(`Payment ${paymentIntentId} ${why}: the reservation is not confirmed.`, {
        code: 'PAYMENT_NOT_APPROVED',
      });
    }
    const confirmed = await this.reservation.call(
      RESERVATION_SERVICE,
      'ConfirmReservation',
      {
        reservation_id: reservationId,
        payment_intent_id: paymentIntentId,
        user_id: caller.userId,
        idempotency_key: userKey(caller, request.idempotency_key),
      },
      caller,
    );
    this.reservationLeftHold(caller, reservationId, confirmed.status);
    return {...confirmed, error: null};
  }

  private async cancel(request: Message, caller: Caller): Promise<Message> {
    const reservationId = required(request.reservation_id, 'reservation_id');
    const cancelled = await this.reservation.call(
      RESERVATION_SERVICE,
      'CancelReservation',
      {
        reservation_id: reservationId,
        user_id: caller.userId,
        reason: request.reason,
        idempotency_key: userKey(caller, request.idempotency_key),
      },
      caller,
    );
    this.reservationLeftHold(caller, reservationId, cancelled.status);
    return {...cancelled, error: null};
  }

  /** Confirming and cancelling both end a hold (the backend takes neither from another status). */
  private reservationLeftHold(caller: Caller, reservationId: string, newStatus: string): void {
    this.options.updates?.reservationChanged(
      caller.userId,
      {id: reservationId, oldStatus: 'RESERVATION_STATUS_HOLD', newStatus},
      caller.requestId,
    );
  }

  private paymentChanged(caller: Caller, id: string, oldStatus: string, newStatus: string): void {
    this.options.updates?.paymentChanged(caller.userId, {id, oldStatus, newStatus}, caller.requestId);
  }

  /**
   * The charge is always the reservation's total. An amount that differs is refused, unless the
   * caller allows it (REST, whose web client always sends a fixed amount): then it only has to be
   * above 0. The answer carries the amount charged (ignored by gRPC, read by REST). In production
   * the client's scenario and webhook_url (the payment mock's test switches) are not sent on.
   */
  private async createIntent(request: Message, caller: Caller, options: IntentOptions): Promise<Message> {
    const reservationId = required(request.reservation_id, 'reservation_id');
    const {reservation} = await this.reservation.call(
      RESERVATION_SERVICE,
      'GetReservation',
      {reservation_id: reservationId, user_id: caller.userId},
      caller,
    );
    if (reservation?.status !== 'RESERVATION_STATUS_HOLD') {
      throw new TacosError(
        `Reservation ${reservationId} is ${String(reservation?.status).replace('RESERVATION_STATUS_', '').toLowerCase()}: only a held reservation can be paid.`,
        {
          code: 'FAILED_PRECONDITION',
        },
      );
    }
    const total = reservation.total_amount as {amount: string; currency: string};
    const asked = request.amount as {amount: string; currency: string} | null;
    if (
      !options.anyPositiveAmount &&
      asked &&
      (asked.amount !== '0' || asked.currency) &&
      (asked.amount !== total.amount || asked.currency !== total.currency)
    ) {
      throw invalidArgument(
        'amount',
        `amount must equal the reservation's total, ${total.amount} ${total.currency} (got ${asked.amount} ${asked.currency}).`,
      );
    }
    const testSwitches = this.testSwitches(request, caller);
    const created = await this.payment.call(
      PAYMENT_SERVICE,
      'CreatePaymentIntent',
      {
        reservation_id: reservationId,
        amount: total,
        user_id: caller.userId,
        method: request.method,
        ...testSwitches,
        idempotency_key: userKey(caller, request.idempotency_key),
        // The web client never calls process: the payment service settles the intent by its scenario.
        metadata: options.settleAtOnce ? {source: 'web', tags: {[SETTLE_AT_ONCE_TAG]: 'true'}} : undefined,
      },
      caller,
    );
    this.paymentChanged(caller, created.payment_intent_id, 'PAYMENT_STATUS_UNSPECIFIED', created.status);
    return {...created, error: null, amount: total, reservation_id: reservationId};
  }

  /** scenario and webhook_url as the client sent them; none in production, where a debug line says so. */
  private testSwitches(request: Message, caller: Caller): {scenario?: unknown; webhook_url?: unknown} {
    if (!this.options.production) return {scenario: request.scenario, webhook_url: request.webhook_url};
    const dropped = [
      ...(request.scenario && request.scenario !== 'PAYMENT_SCENARIO_UNSPECIFIED' ? ['scenario'] : []),
      ...(request.webhook_url ? ['webhook_url'] : []),
    ];
    if (dropped.length > 0)
      this.options.logger.debug(
        {req_id: caller.requestId, dropped},
        'production: client test switches not sent to the payment service',
      );
    return {};
  }

  private async paymentStatus(request: Message, caller: Caller): Promise<Message> {
    const found = await this.payment.call(
      PAYMENT_SERVICE,
      'GetPaymentStatus',
      {payment_intent_id: required(request.payment_intent_id, 'payment_intent_id'), user_id: caller.userId},
      caller,
    );
    return {payment: found.payment};
  }

  /** payment.v1.ProcessPayment, for the REST route the Go gateway had (no GatewayService method). */
  private async process(request: Message, caller: Caller): Promise<Message> {
    // ProcessPaymentRequest names no user: check the intent is the caller's (another user's is not found).
    await this.paymentStatus(request, caller);
    const paymentIntentId = required(request.payment_intent_id, 'payment_intent_id');
    const processed = await this.payment.call(
      PAYMENT_SERVICE,
      'ProcessPayment',
      {
        payment_intent_id: paymentIntentId,
        payment_details: request.payment_details,
        idempotency_key: userKey(caller, request.idempotency_key),
      },
      caller,
    );
    // Only a pending intent is processed.
    this.paymentChanged(caller, paymentIntentId, 'PAYMENT_STATUS_PENDING', processed.status);
    return {...processed, error: null};
  }
}

interface IntentOptions {
  anyPositiveAmount?: boolean;
  settleAtOnce?: boolean;
}

/** seat_ids and quantity within the seats one order may take (before anything walks the list). */
function checkSeats(request: Message, max: number): void {
  const seatIds: unknown = request.seat_ids;
  const named = Array.isArray(seatIds) ? seatIds.length : 0;
  const quantity = Number(request.quantity ?? 0);
  if (named <= max && quantity <= max) return;
  const [field, count] = named > max ? ['seat_ids', named] : ['quantity', quantity];
  throw new TacosError(`An order takes at most ${max} seats (${field} asks for ${count}).`, {
    code: 'TOO_MANY_SEATS',
    field,
    hint: "Split the order; the gateway's cap is BOOKING_MAX_SEATS_PER_ORDER, and an event may allow fewer.",
  });
}

/** Every text of the request (nested ones too) at most `max` characters: none is sent on longer. */
function checkTexts(value: unknown, max: number, field: string): void {
  if (typeof value === 'string') {
    if (value.length > max) {
      throw new TacosError(`${field} is ${value.length} characters long; at most ${max} are accepted.`, {
        code: 'FIELD_TOO_LONG',
        field,
      });
    }
  } else if (Array.isArray(value)) {
    value.forEach((item, index) => checkTexts(item, max, `${field}[${index}]`));
  } else if (value !== null && typeof value === 'object' && !Buffer.isBuffer(value)) {
    for (const [key, item] of Object.entries(value)) checkTexts(item, max, field ? `${field}.${key}` : key);
  }
}

/** A failed CreateReservation whose hold may exist after all: said so, and that the token is used up. */
function outcomeUnknown(error: unknown): unknown {
  if (!(error instanceof TacosError)) return error;
  return new TacosError(`${error.message} The reservation may have been made; the reservation token is used up.`, {
    code: error.code,
    cause: error,
    hint: 'A hold that was made expires by itself if not paid. Enter through the queue again for a new reservation token.',
  });
}

/** Idempotency keys are the caller's own: another user's same key is another request. */
function userKey(caller: Caller, key: string | undefined): string {
  return key ? `${caller.userId}:${key}` : '';
}

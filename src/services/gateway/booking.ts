import type {BackendClient, CallContext} from '../backends/backend-client.js';
import type {Protocol} from '../backends/transports.js';
import {invalidArgument} from '../api-errors.js';
import {TacosError} from '../errors.js';
import {required} from '../grpc/handlers.js';
import {SETTLE_AT_ONCE_TAG} from '../mocks/payment/settle-at-once.js';
import type {QueueService} from './queue/queue-service.js';

const RESERVATION = 'reservation.v1.ReservationService';
const INVENTORY = 'reservation.v1.InventoryService';
const PAYMENT = 'payment.v1.PaymentService';

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

/** Who is calling: the verified user, the request id that follows the call, and the signal of the caller leaving. */
export interface Caller extends CallContext {
  userId: string;
}

type Message = Record<string, any>;

/**
 * Reservations and payments through the gateway, shared by its REST and gRPC doors. Requests and
 * responses are gateway.v1 messages as handlers see them; the backends are reached through their
 * clients (gRPC or HTTP, with deadlines and a circuit breaker).
 */
export class BookingService {
  constructor(
    private readonly reservation: BackendClient,
    private readonly payment: BackendClient,
    private readonly queue: QueueService,
  ) {}

  async eventAvailability(request: Message, caller: Caller): Promise<Message> {
    const inventory = await this.reservation.call(
      INVENTORY,
      'GetInventoryStatus',
      {event_id: required(request.event_id, 'event_id'), section: request.section}, caller);
    return {event: inventory.event, sections: inventory.sections, total_available: inventory.stats?.available_seats ?? 0};
  }

  /**
   * Needs a reservation token from the queue, and uses it up (given back if the backend failed). The
   * token is bound to the event it was issued for: the reservation is made for that event whatever
   * event_id says (the web client always sends its default event), and the answer's event_id names it.
   */
  async createReservation(request: Message, caller: Caller): Promise<Message> {
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
        RESERVATION,
        'CreateReservation',
        {
          event_id: token.eventId,
          seat_ids: request.seat_ids,
          quantity: request.quantity,
          user_id: caller.userId,
          reservation_token: request.reservation_token,
          // A retry after a timeout (the token given back) gets the first answer, not a second hold.
          idempotency_key: userKey(caller, request.idempotency_key || `rt:${request.reservation_token}`),
          metadata: {source: 'gateway', session_id: request.metadata?.session_id ?? '', user_agent: request.metadata?.user_agent ?? '', ip_address: request.metadata?.ip_address ?? ''},
        }, caller);
      // event_id is not in the gRPC answer (ignored there); REST answers it, as the Go gateway does.
      return {...created, error: null, event_id: token.eventId};
    } catch (error) {
      // No hold was made for this token (a taken seat, a backend away, the caller gone): it stays
      // usable. Only a key reused for another request keeps it spent.
      if (!(error instanceof TacosError && error.code === 'IDEMPOTENCY_CONFLICT')) await token.restore();
      throw error;
    }
  }

  async getReservation(request: Message, caller: Caller): Promise<Message> {
    const found = await this.reservation.call(
      RESERVATION,
      'GetReservation',
      {reservation_id: required(request.reservation_id, 'reservation_id'), user_id: caller.userId}, caller);
    return {reservation: found.reservation};
  }

  /** Confirms only against a payment that completed for this reservation: otherwise 412. */
  async confirmReservation(request: Message, caller: Caller): Promise<Message> {
    const reservationId = required(request.reservation_id, 'reservation_id');
    const paymentIntentId = required(request.payment_intent_id, 'payment_intent_id');
    const {payment} = await this.payment.call(PAYMENT, 'GetPaymentStatus', {payment_intent_id: paymentIntentId, user_id: caller.userId}, caller);
    if (payment?.status !== 'PAYMENT_STATUS_COMPLETED' || (payment.reservation_id && payment.reservation_id !== reservationId)) {
      const why = payment?.status === 'PAYMENT_STATUS_COMPLETED' ? 'was made for another reservation' : `is ${String(payment?.status ?? 'unknown').replace('PAYMENT_STATUS_', '').toLowerCase()}`;
      throw new TacosError(`Payment ${paymentIntentId} ${why}: the reservation is not confirmed.`, {code: 'PAYMENT_NOT_APPROVED'});
    }
    const confirmed = await this.reservation.call(
      RESERVATION,
      'ConfirmReservation',
      {reservation_id: reservationId, payment_intent_id: paymentIntentId, user_id: caller.userId, idempotency_key: userKey(caller, request.idempotency_key)}, caller);
    return {...confirmed, error: null};
  }

  async cancelReservation(request: Message, caller: Caller): Promise<Message> {
    const cancelled = await this.reservation.call(
      RESERVATION,
      'CancelReservation',
      {reservation_id: required(request.reservation_id, 'reservation_id'), user_id: caller.userId, reason: request.reason, idempotency_key: userKey(caller, request.idempotency_key)}, caller);
    return {...cancelled, error: null};
  }

  /**
   * The charge is always the reservation's total. An amount that differs is refused, unless the
   * caller allows it (REST, whose web client always sends a fixed amount): then it only has to be
   * above 0. The answer carries the amount charged (ignored by gRPC, read by REST).
   */
  async createPaymentIntent(request: Message, caller: Caller, options: {anyPositiveAmount?: boolean; settleAtOnce?: boolean} = {}): Promise<Message> {
    const reservationId = required(request.reservation_id, 'reservation_id');
    const {reservation} = await this.reservation.call(RESERVATION, 'GetReservation', {reservation_id: reservationId, user_id: caller.userId}, caller);
    if (reservation?.status !== 'RESERVATION_STATUS_HOLD') {
      throw new TacosError(`Reservation ${reservationId} is ${String(reservation?.status).replace('RESERVATION_STATUS_', '').toLowerCase()}: only a held reservation can be paid.`, {
        code: 'FAILED_PRECONDITION',
      });
    }
    const total = reservation.total_amount as {amount: string; currency: string};
    const asked = request.amount as {amount: string; currency: string} | null;
    if (!options.anyPositiveAmount && asked && (asked.amount !== '0' || asked.currency) && (asked.amount !== total.amount || asked.currency !== total.currency)) {
      throw invalidArgument('amount', `amount must equal the reservation's total, ${total.amount} ${total.currency} (got ${asked.amount} ${asked.currency}).`);
    }
    const created = await this.payment.call(
      PAYMENT,
      'CreatePaymentIntent',
      {
        reservation_id: reservationId,
        amount: total,
        user_id: caller.userId,
        method: request.method,
        scenario: request.scenario,
        webhook_url: request.webhook_url,
        idempotency_key: userKey(caller, request.idempotency_key),
        // The web client never calls process: the payment service settles the intent by its scenario.
        metadata: options.settleAtOnce ? {source: 'web', tags: {[SETTLE_AT_ONCE_TAG]: 'true'}} : undefined,
      }, caller);
    return {...created, error: null, amount: total, reservation_id: reservationId};
  }

  async getPaymentStatus(request: Message, caller: Caller): Promise<Message> {
    const found = await this.payment.call(
      PAYMENT,
      'GetPaymentStatus',
      {payment_intent_id: required(request.payment_intent_id, 'payment_intent_id'), user_id: caller.userId}, caller);
    return {payment: found.payment};
  }

  /** payment.v1.ProcessPayment, for the REST route the Go gateway had (no GatewayService method). */
  async processPayment(request: Message, caller: Caller): Promise<Message> {
    // ProcessPaymentRequest names no user: check the intent is the caller's (another user's is not found).
    await this.getPaymentStatus(request, caller);
    const processed = await this.payment.call(
      PAYMENT,
      'ProcessPayment',
      {payment_intent_id: required(request.payment_intent_id, 'payment_intent_id'), payment_details: request.payment_details, idempotency_key: userKey(caller, request.idempotency_key)}, caller);
    return {...processed, error: null};
  }
}

/** Idempotency keys are the caller's own: another user's same key is another request. */
function userKey(caller: Caller, key: string | undefined): string {
  return key ? `${caller.userId}:${key}` : '';
}

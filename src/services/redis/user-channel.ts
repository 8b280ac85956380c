import {Cluster} from 'ioredis';
import type {RedisClient} from './client.js';

/**
 * The per-user update channel: what the gateway (for what its calls change) and the mock backends
 * (for what they change on their own: a hold lapsing, a payment settling later) publish about one
 * user's reservations and payments, and SendMessage's messages to that user. Every gateway process
 * with a stream of the user open is subscribed (gateway/live/user-bus.ts).
 *
 * The updates are the proto-loader shapes of gateway.v1.ReservationUpdate and PaymentUpdate
 * (snake_case, enum names, Timestamps as {seconds, nanos}), so that they survive JSON as they are.
 */
export type UserEvent =
  | {kind: 'reservation'; update: ReservationUpdate; at: number; correlation_id: string}
  | {kind: 'payment'; update: PaymentUpdate; at: number; correlation_id: string}
  | {
      kind: 'message';
      message_id: string;
      /** Only the streams opened with this session id take it; empty for every stream of the user. */
      session_id: string;
      text: string;
      at: number;
      /** The ack channel of the gateway process that sent it, which waits to hear whether a stream took it. */
      reply_to: string;
    };

export interface ReservationUpdate {
  reservation_id: string;
  old_status: string;
  new_status: string;
  hold_expires_at: {seconds: string; nanos: number} | null;
  message: string;
  event_type: string;
}

export interface PaymentUpdate {
  payment_intent_id: string;
  old_status: string;
  new_status: string;
  message: string;
  event_type: string;
}

/** A process's answer on its ack channel: how many of its streams took a message. */
export interface MessageReceipt {
  message_id: string;
  taken: number;
}

const USER_PREFIX = 'tacos:user:';
const ACK_PREFIX = 'tacos:acks:';

/** The user's channel; the hash tag keeps it on one shard of a cluster (sharded pub/sub). */
export function userChannel(userId: string): string {
  return `${USER_PREFIX}{${userId}}`;
}

/** The user id of a user channel, or undefined for any other channel. */
export function userOfChannel(channel: string): string | undefined {
  if (!channel.startsWith(USER_PREFIX)) return undefined;
  return channel.slice(USER_PREFIX.length + 1, -1);
}

/** The channel on which one gateway process hears the receipts of the messages it sent. */
export function ackChannel(processId: string): string {
  return `${ACK_PREFIX}{${processId}}`;
}

/**
 * Publishes on a channel, sharded in a cluster (SPUBLISH: the message goes to the channel's shard
 * only, not to every node); resolves to the number of subscribers (connections) that got it.
 */
export function publishOn(redis: RedisClient, channel: string, payload: string): Promise<number> {
  return redis instanceof Cluster
    ? (redis.spublish(channel, payload) as Promise<number>)
    : redis.publish(channel, payload);
}

export function publishUserEvent(redis: RedisClient, userId: string, event: UserEvent): Promise<number> {
  return publishOn(redis, userChannel(userId), JSON.stringify(event));
}

const RESERVATION_EVENTS: Record<string, {event: string; message: string}> = {
  RESERVATION_STATUS_HOLD: {event: 'RESERVATION_EVENT_TYPE_CREATED', message: 'Your seats are held.'},
  RESERVATION_STATUS_CONFIRMED: {event: 'RESERVATION_EVENT_TYPE_CONFIRMED', message: 'Your reservation is confirmed.'},
  RESERVATION_STATUS_CANCELLED: {event: 'RESERVATION_EVENT_TYPE_CANCELLED', message: 'Your reservation was cancelled.'},
  RESERVATION_STATUS_EXPIRED: {
    event: 'RESERVATION_EVENT_TYPE_EXPIRED',
    message: 'Your hold lapsed before payment; the seats are released.',
  },
};

const PAYMENT_EVENTS: Record<string, {event: string; message: string}> = {
  PAYMENT_STATUS_PENDING: {event: 'PAYMENT_EVENT_TYPE_CREATED', message: 'Payment started.'},
  PAYMENT_STATUS_PROCESSING: {event: 'PAYMENT_EVENT_TYPE_PROCESSING', message: 'Your payment is being processed.'},
  PAYMENT_STATUS_COMPLETED: {event: 'PAYMENT_EVENT_TYPE_COMPLETED', message: 'Your payment succeeded.'},
  PAYMENT_STATUS_FAILED: {event: 'PAYMENT_EVENT_TYPE_FAILED', message: 'Your payment failed.'},
  PAYMENT_STATUS_REFUNDED: {event: 'PAYMENT_EVENT_TYPE_REFUNDED', message: 'Your payment was refunded.'},
  PAYMENT_STATUS_CANCELLED: {event: 'PAYMENT_EVENT_TYPE_UNSPECIFIED', message: 'Your payment was cancelled.'},
  PAYMENT_STATUS_EXPIRED: {event: 'PAYMENT_EVENT_TYPE_UNSPECIFIED', message: 'Your payment expired unpaid.'},
};

/**
 * A reservation's change as every publisher words it, so that the same change published twice (by the
 * gateway that made it and by the backend that saw it) reads the same whichever arrives first.
 */
export function reservationEvent(
  change: {id: string; oldStatus: string; newStatus: string; holdExpiresAt?: {seconds: string; nanos: number}},
  at: number,
  correlationId: string,
): UserEvent {
  const named = RESERVATION_EVENTS[change.newStatus];
  return {
    kind: 'reservation',
    update: {
      reservation_id: change.id,
      old_status: change.oldStatus,
      new_status: change.newStatus,
      hold_expires_at: change.newStatus === 'RESERVATION_STATUS_HOLD' ? (change.holdExpiresAt ?? null) : null,
      message: named?.message ?? '',
      event_type: named?.event ?? 'RESERVATION_EVENT_TYPE_UNSPECIFIED',
    },
    at,
    correlation_id: correlationId,
  };
}

/** A payment's change, worded as reservationEvent does it. */
export function paymentEvent(
  change: {id: string; oldStatus: string; newStatus: string},
  at: number,
  correlationId: string,
): UserEvent {
  const named = PAYMENT_EVENTS[change.newStatus];
  return {
    kind: 'payment',
    update: {
      payment_intent_id: change.id,
      old_status: change.oldStatus,
      new_status: change.newStatus,
      message: named?.message ?? '',
      event_type: named?.event ?? 'PAYMENT_EVENT_TYPE_UNSPECIFIED',
    },
    at,
    correlation_id: correlationId,
  };
}

import {randomUUID} from 'node:crypto';
import {TacosError} from '../../errors.js';
import type {Logger} from '../../logging.js';
import type {RedisClient} from '../../redis/client.js';
import {paymentEvent, reservationEvent, type UserEvent} from '../../redis/user-channel.js';
import {invalidArgument} from '../../server-kit/api-errors.js';
import {timestamp} from '../../server-kit/grpc/handlers.js';
import {UserBus, type BusSubscriber, type UserBusOptions} from './user-bus.js';

/** What a reservation or payment change says, as booking.ts reports one it made. */
export interface StatusChange {
  id: string;
  oldStatus: string;
  newStatus: string;
  holdExpiresAt?: {seconds: string; nanos: number};
}

export interface SendMessageRequest {
  targetUserId: string;
  targetSessionId?: string;
  messageType: string;
  title: string;
  content: string;
  data: Record<string, string>;
  priority: string;
}

export interface SendMessageResult {
  delivered: boolean;
  messageId: string;
  /** Unix ms. */
  sentAt: number;
}

export interface UserUpdatesOptions extends UserBusOptions {
  /** Updates one stream keeps for a reader that does not keep up (latest per reservation or payment). */
  maxPendingPerStream: number;
}

export const DEFAULT_USER_UPDATES_OPTIONS: UserUpdatesOptions = {
  maxStreamsPerUser: 8,
  maxMessagesInFlight: 256,
  receiptWaitMs: 1000,
  maxPendingPerStream: 64,
};

/** Bounds of a SendMessage request: the gateway holds it, and every stream of the user gets its text. */
export const MESSAGE_LIMITS = {title: 200, content: 2000, dataEntries: 16, dataText: 256};

type Kind = 'reservation' | 'payment';

/** How far along its life a status is: a stream never shows a reservation or payment going back. */
const STAGES: Record<string, number> = {
  RESERVATION_STATUS_HOLD: 1,
  RESERVATION_STATUS_CONFIRMED: 2,
  RESERVATION_STATUS_CANCELLED: 2,
  RESERVATION_STATUS_EXPIRED: 2,
  PAYMENT_STATUS_PENDING: 1,
  PAYMENT_STATUS_PROCESSING: 2,
  PAYMENT_STATUS_COMPLETED: 3,
  PAYMENT_STATUS_FAILED: 3,
  PAYMENT_STATUS_CANCELLED: 3,
  PAYMENT_STATUS_EXPIRED: 3,
  PAYMENT_STATUS_REFUNDED: 4,
};

/**
 * The reservation and payment update streams of users, and SendMessage, for one gateway process
 * (gRPC's StreamReservationUpdates / StreamPaymentUpdates / SendMessage, and the WebSocket and SSE
 * routes over them). Updates come from the per-user bus (user-bus.ts): what this gateway's booking
 * calls changed, what the backends changed on their own, and messages.
 *
 * A change can be published twice (by the gateway that made it and by the backend that made it) and
 * two publishers' messages can arrive out of order: a stream shows each status of a reservation or
 * payment once, and never one earlier in its life than one it showed.
 */
export class UserUpdates {
  private readonly bus: UserBus;

  constructor(
    redis: RedisClient,
    private readonly logger: Logger,
    private readonly options: UserUpdatesOptions = DEFAULT_USER_UPDATES_OPTIONS,
  ) {
    this.bus = new UserBus(redis, logger, options);
  }

  /** Proto-loader-shaped StreamReservationUpdatesResponse messages for the user (all reservations when `ids` is empty). */
  reservationUpdates(userId: string, ids: string[], signal: AbortSignal, sessionId = ''): AsyncIterable<object> {
    return this.follow('reservation', userId, ids, signal, sessionId);
  }

  /** Proto-loader-shaped StreamPaymentUpdatesResponse messages for the user (all payments when `ids` is empty). */
  paymentUpdates(userId: string, ids: string[], signal: AbortSignal, sessionId = ''): AsyncIterable<object> {
    return this.follow('payment', userId, ids, signal, sessionId);
  }

  /** Tells the user's streams (in every process) of a reservation change this gateway made. */
  reservationChanged(userId: string, change: StatusChange, correlationId: string): void {
    this.publish(userId, reservationEvent(change, Date.now(), correlationId));
  }

  /** Tells the user's streams of a payment change this gateway made or saw. */
  paymentChanged(userId: string, change: StatusChange, correlationId: string): void {
    this.publish(userId, paymentEvent(change, Date.now(), correlationId));
  }

  /**
   * Sends a message to the target user's open streams (only those opened with the session id, when
   * one is given); delivered is true once a stream took it.
   */
  async sendMessage(request: SendMessageRequest): Promise<SendMessageResult> {
    checkMessage(request);
    const messageId = `msg_${randomUUID()}`;
    const sentAt = Date.now();
    const delivered = await this.bus.sendMessage(request.targetUserId, {
      kind: 'message',
      message_id: messageId,
      session_id: request.targetSessionId ?? '',
      text: [request.title, request.content].filter(Boolean).join(': '),
      at: sentAt,
    });
    return {delivered, messageId, sentAt};
  }

  close(): void {
    this.bus.close();
  }

  private publish(userId: string, event: UserEvent): void {
    // The change is made: a stream missing it is no reason to fail the call that made it.
    this.bus
      .publish(userId, event)
      .catch((error: Error) => this.logger.debug({err: error.message}, 'update not published'));
  }

  /**
   * Checks and joins at once, so that a refusal (a bad request, the cap of streams) is thrown by the
   * call, before the caller accepts the stream (a WebSocket answers it before the upgrade); the
   * stream is left when `signal` aborts, whether or not anyone iterates it.
   */
  private follow(
    kind: Kind,
    userId: string,
    ids: string[],
    signal: AbortSignal,
    sessionId: string,
  ): AsyncIterable<object> {
    checkFollowed(ids, sessionId, kind === 'reservation' ? 'reservation_ids' : 'payment_intent_ids');
    const stream = new UserStream(kind, new Set(ids), sessionId, this.options.maxPendingPerStream);
    const joined = this.bus.join(userId, stream);
    const stop = () => {
      signal.removeEventListener('abort', stop);
      stream.end();
      joined.leave();
    };
    signal.addEventListener('abort', stop);
    if (signal.aborted) stop();
    return (async function* () {
      try {
        await joined.subscribed;
        for (let event = await stream.next(); event; event = await stream.next()) yield responseOf(kind, event);
      } finally {
        stop();
      }
    })();
  }
}

/**
 * One open stream: what it follows, and what it has not yet handed to its reader. A reader that does
 * not keep up holds at most the latest change per reservation or payment (merged: the first one's
 * old status, the last one's new), and at most `maxPending` items in all, the oldest dropped first.
 */
class UserStream implements BusSubscriber {
  /** In arrival order; keyed by reservation or payment id, or by message id. */
  private readonly pending = new Map<string, UserEvent>();
  /** The furthest stage shown or pending per id (bounded like pending: the oldest forgotten first). */
  private readonly stages = new Map<string, number>();
  private wake?: () => void;
  private ended = false;

  constructor(
    private readonly kind: Kind,
    private readonly ids: Set<string>,
    private readonly sessionId: string,
    private readonly maxPending: number,
  ) {}

  offer(event: UserEvent): boolean {
    if (this.ended) return false;
    if (event.kind === 'message') {
      if (event.session_id && event.session_id !== this.sessionId) return false;
      this.add(event.message_id, event);
      return true;
    }
    if (event.kind !== this.kind) return false;
    const id = event.kind === 'reservation' ? event.update.reservation_id : event.update.payment_intent_id;
    if (this.ids.size > 0 && !this.ids.has(id)) return false;
    const stage = STAGES[event.update.new_status] ?? 0;
    if (stage <= (this.stages.get(id) ?? -1)) return false;
    this.remember(id, stage);
    const earlier = this.pending.get(id);
    this.pending.delete(id);
    // A change not yet read merges into the newer one: from where the reader last saw it, to now. (A
    // copy: the other streams of the user share the event.)
    this.add(
      id,
      earlier && earlier.kind === event.kind
        ? ({...event, update: {...event.update, old_status: earlier.update.old_status}} as UserEvent)
        : event,
    );
    return true;
  }

  end(): void {
    this.ended = true;
    this.wake?.();
  }

  /** The next item, waiting for one; undefined once the stream ended. */
  async next(): Promise<UserEvent | undefined> {
    while (!this.ended) {
      const first = this.pending.entries().next();
      if (!first.done) {
        this.pending.delete(first.value[0]);
        return first.value[1];
      }
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
    return undefined;
  }

  private add(key: string, event: UserEvent): void {
    this.pending.set(key, event);
    if (this.pending.size > this.maxPending) this.pending.delete(this.pending.keys().next().value as string);
    this.wake?.();
  }

  private remember(id: string, stage: number): void {
    this.stages.delete(id);
    this.stages.set(id, stage);
    if (this.stages.size > this.maxPending * 4) this.stages.delete(this.stages.keys().next().value as string);
  }
}

function responseOf(kind: Kind, event: UserEvent): object {
  const field = kind === 'reservation' ? 'reservation_update' : 'payment_update';
  if (event.kind === 'message') {
    return {
      type: 'EVENT_TYPE_MESSAGE',
      [field]: {message: event.text},
      timestamp: timestamp(event.at),
      correlation_id: event.message_id,
    };
  }
  return {
    type: kind === 'reservation' ? 'EVENT_TYPE_RESERVATION_UPDATE' : 'EVENT_TYPE_PAYMENT_UPDATE',
    [field]: event.update,
    timestamp: timestamp(event.at),
    correlation_id: event.correlation_id,
  };
}

function checkMessage(request: SendMessageRequest): void {
  if (!request.targetUserId) {
    throw invalidArgument(
      'target_user_id',
      'target_user_id is required: messages go to a user, to one of their sessions with target_session_id.',
    );
  }
  if (!request.title && !request.content) throw invalidArgument('content', 'A message needs a title or content.');
  const tooLong = (field: string, value: string, max: number) => {
    if (value.length > max) throw invalidArgument(field, `${field} is ${value.length} characters; at most ${max}.`);
  };
  tooLong('title', request.title, MESSAGE_LIMITS.title);
  tooLong('content', request.content, MESSAGE_LIMITS.content);
  tooLong('target_user_id', request.targetUserId, MESSAGE_LIMITS.dataText);
  tooLong('target_session_id', request.targetSessionId ?? '', MESSAGE_LIMITS.dataText);
  const entries = Object.entries(request.data);
  if (entries.length > MESSAGE_LIMITS.dataEntries)
    throw invalidArgument('data', `data has ${entries.length} entries; at most ${MESSAGE_LIMITS.dataEntries}.`);
  for (const [key, value] of entries) {
    tooLong(`data key`, key, MESSAGE_LIMITS.dataText);
    tooLong(`data.${key}`, value, MESSAGE_LIMITS.dataText);
  }
}

/** Ids one stream may follow by name; more is a request the gateway would hold for nothing (follow all instead). */
export const MAX_FOLLOWED_IDS = 100;

/**
 * The user a stream is for: the bearer token's. A request may name that user (the contract's user_id),
 * never another.
 */
export function streamUserOf(tokenUserId: string, requestedUserId: string | undefined): string {
  if (requestedUserId && requestedUserId !== tokenUserId) {
    throw new TacosError("A stream of another user's updates is not yours to open.", {
      code: 'FORBIDDEN',
      hint: "Leave user_id empty: the stream is for the bearer token's user.",
    });
  }
  return tokenUserId;
}

function checkFollowed(ids: string[], sessionId: string, field: string): void {
  if (ids.length > MAX_FOLLOWED_IDS)
    throw invalidArgument(field, `${field} names ${ids.length} ids; at most ${MAX_FOLLOWED_IDS} (or none for all).`);
  const long = ids.find((id) => id.length > MESSAGE_LIMITS.dataText);
  if (long !== undefined)
    throw invalidArgument(field, `${field} has an id longer than ${MESSAGE_LIMITS.dataText} characters.`);
  if (sessionId.length > MESSAGE_LIMITS.dataText)
    throw invalidArgument('session_id', `session_id is longer than ${MESSAGE_LIMITS.dataText} characters.`);
}

/** The scope a token needs for SendMessage ('*', the development bypass, has every scope). */
export const SEND_MESSAGE_SCOPE = 'messages:send';

export function checkSendScope(scopes: string[]): void {
  if (scopes.includes(SEND_MESSAGE_SCOPE) || scopes.includes('*')) return;
  throw new TacosError(`Sending messages needs a token with the ${SEND_MESSAGE_SCOPE} scope.`, {code: 'FORBIDDEN'});
}

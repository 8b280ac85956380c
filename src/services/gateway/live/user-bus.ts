import {randomUUID} from 'node:crypto';
import {setTimeout as sleep} from 'node:timers/promises';
import {Cluster} from 'ioredis';
import {TacosError} from '../../errors.js';
import type {Logger} from '../../logging.js';
import type {RedisClient} from '../../redis/client.js';
import {
  ackChannel,
  publishOn,
  publishUserEvent,
  userChannel,
  userOfChannel,
  type MessageReceipt,
  type UserEvent,
} from '../../redis/user-channel.js';

/** One open stream of a user in this process, as the bus sees it. */
export interface BusSubscriber {
  /** Offers an event; true when the stream took it (a message for its session, an update it follows). */
  offer(event: UserEvent): boolean;
  /** Ends the stream: the bus is closing. */
  end(): void;
}

export interface UserBusOptions {
  /** Open streams one user may hold in one process; more are RATE_LIMITED. */
  maxStreamsPerUser: number;
  /** SendMessage calls of this process waiting for receipts at once; more are RATE_LIMITED. */
  maxMessagesInFlight: number;
  /** How long a message waits for the receipts of the processes that got it. */
  receiptWaitMs: number;
}

export interface Joined {
  /** Settles once Redis has confirmed the user's subscription (or it could not be made). */
  subscribed: Promise<void>;
  leave(): void;
}

interface UserWatch {
  subscribers: Set<BusSubscriber>;
  subscribed: Promise<void>;
}

interface PendingReceipt {
  /** Receipts of processes whose streams took none of it. */
  heard: number;
  /** One receipt from each process PUBLISH reached; known once PUBLISH answered. */
  expected?: number;
  settle(taken: boolean): void;
}

/**
 * The per-user update bus of one gateway process, over Redis pub/sub: one subscription per user (not
 * per stream) on one subscriber connection, shared by all of that user's open streams here, dropped
 * when the last one closes and made again after a reconnect. In cluster mode the channels are
 * sharded (SSUBSCRIBE/SPUBLISH): a user's channel lives on one shard, and publishing to it does not
 * fan out to every node.
 *
 * A SendMessage answers whether a stream took the message, wherever it is: each process the message
 * reached answers on the sender's ack channel with how many of its streams took it.
 */
export class UserBus {
  private subscriber?: RedisClient;
  private readonly users = new Map<string, UserWatch>();
  private readonly receipts = new Map<string, PendingReceipt>();
  private readonly processId = randomUUID();
  private ackSubscribed?: Promise<void>;
  /** Subscriptions asked for while the subscriber was not connected, settled once it is. */
  private waitingForReady: Array<() => void> = [];
  private closed = false;

  constructor(
    private readonly redis: RedisClient,
    private readonly logger: Logger,
    private readonly options: UserBusOptions,
  ) {}

  /** Adds one of the user's streams; the first of a user subscribes to the user's channel. */
  join(userId: string, subscriber: BusSubscriber): Joined {
    if (this.closed) throw shuttingDown();
    let watch = this.users.get(userId);
    if (watch && watch.subscribers.size >= this.options.maxStreamsPerUser) {
      throw new TacosError(
        `This user already has ${watch.subscribers.size} open update streams here, the most one user may hold.`,
        {code: 'RATE_LIMITED', hint: 'Close a stream you no longer read before opening another.'},
      );
    }
    if (!watch) {
      watch = {subscribers: new Set(), subscribed: this.subscribe(userChannel(userId))};
      this.users.set(userId, watch);
    }
    const current = watch;
    current.subscribers.add(subscriber);
    return {
      subscribed: current.subscribed,
      // Safe twice: only the first call finds the subscriber.
      leave: () => {
        if (!current.subscribers.delete(subscriber)) return;
        if (current.subscribers.size > 0 || this.users.get(userId) !== current) return;
        this.users.delete(userId);
        this.unsubscribe(userChannel(userId));
      },
    };
  }

  /** Publishes a change of the user's reservations or payments to every process with a stream of the user. */
  publish(userId: string, event: UserEvent): Promise<number> {
    return publishUserEvent(this.redis, userId, event);
  }

  /** Publishes a message to the user's streams; true once a stream (in any process) took it. */
  async sendMessage(
    userId: string,
    message: Omit<Extract<UserEvent, {kind: 'message'}>, 'reply_to'>,
  ): Promise<boolean> {
    if (this.closed) throw shuttingDown();
    if (this.receipts.size >= this.options.maxMessagesInFlight) {
      throw new TacosError(`${this.receipts.size} messages are already waiting to be delivered here.`, {
        code: 'RATE_LIMITED',
        hint: 'Retry in a second.',
      });
    }
    // Listening for receipts before the message goes out, or a fast one would be missed.
    this.ackSubscribed ??= this.subscribe(ackChannel(this.processId));
    // Bounded: with Redis away the subscription waits for its return, and the PUBLISH below fails at once.
    await Promise.race([this.ackSubscribed, sleep(this.options.receiptWaitMs, undefined, {ref: false})]);
    let settle: (taken: boolean) => void = () => undefined;
    const answered = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => settle(false), this.options.receiptWaitMs);
      settle = (taken) => {
        clearTimeout(timer);
        this.receipts.delete(message.message_id);
        resolve(taken);
      };
    });
    const pending: PendingReceipt = {heard: 0, settle};
    this.receipts.set(message.message_id, pending);
    try {
      pending.expected = await this.publish(userId, {...message, reply_to: this.processId});
      if (pending.heard >= pending.expected) settle(false);
    } catch (error) {
      settle(false);
      throw new TacosError('The message bus (Redis) is unavailable; the message was not sent. Try again shortly.', {
        code: 'UNAVAILABLE',
        cause: error,
      });
    }
    return answered;
  }

  /** Ends every stream and stops listening; safe twice. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const watch of this.users.values()) for (const subscriber of watch.subscribers) subscriber.end();
    this.users.clear();
    for (const receipt of [...this.receipts.values()]) receipt.settle(false);
    this.settleWaiting();
    this.subscriber?.disconnect();
    this.subscriber = undefined;
  }

  private subscribe(channel: string): Promise<void> {
    const subscriber = (this.subscriber ??= this.connect());
    if (subscriber.status === 'ready') return this.listenOn(subscriber, [channel]);
    return new Promise((resolve) => this.waitingForReady.push(resolve));
  }

  private unsubscribe(channel: string): void {
    const subscriber = this.subscriber;
    if (!subscriber) return;
    const done = subscriber instanceof Cluster ? subscriber.sunsubscribe(channel) : subscriber.unsubscribe(channel);
    done.catch(() => undefined);
  }

  private connect(): RedisClient {
    // In a cluster, sharded subscriptions need a connection to each shard: ioredis's sharded subscribers.
    // Not ioredis's own resubscription: its promise is nobody's, so a connection lost again at once
    // makes it an unhandled rejection; resubscribe() below does it on 'ready'.
    const subscriber =
      this.redis instanceof Cluster
        ? this.redis.duplicate(undefined, {shardedSubscribers: true})
        : this.redis.duplicate({autoResubscribe: false});
    const hear = (channel: string, payload: string) => this.hear(channel, payload);
    subscriber.on('message', hear);
    subscriber.on('smessage', hear);
    // Subscriptions asked for while disconnected are made again once Redis is back.
    subscriber.on('ready', () => this.resubscribe(subscriber));
    subscriber.on('error', (error: Error) => this.logger.debug({err: error.message}, 'user update subscriber'));
    return subscriber;
  }

  private listenOn(subscriber: RedisClient, channels: string[]): Promise<void> {
    // A sharded SSUBSCRIBE names channels of one slot only: one call per channel.
    const done =
      subscriber instanceof Cluster
        ? Promise.all(channels.map((channel) => subscriber.ssubscribe(channel)))
        : subscriber.subscribe(...channels);
    return done.then(
      () => undefined,
      (error: Error) => this.logger.debug({err: error.message}, 'user update subscription failed'),
    );
  }

  private resubscribe(subscriber: RedisClient): void {
    const channels = [...this.users.keys()].map(userChannel);
    if (this.ackSubscribed) channels.push(ackChannel(this.processId));
    const waiting = this.waitingForReady.splice(0);
    const settle = () => {
      for (const resolve of waiting) resolve();
    };
    if (channels.length > 0) void this.listenOn(subscriber, channels).then(settle);
    else settle();
  }

  private settleWaiting(): void {
    for (const resolve of this.waitingForReady.splice(0)) resolve();
  }

  private hear(channel: string, payload: string): void {
    if (channel === ackChannel(this.processId)) return this.receipt(payload);
    const userId = userOfChannel(channel);
    const watch = userId === undefined ? undefined : this.users.get(userId);
    if (!watch) return;
    let event: UserEvent;
    try {
      event = JSON.parse(payload) as UserEvent;
    } catch {
      this.logger.debug({channel}, 'user update that is not JSON dropped');
      return;
    }
    let taken = 0;
    for (const subscriber of watch.subscribers) if (subscriber.offer(event)) taken++;
    if (event.kind === 'message' && event.reply_to) {
      const receipt: MessageReceipt = {message_id: event.message_id, taken};
      publishOn(this.redis, ackChannel(event.reply_to), JSON.stringify(receipt)).catch((error: Error) =>
        this.logger.debug({err: error.message}, 'message receipt not sent'),
      );
    }
  }

  private receipt(payload: string): void {
    let receipt: MessageReceipt;
    try {
      receipt = JSON.parse(payload) as MessageReceipt;
    } catch {
      return;
    }
    const pending = this.receipts.get(receipt.message_id);
    if (!pending) return;
    if (receipt.taken > 0) return pending.settle(true);
    pending.heard++;
    if (pending.expected !== undefined && pending.heard >= pending.expected) pending.settle(false);
  }
}

function shuttingDown(): TacosError {
  return new TacosError('The gateway is shutting down; reconnect.', {code: 'UNAVAILABLE'});
}

import type {Logger} from '../../logging.js';
import type {RedisClient} from '../../redis/client.js';
import {eventIdOfChannel, queueKeys} from './keys.js';

type Listener = () => void;

const COALESCE_MS = 50;

export interface Listening {
  /** Settles once Redis has confirmed the subscription (or it could not be made): changes from then on are heard. */
  subscribed: Promise<void>;
  stop(): void;
}

interface EventWatch {
  listeners: Set<Listener>;
  subscribed: Promise<void>;
}

/**
 * Wakes the watchers of an event when its queue changes (someone entered, left or expired), through
 * Redis pub/sub, so every gateway process sees changes made by any other. One subscriber
 * connection, subscribed only to events someone watches.
 */
export class QueueChanges {
  private subscriber?: RedisClient;
  private readonly events = new Map<string, EventWatch>();
  private readonly wakeups = new Map<string, NodeJS.Timeout>();
  /** Subscriptions asked for while the subscriber was not connected, settled once it is. */
  private waitingForReady: Array<() => void> = [];

  constructor(
    private readonly redis: RedisClient,
    private readonly logger: Logger,
  ) {}

  /** Calls `listener` on every change of the event until `stop` is called. */
  listen(eventId: string, listener: Listener): Listening {
    let watch = this.events.get(eventId);
    if (!watch) {
      watch = {listeners: new Set(), subscribed: this.subscribe(queueKeys(eventId).changes)};
      this.events.set(eventId, watch);
    }
    const current = watch;
    current.listeners.add(listener);
    return {
      subscribed: current.subscribed,
      stop: () => {
        current.listeners.delete(listener);
        if (current.listeners.size === 0 && this.events.get(eventId) === current) {
          this.events.delete(eventId);
          this.subscriber?.unsubscribe(queueKeys(eventId).changes).catch(() => undefined);
        }
      },
    };
  }

  close(): void {
    for (const timer of this.wakeups.values()) clearTimeout(timer);
    this.wakeups.clear();
    this.events.clear();
    this.settleWaiting();
    this.subscriber?.disconnect();
    this.subscriber = undefined;
  }

  private subscribe(channel: string): Promise<void> {
    if (!this.subscriber) {
      const subscriber = this.redis.duplicate();
      subscriber.on('message', (from: string) => this.notify(from));
      // Subscriptions asked for while disconnected are made again once Redis is back.
      subscriber.on('ready', () => this.resubscribe(subscriber));
      subscriber.on('error', (error: Error) => this.logger.debug({err: error.message}, 'queue change subscriber'));
      this.subscriber = subscriber;
    }
    if (this.subscriber.status === 'ready') {
      return this.subscriber.subscribe(channel).then(
        () => undefined,
        () => undefined,
      );
    }
    return new Promise((resolve) => this.waitingForReady.push(resolve));
  }

  private resubscribe(subscriber: RedisClient): void {
    const channels = [...this.events.keys()].map((eventId) => queueKeys(eventId).changes);
    const settle = this.takeWaiting();
    if (channels.length > 0) subscriber.subscribe(...channels).then(settle, settle);
    else settle();
  }

  private settleWaiting(): void {
    this.takeWaiting()();
  }

  /** Takes the subscriptions waiting for a connection; calling the result settles them. */
  private takeWaiting(): () => void {
    const waiting = this.waitingForReady.splice(0);
    return () => {
      for (const resolve of waiting) resolve();
    };
  }

  /**
   * Wakes an event's watchers once per burst of changes (each then reads its position): a busy
   * event publishes many changes a second, and its watchers need not re-read for every one.
   */
  private notify(channel: string): void {
    const eventId = eventIdOfChannel(channel);
    if (!eventId || this.wakeups.has(eventId)) return;
    this.wakeups.set(
      eventId,
      setTimeout(() => {
        this.wakeups.delete(eventId);
        for (const listener of this.events.get(eventId)?.listeners ?? []) listener();
      }, COALESCE_MS),
    );
  }
}

import type {Logger} from '../../logging.js';
import type {RedisClient} from '../../redis/client.js';
import {eventIdOfChannel, queueKeys} from './keys.js';

type Listener = () => void;

/**
 * Wakes the watchers of an event when its queue changes (someone entered, left or expired), through
 * Redis pub/sub, so every gateway process sees changes made by any other. One subscriber
 * connection, subscribed only to events someone watches.
 */
export class QueueChanges {
  private subscriber?: RedisClient;
  private readonly listeners = new Map<string, Set<Listener>>();

  constructor(
    private readonly redis: RedisClient,
    private readonly logger: Logger,
  ) {}

  /** Calls `listener` on every change of the event until the returned function is called. */
  listen(eventId: string, listener: Listener): () => void {
    let set = this.listeners.get(eventId);
    if (!set) {
      set = new Set();
      this.listeners.set(eventId, set);
      this.subscribe(queueKeys(eventId).changes);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.listeners.get(eventId) === set) {
        this.listeners.delete(eventId);
        this.subscriber?.unsubscribe(queueKeys(eventId).changes).catch(() => undefined);
      }
    };
  }

  close(): void {
    this.listeners.clear();
    this.subscriber?.disconnect();
    this.subscriber = undefined;
  }

  private subscribe(channel: string): void {
    if (!this.subscriber) {
      const subscriber = this.redis.duplicate();
      subscriber.on('message', (from: string) => this.notify(from));
      // Subscriptions asked for while disconnected are made again once Redis is back.
      subscriber.on('ready', () => this.resubscribe(subscriber));
      subscriber.on('error', (error: Error) => this.logger.debug({err: error.message}, 'queue change subscriber'));
      this.subscriber = subscriber;
    }
    if (this.subscriber.status === 'ready') this.subscriber.subscribe(channel).catch(() => undefined);
  }

  private resubscribe(subscriber: RedisClient): void {
    const channels = [...this.listeners.keys()].map((eventId) => queueKeys(eventId).changes);
    if (channels.length > 0) subscriber.subscribe(...channels).catch(() => undefined);
  }

  private notify(channel: string): void {
    const eventId = eventIdOfChannel(channel);
    for (const listener of (eventId && this.listeners.get(eventId)) || []) listener();
  }
}

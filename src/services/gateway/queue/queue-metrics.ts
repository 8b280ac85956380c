import {Counter, Gauge, type Registry} from 'prom-client';
import {errorMessage} from '../../errors.js';
import type {Logger} from '../../logging.js';
import type {RedisClient} from '../../redis/client.js';
import {EVENTS_KEY, queueKeys} from './keys.js';

/**
 * The queue's series on /metrics: people waiting per event, read from Redis at scrape time, and the
 * admissions this process granted. Created unregistered, so that each gateway in a process (tests
 * start several) registers its own on its own registry.
 */
export class QueueMetrics {
  /** Incremented where the queue admits (a waiting token entered); summed across workers. */
  readonly admissions = new Counter({
    name: 'queue_admissions_total',
    help: 'Waiting tokens admitted (entered the event), by event.',
    labelNames: ['event_id'] as const,
    registers: [],
  });

  private readonly waiting: Gauge<'event_id'>;

  constructor(redis: RedisClient, logger: Logger) {
    this.waiting = new Gauge({
      name: 'queue_waiting',
      help: 'People waiting in line, by event with someone waiting (read from Redis at scrape; absent while Redis is away).',
      labelNames: ['event_id'] as const,
      registers: [],
      // Every worker reads the same Redis: the cluster's answer is that value, not a sum.
      aggregator: 'max',
      async collect() {
        // Absent rather than stale while Redis is away: an old count would look current.
        this.reset();
        try {
          // The registry holds the events with waiting tokens (bounded by the fixed events and
          // QUEUE_MAX_OPEN_EVENTS); the sweep takes out those left empty.
          const events = await redis.zrange(EVENTS_KEY, 0, -1);
          const counts = await Promise.all(events.map((eventId) => redis.zcard(queueKeys(eventId).waiting)));
          events.forEach((eventId, index) => this.set({event_id: eventId}, counts[index]));
        } catch (error) {
          // The client fails fast while Redis is away (no offline queue), so a scrape is not held.
          logger.debug({err: errorMessage(error)}, 'queue_waiting not read: Redis unavailable');
        }
      },
    });
  }

  register(registry: Registry): void {
    registry.registerMetric(this.admissions);
    registry.registerMetric(this.waiting);
  }
}

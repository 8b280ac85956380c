import type {Logger} from '../logging.js';
import {closeRedisClient, createRedisClient, logRedisOutages, type RedisSettings} from '../redis/client.js';
import {publishUserEvent} from '../redis/user-channel.js';
import type {UpdateListener} from './mock-definition.js';

/**
 * Publishes a mock's changes on its users' update channels, so that the gateway's streams show what
 * the backend does on its own (a hold lapsing on its timer, a payment settling after the answer).
 * The backend is where these changes happen, so this holds across gateway processes and restarts:
 * no gateway has to be up, or remember a hold, at the moment it lapses. A change the gateway made
 * is published by the gateway too; its streams show each status once (user-bus.ts).
 *
 * Fire and forget: a change is never held back for Redis, and one Redis is away for is lost (the
 * client's GetReservation / GetPaymentStatus still tell the truth).
 */
export class UpdatePublisher {
  private readonly redis;

  constructor(
    settings: RedisSettings,
    private readonly logger: Logger,
  ) {
    this.redis = createRedisClient(settings, 'tacos-mock-updates');
    logRedisOutages(this.redis, logger, settings.address);
  }

  readonly publish: UpdateListener = (userId, event) => {
    // An intent or hold made without a user has nobody to tell.
    if (!userId) return;
    publishUserEvent(this.redis, userId, event).catch((error: Error) =>
      this.logger.debug({err: error.message}, 'update not published'),
    );
  };

  close(): Promise<void> {
    return closeRedisClient(this.redis);
  }
}

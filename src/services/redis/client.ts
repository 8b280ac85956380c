import {setTimeout as sleep} from 'node:timers/promises';
import {Cluster, Redis, type ClusterOptions, type RedisOptions} from 'ioredis';
import type {EnvReader} from '../config.js';
import {TacosError} from '../errors.js';
import type {Logger} from '../logging.js';

export type RedisClient = Redis | Cluster;

export interface RedisSettings {
  /** `host:port`, or a comma-separated list of cluster seed nodes. */
  address: string;
  password?: string;
  database: number;
  clusterMode: boolean;
  /** A command that gets no answer within this fails, so a dead Redis surfaces fast. */
  commandTimeoutMs: number;
  /**
   * ioredis auto-pipelining: commands wait until setImmediate and go out together. Redis spends about
   * a third less CPU per join, but at 50 requests in flight the REST join lost 15-20 % of its
   * requests/s to the wait (BENCHMARKS.md); so it is off unless Redis's CPU is the limit.
   */
  autoPipelining?: boolean;
}

/** The variable of the command timeout, and its default. */
export const REDIS_COMMAND_TIMEOUT = 'REDIS_COMMAND_TIMEOUT';
export const REDIS_COMMAND_TIMEOUT_MS = 800;

/** The REDIS_* variables, read the same by the gateway and by a mock that publishes updates. */
export function readRedisSettings(read: EnvReader): RedisSettings {
  return {
    address: read.string('REDIS_ADDRESS', 'localhost:6379'),
    password: read.optional('REDIS_PASSWORD'),
    database: read.int('REDIS_DATABASE', 0, 0, 15),
    clusterMode: read.bool('REDIS_CLUSTER_MODE', false),
    commandTimeoutMs: read.durationMs(REDIS_COMMAND_TIMEOUT, REDIS_COMMAND_TIMEOUT_MS),
    autoPipelining: read.bool('REDIS_AUTO_PIPELINING', false),
  };
}

export interface HostPort {
  host: string;
  port: number;
}

export function parseHostPort(address: string, defaultPort = 6379): HostPort {
  const match = /^\[?([^\]]*?)\]?(?::(\d+))?$/.exec(address.trim());
  const port = match?.[2] === undefined ? defaultPort : Number(match[2]);
  if (!match || !match[1] || port > 65_535) {
    throw new TacosError(`"${address}" is not a host:port address.`, {
      hint: 'Write it as host:port, for example localhost:6379.',
      code: 'INVALID_CONFIG',
    });
  }
  return {host: match[1], port};
}

/**
 * A Redis (or Redis Cluster) client that fails fast instead of queueing while Redis is away, and
 * reconnects on its own, so the gateway answers 503 within a second and recovers without a restart.
 */
export function createRedisClient(settings: RedisSettings, connectionName = 'tacos'): RedisClient {
  const common: RedisOptions = {
    password: settings.password,
    connectionName,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: settings.commandTimeoutMs,
    connectTimeout: Math.max(settings.commandTimeoutMs, 1000),
    retryStrategy: (attempt) => Math.min(attempt * 100, 1000),
    // After a failover the old primary refuses writes: reconnect to find the new one.
    reconnectOnError: (error) => /^READONLY/.test(error.message),
    enableAutoPipelining: settings.autoPipelining ?? false,
  };
  const nodes = settings.address.split(',').map((address) => parseHostPort(address));
  if (settings.clusterMode) {
    const options: ClusterOptions = {
      redisOptions: common,
      enableOfflineQueue: false,
      clusterRetryStrategy: (attempt) => Math.min(attempt * 100, 1000),
      slotsRefreshTimeout: 2000,
    };
    return new Cluster(nodes, options);
  }
  return new Redis({...common, ...nodes[0], db: settings.database});
}

/**
 * One warn line when the client loses Redis (or cannot reach it at start) and one when it has it
 * back: once per outage, however many reconnect attempts and failed commands it holds. Each attempt's
 * error is a debug line. A close asked for (quit) is no outage.
 */
export function logRedisOutages(client: RedisClient, logger: Logger, address: string): void {
  let away = false;
  let lastError: string | undefined;
  client.on('error', (error: Error) => {
    lastError = error.message;
    logger.debug({redis: address, err: error.message}, 'redis connection');
  });
  client.on('reconnecting', () => {
    if (away) return;
    away = true;
    logger.warn({redis: address, err: lastError}, 'Redis unavailable: calls that need it fail until it is back');
  });
  client.on('ready', () => {
    lastError = undefined;
    if (!away) return;
    away = false;
    logger.warn({redis: address}, 'Redis back: serving again');
  });
}

/** How long a close waits for the connection to be gone after QUIT or a disconnect. */
const CLOSE_WAIT_MS = 1000;

/** Closes a client and waits (bounded) until its connection is gone; safe to call twice and on a client that never connected. */
export async function closeRedisClient(client: RedisClient): Promise<void> {
  if (client.status === 'end') return;
  // Not events.once: it would reject on an 'error' the closing connection may still emit.
  const ended = new Promise((resolve) => client.once('end', resolve));
  try {
    await client.quit();
  } catch {
    client.disconnect();
  }
  await Promise.race([ended, sleep(CLOSE_WAIT_MS, undefined, {ref: false})]);
}

/**
 * The gateway's Redis client as its settings ask: auto-pipelining only when turned on. Nothing
 * listens on the port: the clients are closed before they could connect.
 */
import {afterEach, describe, expect, it} from 'vitest';
import {closeRedisClient, createRedisClient, type RedisClient} from '../../src/services/redis/client.js';
import {freePort} from '../helpers/redis.js';

const clients: RedisClient[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.disconnect();
});

describe('createRedisClient', () => {
  it.each([
    [undefined, false],
    [false, false],
    [true, true],
  ])('autoPipelining %s gives ioredis enableAutoPipelining %s', async (autoPipelining, expected) => {
    const client = createRedisClient({
      address: `127.0.0.1:${await freePort()}`,
      database: 0,
      clusterMode: false,
      commandTimeoutMs: 500,
      autoPipelining,
    });
    clients.push(client);
    expect(client.options.enableAutoPipelining).toBe(expected);
  });

  it('closes twice without error', async () => {
    const client = createRedisClient({
      address: `127.0.0.1:${await freePort()}`,
      database: 0,
      clusterMode: false,
      commandTimeoutMs: 500,
    });
    await closeRedisClient(client);
    await closeRedisClient(client);
    expect(client.status).toBe('end');
  });
});

/**
 * The per-user update bus on a real Redis Cluster: a user's channel is sharded (SSUBSCRIBE on the node
 * of its slot, nowhere else), and updates and messages reach a stream held by another gateway's bus,
 * for users whose channels live on each node.
 */
import {randomUUID} from 'node:crypto';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {UserUpdates} from '../../src/services/gateway/live/user-updates.js';
import {createLogger} from '../../src/services/logging.js';
import {closeRedisClient, createRedisClient, type RedisClient} from '../../src/services/redis/client.js';
import {userChannel} from '../../src/services/redis/user-channel.js';
import {startRedisCluster, type RedisCluster} from '../helpers/redis-cluster.js';

const RUN = randomUUID().slice(0, 8);
const WAIT_MS = 10_000;

const clients: RedisClient[] = [];
const buses: UserUpdates[] = [];

async function eventually<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + WAIT_MS * 2;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${WAIT_MS * 2} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function clusterBus(): UserUpdates {
  const client = createRedisClient({
    address: cluster.seeds,
    database: 0,
    clusterMode: true,
    commandTimeoutMs: 2000,
  });
  clients.push(client);
  const bus = new UserUpdates(client, createLogger('test', 'silent'));
  buses.push(bus);
  return bus;
}

let cluster: RedisCluster;

beforeAll(async () => {
  cluster = await startRedisCluster();
}, 90_000);

afterAll(async () => {
  for (const bus of buses) bus.close();
  await Promise.allSettled(clients.map((client) => closeRedisClient(client)));
  await cluster?.close();
});

/** The node (index) that serves a channel's slot. */
async function nodeOf(channel: string): Promise<number> {
  const slot = Number(await cluster.direct[0].call('CLUSTER', 'KEYSLOT', channel));
  const slots = (await cluster.direct[0].call('CLUSTER', 'SLOTS')) as Array<[number, number, [string, number]]>;
  const owner = slots.find(([from, to]) => slot >= from && slot <= to);
  return cluster.nodes.findIndex((node) => node.port === Number(owner?.[2][1]));
}

/** One user id whose channel lives on each node, in node order. */
async function userPerNode(): Promise<string[]> {
  const found: Array<string | undefined> = [undefined, undefined, undefined];
  for (let index = 0; index < 200 && found.includes(undefined); index++) {
    const candidate = `user-${RUN}-${index}`;
    found[await nodeOf(userChannel(candidate))] ??= candidate;
  }
  if (found.includes(undefined)) throw new Error('could not find a user for every node');
  return found as string[];
}

/** The next reservation update of a stream, past messages a retried send may have left (bounded). */
async function nextUpdate(reader: AsyncIterator<object>): Promise<object | undefined> {
  for (let read = 0; read < 10; read++) {
    const {value} = (await reader.next()) as {value: {type: string}};
    if (value.type === 'EVENT_TYPE_RESERVATION_UPDATE') return value;
  }
  return undefined;
}

describe('user update bus on a Redis Cluster', () => {
  it('subscribes each user on the shard of its channel, and delivers across buses', async () => {
    const holder = clusterBus();
    const sender = clusterBus();
    const users = await userPerNode();
    const signal = AbortSignal.timeout(WAIT_MS * 3);
    const readers = users.map((user) => holder.reservationUpdates(user, [], signal)[Symbol.asyncIterator]());
    try {
      const firsts = readers.map((reader) => reader.next());
      for (const [index, user] of users.entries()) {
        // A message is delivered once the holder's sharded subscription is live.
        const sent = await eventually(`a message to ${user}`, async () => {
          const answer = await sender.sendMessage({
            targetUserId: user,
            messageType: 'MESSAGE_TYPE_INFO',
            title: '',
            content: `hello ${user}`,
            data: {},
            priority: 'MESSAGE_PRIORITY_NORMAL',
          });
          return answer.delivered ? answer : undefined;
        });
        expect((await firsts[index]).value).toMatchObject({
          type: 'EVENT_TYPE_MESSAGE',
          reservation_update: {message: `hello ${user}`},
        });
        expect(sent.messageId).toMatch(/^msg_/);
        const shardChannels = await Promise.all(
          cluster.direct.map(async (client) => (await client.call('PUBSUB', 'SHARDCHANNELS')) as string[]),
        );
        expect(shardChannels.map((channels) => channels.includes(userChannel(user)))).toEqual(
          cluster.nodes.map((_node, node) => node === index),
        );
        sender.reservationChanged(
          user,
          {id: `rsv-${user}`, oldStatus: 'RESERVATION_STATUS_UNSPECIFIED', newStatus: 'RESERVATION_STATUS_HOLD'},
          'test',
        );
        expect(await nextUpdate(readers[index])).toMatchObject({reservation_update: {reservation_id: `rsv-${user}`}});
      }
    } finally {
      for (const reader of readers) await reader.return?.(undefined);
    }
  }, 60_000);
});
